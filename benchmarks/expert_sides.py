"""Which encoder limits the lip-sync expert on unseen faces? Each AVSyncNet encoder trained against a perfect other side.

- `audio`: the params' AVSyncNet audio encoder against a small MLP on the shown frames' ground-truth mouth
  parameters (jaw_open, lip_width, lip_round of the 5 frames, from the sample corpus's sidecars): perfect
  vision, learned hearing.
- `image`: the params' AVSyncNet image encoder (with the params' window augmentation) against the same MLP on the
  ground-truth mouth parameters of the frames the audio belongs to: perfect hearing, learned vision.

Both use the expert's recipe (BCE on the cosine similarity, pairs drawn as train_expert draws them, batch size
and lr from params, no mouth-shape loss) on the train split, scored on a fixed 512-pair set of the test speakers.
Needs `dvc repro face_crop mel` on the sample corpus. Usage:
    python benchmarks/expert_sides.py [--steps 1000] [--side audio|image|both] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.expert_ceiling import FACE_DIR, MEL_INDEX, mouth_params  # noqa: E402
from lipforge.losses import cosine_similarity, sync_bce_loss  # noqa: E402
from lipforge.metrics.ranking import roc_auc  # noqa: E402
from lipforge.params import load_params  # noqa: E402
from lipforge.train.augment import WindowAugment, augment_windows  # noqa: E402
from lipforge.train.data import Negatives, expert_batch, load_clips  # noqa: E402
from models.experts import build_expert, lower_half  # noqa: E402
from stages.train_expert import arch_kwargs  # noqa: E402


class MouthParamsEncoder(nn.Module):
    """The perfect side: (B, 5, 3) ground-truth mouth parameters -> (B, D) non-negative unit embedding."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(15, 128), nn.ReLU(), nn.Linear(128, embed_dim))

    def forward(self, params):
        return F.normalize(F.relu(self.mlp(params.flatten(1))), p=2, dim=1)


def ground_truth_mouths(clips) -> dict[str, np.ndarray]:
    """clip id -> per-frame ground-truth mouth parameters: expert_batch's `mouth_shapes` channel then carries,
    per pair, those of the shown frames and of the heard frames instead of the landmark ratios."""
    return {clip.clip_id: mouth_params(clip.clip_id) for clip in clips}


def embeddings(side: str, learned: nn.Module, perfect: nn.Module, batch: dict, augment, rng):
    label = torch.from_numpy(batch["label"])
    if side == "audio":
        return learned(torch.from_numpy(batch["mels"])), perfect(torch.from_numpy(batch["video_mouth"])), label
    faces = lower_half(torch.from_numpy(batch["frames"]))
    if augment is not None:
        faces = augment_windows(faces, rng, augment)
    return perfect(torch.from_numpy(batch["audio_mouth"])), learned(faces), label


def run_side(side: str, params, train, train_mouths, test_pairs, steps: int) -> None:
    cfg = params.train_expert
    expert = build_expert("avsyncnet", **arch_kwargs(params, "avsyncnet"))
    learned = expert.audio_encoder if side == "audio" else expert.face_encoder
    perfect = MouthParamsEncoder(expert.embed_dim)
    net = nn.ModuleList([learned, perfect])
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    augment = WindowAugment(**cfg.augment.model_dump()) if side == "image" else None
    negatives = Negatives(cfg.negative_other_clip_fraction, cfg.min_negative_shift, cfg.negative_silence_level)
    train_correct = []
    for step in range(steps):
        rng = np.random.default_rng([1, step])
        batch = expert_batch(train, rng, cfg.batch_size, negatives, mouth_shapes=train_mouths)
        a, v, label = embeddings(side, learned, perfect, batch, augment, rng)
        sim = cosine_similarity(a, v)
        loss = sync_bce_loss(sim, label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        train_correct.append(((sim > 0.5).float() == label).float().mean().item())
        if (step + 1) % 200 == 0 or step + 1 == steps:
            net.eval()
            with torch.no_grad():
                a, v, label = embeddings(side, learned, perfect, test_pairs, None, None)
                sim = cosine_similarity(a, v)
            net.train()
            print(f"{side:5s} step {step + 1:5d}  train accuracy (last 200 batches) {np.mean(train_correct[-200:]):.3f}  "
                  f"test accuracy {float(((sim > 0.5).float() == label).float().mean()):.3f}  "
                  f"test AUC {roc_auc(sim.numpy(), label.numpy()):.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--side", choices=["audio", "image", "both"], default="both")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    params = load_params()
    cfg = params.train_expert
    negatives = Negatives(cfg.negative_other_clip_fraction, cfg.min_negative_shift, cfg.negative_silence_level)
    train = load_clips(FACE_DIR, MEL_INDEX, ("train",))
    test = load_clips(FACE_DIR, MEL_INDEX, ("test",))
    test_pairs = expert_batch(test, np.random.default_rng(2), 512, negatives, mouth_shapes=ground_truth_mouths(test))
    print(f"{len(train)} train clips, {len(test)} test clips; {args.steps} steps of {cfg.batch_size} pairs per side")
    for side in (["audio", "image"] if args.side == "both" else [args.side]):
        run_side(side, params, train, ground_truth_mouths(train), test_pairs, args.steps)


if __name__ == "__main__":
    main()
