"""Training losses of the Stabilized-Sync talking-face generator (paper sections 3.3-3.5), as pure torch functions.

Total generator objective, eq. (5):

    L = L_GAN(G, D) + l1 * L_pixel + l2 * L_per + l3 * L_ss + l4 * L_at,   (l1..l4) = (10, 1, 2, 0.5)

(l3 = l4 = 0 for the silent-lip generator G_S). Every function here takes tensors and returns a scalar tensor
(or a per-sample tensor for `cosine_similarity`); none of them holds state, detaches, or weights its result:
weighting and deciding which inputs carry gradient (e.g. detaching the frozen AVSyncNet scores y and d) is the
caller's job.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

Features = torch.Tensor | Sequence[torch.Tensor]


def cosine_similarity(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample cosine similarity of (B, D) embeddings: sim_b = <a_b, b_b> / max(||a_b|| * ||b_b||, eps) -> (B,)."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"expected two (B, D) tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)


def sync_bce_loss(sim: torch.Tensor, label: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Wav2Lip's expert lip-sync loss: binary cross entropy on the audio-visual cosine similarity.

        s = clamp(sim, eps, 1 - eps)
        L_sync = mean_b -[ y_b log(s_b) + (1 - y_b) log(1 - s_b) ]

    sim: (B,) similarities in [0, 1] (Wav2Lip's embeddings are ReLU outputs, so their cosine is >= 0);
    label: (B,) with 1 = in sync, 0 = off sync. The clamp keeps the log finite at sim = 0 or 1.
    """
    s = sim.clamp(eps, 1.0 - eps)
    y = label.to(dtype=s.dtype).reshape(s.shape)
    return -(y * torch.log(s) + (1.0 - y) * torch.log(1.0 - s)).mean()


def multiway_sync_loss(in_sync: torch.Tensor, off_sync: torch.Tensor, temperature: float) -> torch.Tensor:
    """Multi-way matching (Chung et al., "Perfect Match", 2019): each window's video must pick its own audio
    out of 1 + K candidates, by cross entropy over their cosine similarities / temperature.

        L = mean_p [ log(exp(s_p / T) + sum_k exp(o_pk / T)) - s_p / T ]

    in_sync: (P,) similarity to the window's own audio; off_sync: (P, K) to K off-sync audio windows."""
    logits = torch.cat([in_sync[:, None], off_sync], dim=1) / temperature
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def mouth_shape_loss(face_pred: torch.Tensor, audio_pred: torch.Tensor, face_target: torch.Tensor,
                     audio_target: torch.Tensor) -> torch.Tensor:
    """The experts' auxiliary loss (lipforge's, not a paper's; train_expert.mouth_shape_weight): each encoder
    predicts the standardized mouth-shape descriptors of the frames it sees or hears,

        L_shape = mean (face_pred - face_target)^2 + mean (audio_pred - audio_target)^2
    """
    return F.mse_loss(face_pred, face_target) + F.mse_loss(audio_pred, audio_target)


def mouth_shape_match_loss(fake_shape: torch.Tensor, real_shape: torch.Tensor) -> torch.Tensor:
    """G_L's mouth-shape term (lipforge's, not a paper's; train_generator.losses.mouth_shape): the frozen expert's
    mouth reader (models.experts.MouthReader) reads the standardized mouth-shape descriptors (opening, width,
    height per frame) of the generated and the ground-truth window, and the generated ones should match,

        L_shape-match = mean (S(fake) - S(gt))^2

    Pixel L1 weighs a few-pixel lip gap like any other few pixels; this term weighs the mouth's geometry alone."""
    if fake_shape.shape != real_shape.shape:
        raise ValueError(f"mouth shapes differ in shape: {tuple(fake_shape.shape)} and {tuple(real_shape.shape)}")
    return ((fake_shape - real_shape) ** 2).mean()


