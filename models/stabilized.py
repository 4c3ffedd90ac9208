"""Talking-face generator G_L and discriminator of "Audio-driven Talking Face Generation with Stabilized
Synchronization Loss" (Sec. 3.1 and 3.3, Fig. 2). The silent-lip generator G_S (Sec. 3.2) is the same
architecture trained without the sync and triplet losses.

G_L: separate identity and pose encoders built from face-encoding (FE) blocks, a frozen pretrained audio
encoder (the lip-sync expert's), a 1x1-conv bottleneck joined with the audio embedding, and a U-Net face
decoder of face-decoding (FD) blocks with skips from both encoders.

`audio_skip` (lipforge's, not the paper's; 0 = the paper) also joins a learned projection of the audio embedding
to every decoder level, over the lower half of the frame or all of it (`audio_skip_rows`). At CPU scale a G_L that
hears its audio only at the bottleneck learnt to ignore it on some machines' draws (docs/experiments.md, "Audio at
every decoder level").

`audio_input` "embedding" (the paper: F_A = E_A(A), the expert's sync embedding) or "features" (lipforge's: the
frozen encoder's pooled features before its projection to that embedding). At CPU scale the projection's ReLU
leaves a dozen live channels, and a linear probe reads the mouth opening from the features better
(docs/experiments.md, "What G_L hears").
"""
from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def conv_bn_relu(cin, cout, kernel_size=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def audio_map(features: torch.Tensor, height: int, width: int, rows: str) -> torch.Tensor:
    """(N, C) -> (N, C, height, width): each vector at every pixel (rows "all"), or at every pixel of rows
    height//2.. with zeros above them (rows "lower_half").

    The mouth lies in the lower half of the crop (the half the pose input has masked): audio joined there enters
    the decoder below the eyes (3x3 convs then spread it a few pixels up)."""
    if rows == "all":
        return features[:, :, None, None].expand(-1, -1, height, width)
    below = features[:, :, None, None].expand(-1, -1, height - height // 2, width)
    return torch.cat([below.new_zeros(*below.shape[:2], height // 2, width), below], dim=2)


def level_widths(width: int, n: int) -> list[int]:
    """Channel widths of encoder levels 0..n-1: width * (1, 2, 4, 8, 8, ...)."""
    return [width * min(2 ** i, 8) for i in range(n)]


class FEBlock(nn.Module):
    """Face-encoding block: strided 3x3 conv, two 3x3 convs (each BN+ReLU), plus the input (strided 1x1)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout, 3, 2), conv_bn_relu(cout, cout), conv_bn_relu(cout, cout))
        self.shortcut = nn.Conv2d(cin, cout, 1, 2)  # every FE block halves the resolution, so always project

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class FDBlock(nn.Module):
    """Face-decoding block (Fig. 2b): stride-2 transposed conv, then two 3x3 convs, each BN+ReLU."""

    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1, bias=False),
                                nn.BatchNorm2d(cout), nn.ReLU())
        self.body = nn.Sequential(conv_bn_relu(cout, cout), conv_bn_relu(cout, cout))

    def forward(self, x):
        return self.body(self.up(x))


class FaceEncoder(nn.Module):
    """Stem conv + FE blocks; returns the features of every level (full resolution first) for the skips."""

    def __init__(self, widths: list[int]):
        super().__init__()
        self.stem = conv_bn_relu(3, widths[0], 7)
        self.blocks = nn.ModuleList(FEBlock(cin, cout) for cin, cout in pairwise(widths))

    def forward(self, x):
        feats = [self.stem(x)]
        for block in self.blocks:
            feats.append(block(feats[-1]))
        return feats


class StabilizedGenerator(nn.Module):
    """G_L / G_S (Fig. 2a). forward(mels (B,T,1,80,16), pose (B,T,3,H,W), ref (B,T,3,H,W)) -> (B,T,3,H,W).

    `audio_encoder` maps (N,1,80,16) mels to (N, audio_dim) embeddings (e.g. AVSyncNet.audio_encoder). It
    is frozen in place (requires_grad False, always eval mode, run under no_grad), as in Sec. 3.1; when it
    is shared with an expert, that expert's audio encoder is frozen too. Optimise `trainable_parameters()`.
    With audio_input "features", the encoder must have `features(mels)` and `feature_dim` (both experts' do),
    and `audio_dim` is ignored.
    """

    def __init__(self, audio_encoder: nn.Module, audio_dim: int, width: int = 32, n_blocks: int = 5,
                 img_size: int = 96, audio_skip: int = 0, audio_skip_rows: str = "lower_half",
                 audio_input: str = "embedding"):
        super().__init__()
        if audio_input not in ("embedding", "features"):
            raise ValueError(f"audio_input must be 'embedding' or 'features', got {audio_input!r}")
        self.audio_input = audio_input
        if audio_input == "features":
            audio_dim = audio_encoder.feature_dim
        if n_blocks < 1 or img_size % 2 ** n_blocks:
            raise ValueError(f"img_size must be divisible by 2**n_blocks = {2 ** max(n_blocks, 0)} "
                             f"(n_blocks={n_blocks}), got img_size={img_size}")
        self.img_size = img_size
        self.audio_dim = audio_dim
        widths = level_widths(width, n_blocks + 1)
        self.identity_encoder = FaceEncoder(widths)
        self.pose_encoder = FaceEncoder(widths)
        self.reduce = conv_bn_relu(2 * widths[-1], widths[-1], 1)

        self.audio_encoder = audio_encoder
        for p in self.audio_encoder.parameters():
            p.requires_grad_(False)
        self.audio_encoder.eval()
        # The expert defines only the direction of its embeddings (it compares them by cosine similarity); their
        # raw scale is arbitrary and, trained, tiny (~0.03 per channel against O(1) visual features), which left
        # the decoder deaf to the audio: output change speech vs silence 2e-6 after 450 steps. Standardising each
        # channel (BatchNorm, trainable) puts the audio on the scale of the features it is concatenated with; eps
        # far below the embeddings' variance (~1e-4, where the default 1e-5 would still shrink them).
        self.audio_norm = nn.BatchNorm1d(audio_dim, eps=1e-8)

        if audio_skip < 0:
            raise ValueError(f"audio_skip must be >= 0 channels, got {audio_skip}")
        if audio_skip_rows not in ("lower_half", "all"):
            raise ValueError(f"audio_skip_rows must be 'lower_half' or 'all', got {audio_skip_rows!r}")
        self.audio_skip_rows = audio_skip_rows
        self.audio_skip = nn.Linear(audio_dim, audio_skip) if audio_skip else None

        # Each FD block's input is the previous output concatenated with the identity and pose features
        # of the matching encoder level (and with audio_skip channels of audio).
        cin = widths[-1] + audio_dim + 2 * widths[-1]
        decoder = []
        for level in reversed(range(n_blocks)):
            decoder.append(FDBlock(cin, widths[level]))
            cin = 3 * widths[level] + audio_skip
        self.decoder = nn.ModuleList(decoder)
        self.output_block = nn.Sequential(conv_bn_relu(cin, widths[0]), nn.Conv2d(widths[0], 3, 1))

    def train(self, mode: bool = True):
        super().train(mode)
        self.audio_encoder.eval()  # frozen expert: its BN statistics must not drift
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        frozen = {id(p) for p in self.audio_encoder.parameters()}
        return [p for p in self.parameters() if id(p) not in frozen and p.requires_grad]

    def audio_features(self, mels: torch.Tensor) -> torch.Tensor:
        """(N, 1, 80, 16) mels -> (N, audio_dim): the frozen encoder's embeddings (or pooled features, see
        `audio_input`), standardised per channel."""
        with torch.no_grad():
            encode = self.audio_encoder.features if self.audio_input == "features" else self.audio_encoder
            audio = encode(mels).flatten(1)
        if audio.shape[1] != self.audio_dim:
            raise ValueError(f"audio encoder gives {audio.shape[1]}-d embeddings, expected {self.audio_dim}")
        return self.audio_norm(audio)

    def forward(self, mels, pose, ref):
        B, T = pose.shape[:2]
        if pose.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected {self.img_size}x{self.img_size} frames, got {tuple(pose.shape[-2:])}")
        ids = self.identity_encoder(ref.flatten(0, 1))
        poses = self.pose_encoder(pose.flatten(0, 1))
        x = self.reduce(torch.cat([ids[-1], poses[-1]], dim=1)).mean(dim=(2, 3), keepdim=True)
        audio = self.audio_features(mels.flatten(0, 1))
        x = torch.cat([x, audio[:, :, None, None]], dim=1)
        # Nearest-neighbour upsampling of the 1x1 code to the deepest skip resolution.
        x = x.expand(-1, -1, *ids[-1].shape[-2:])
        x = torch.cat([x, ids[-1], poses[-1]], dim=1)
        audio_skip = self.audio_skip(audio) if self.audio_skip is not None else None
        for block, id_feat, pose_feat in zip(self.decoder, reversed(ids[:-1]), reversed(poses[:-1])):
            parts = [block(x), id_feat, pose_feat]
            if audio_skip is not None:
                parts.append(audio_map(audio_skip, *id_feat.shape[-2:], self.audio_skip_rows))
            x = torch.cat(parts, dim=1)
        return torch.sigmoid(self.output_block(x)).unflatten(0, (B, T))


class StabilizedDiscriminator(nn.Module):
    """Frame discriminator (Sec. 3.3, GAN loss): strided 4x4 convs with spectral norm and LeakyReLU(0.2),
    widths mirroring the face encoders, global pooling and a linear layer to one logit per frame."""

    def __init__(self, width: int = 32, n_layers: int = 5):
        super().__init__()
        layers, cin = [], 3
        for cout in level_widths(width, n_layers):
            layers += [spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = spectral_norm(nn.Linear(cin, 1))

    def forward(self, frames):
        """frames (N,3,H,W) in [0,1] -> logits (N,)."""
        return self.head(self.features(frames).mean(dim=(2, 3))).squeeze(1)