def stabilized_sync_loss(x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Stabilized synchronization loss L_ss, eq. (3)-(4):

        L_ss = -log( 1 - (|x - y| + eps) / (|x - y| + |y - d| + eps) )

    x = AVSIM(generated lips, audio), y = AVSIM(GT lips, audio), d = AVSIM(identity-reference lips, audio),
    each (B,) (or any common shape); the result is the mean over the batch.

    L_ss -> 0 when x == y and grows as x moves away from y; the closer the reference score d is to y the
    harder the same |x - y| is penalised. When |y - d| = 0 the ratio is 1 and the log argument is 0:
    the argument is clamped to >= eps (a numerical guard that is NOT in the paper), so the loss is at most
    -log(eps) (13.8155 for eps = 1e-6) and stays finite; in that clamped region the gradient is zero.
    """
    gap = (x - y).abs()
    ratio = (gap + eps) / (gap + (y - d).abs() + eps)
    return -torch.log((1.0 - ratio).clamp_min(eps)).mean()


def _flatten_features(f: Features) -> torch.Tensor:
    """(B, ...) tensor, or a list of per-layer (B, ...) tensors, -> (B, N): each layer flattened, concatenated per sample."""
    if isinstance(f, torch.Tensor):
        return f.reshape(f.shape[0], -1)
    layers = list(f)
    if not layers:
        raise ValueError("empty feature list")
    return torch.cat([t.reshape(t.shape[0], -1) for t in layers], dim=1)


def _l2_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean distance of two (B, N) tensors -> (B,)."""
    return (a - b).norm(dim=1)


def adaptive_triplet_loss(
    f_gen: Features, f_gt: Features, f_ref: Features, alpha: float = 1.0, eps: float = 1e-6
) -> torch.Tensor:
    """Adaptive triplet loss L_at, eq. (2):

        L_at = [ D(gen, gt) - D(gen, ref) / D(gt, ref) + alpha ]_+ ,   [z]_+ = max(z, eps)

    D is the per-sample L2 distance between VGG features flattened to (B, -1); with a list of layers, every
    layer is flattened and the layers are concatenated per sample before taking the distance. The divisor
    D(gt, ref) is clamped to >= eps (guard for a reference identical to the GT). [.]_+ floors at eps as the
    paper defines it (not at 0). Mean over the batch.
    """
    gen, gt, ref = _flatten_features(f_gen), _flatten_features(f_gt), _flatten_features(f_ref)
    if not (gen.shape == gt.shape == ref.shape):
        raise ValueError(f"feature shapes differ: {tuple(gen.shape)}, {tuple(gt.shape)}, {tuple(ref.shape)}")
    z = _l2_distance(gen, gt) - _l2_distance(gen, ref) / _l2_distance(gt, ref).clamp_min(eps) + alpha
    return z.clamp_min(eps).mean()


def perceptual_loss(
    feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor], weights: Sequence[float]
) -> torch.Tensor:
    """Perceptual loss L_per, eq. (1): sum_i c_i * mean| phi_i(a) - phi_i(b) | over the layers i."""
    feats_a, feats_b, weights = list(feats_a), list(feats_b), list(weights)
    if not (len(feats_a) == len(feats_b) == len(weights)) or not weights:
        raise ValueError(f"need one weight per layer pair, got {len(feats_a)}, {len(feats_b)}, {len(weights)}")
    return sum(c * (a - b).abs().mean() for a, b, c in zip(feats_a, feats_b, weights))


def pixel_l1_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pixel reconstruction loss L_pixel = mean| I' - I_GT | (mean absolute error)."""
    return (a - b).abs().mean()


def mouth_region_l1_loss(a: torch.Tensor, b: torch.Tensor, region: tuple[float, float, float, float]) -> torch.Tensor:
    """Mean absolute error inside the mouth region of (..., H, W) frames: rows [top * H, bottom * H) and columns
    [left * W, right * W) for region = (top, bottom, left, right) as fractions of the crop (rounded down)."""
    top, bottom, left, right = region
    h, w = a.shape[-2:]
    rows, cols = slice(int(top * h), int(bottom * h)), slice(int(left * w), int(right * w))
    return (a[..., rows, cols] - b[..., rows, cols]).abs().mean()


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss with logits: BCE(real, 1) + BCE(fake, 0) (sum of the two batch means),
    i.e. mean softplus(-real) + mean softplus(fake)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating GAN generator loss: BCE(fake, 1) = mean softplus(-fake)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
