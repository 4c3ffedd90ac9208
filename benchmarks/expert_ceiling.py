"""How much sync/off-sync signal the sample corpus holds for a 5-frame / 16-mel expert.

1. Silence statistics behind `train_expert.negative_silence_level`: the share of windows with silent audio and
   of same-clip negatives that pair silence with silence (off-sync in label only).
2. An "oracle" expert that sees the ground-truth mouth parameters of the 5 frames (jaw_open, lip_width,
   lip_round from the sample corpus sidecars) instead of pixels, with the same mel windows and the same pair
   sampling as `train_expert`: a small MLP trained on train-split clips and scored on the test speakers. It
   bounds what the image expert can reach when it reads the mouth perfectly, with this window length.

Needs `dvc repro face_crop mel` on the sample corpus. Usage: python benchmarks/expert_ceiling.py [--epochs 30]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge.params import load_params  # noqa: E402
from lipforge.train.data import Clip, Negatives, _negative_start, is_silent, load_clips  # noqa: E402

FACE_DIR, MEL_INDEX, CORPUS = Path("data/face_crop"), Path("data/mel/index.parquet"), Path("data/sample_corpus")


def silence_stats(clips: list[Clip], level: float, min_shift: int, n: int = 20000) -> dict:
    windows = [(c, t) for c in clips for t in range(c.n_windows)]
    silent = sum(is_silent(c.sync_mel(t), level) for c, t in windows)
    rng, both = np.random.default_rng(0), 0
    for _ in range(n):
        c = clips[rng.integers(len(clips))]
        t = int(rng.integers(c.n_windows))
        s = int(rng.choice([s for s in range(c.n_windows) if abs(s - t) >= min_shift]))
        both += is_silent(c.sync_mel(t), level) and is_silent(c.sync_mel(s), level)
    return {"windows": len(windows), "silent_audio_windows": silent / len(windows),
            "same_clip_negatives_silent_vs_silent": both / n}


def mouth_params(clip_id: str) -> np.ndarray:
    m = json.loads((CORPUS / f"{clip_id}.gt.json").read_text())["mouth"]
    return np.stack([m["jaw_open"], m["lip_width"], m["lip_round"]], 1).astype(np.float32)


def oracle_pairs(clips: list[Clip], n: int, seed: int, neg: Negatives) -> tuple[torch.Tensor, torch.Tensor]:
    """Same sampling as lipforge.train.data.expert_batch, with mouth parameters in place of pixels."""
    rng, mouth = np.random.default_rng(seed), {c.clip_id: mouth_params(c.clip_id) for c in clips}
    x, y = [], []
    for b in range(n):
        ci = int(rng.integers(len(clips)))
        t = int(rng.integers(clips[ci].n_windows))
        positive = b % 2 == 0
        cj, s = (ci, t) if positive else _negative_start(clips, ci, t, rng, neg)
        x.append(np.concatenate([mouth[clips[ci].clip_id][t:t + 5].ravel(), clips[cj].sync_mel(s).ravel() / 4]))
        y.append(float(positive))
    return torch.tensor(np.array(x)), torch.tensor(y)


def oracle_accuracy(train: list[Clip], test: list[Clip], neg: Negatives, epochs: int) -> list[tuple[int, float, float]]:
    torch.manual_seed(0)
    xtr, ytr = oracle_pairs(train, 20000, 0, neg)
    xte, yte = oracle_pairs(test, 1000, 1, neg)
    net = torch.nn.Sequential(torch.nn.Linear(xtr.shape[1], 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(256, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    curve = []
    for epoch in range(1, epochs + 1):
        net.train()
        for idx in torch.randperm(len(xtr)).split(128):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(xtr[idx]).squeeze(1), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 5 == 0 or epoch == epochs:
            net.eval()
            with torch.no_grad():
                acc = [float(((net(x).squeeze(1) > 0).float() == y).float().mean()) for x, y in ((xtr[:2000], ytr[:2000]), (xte, yte))]
            curve.append((epoch, *acc))
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    cfg = load_params().train_expert
    level = cfg.negative_silence_level if cfg.negative_silence_level is not None else -3.5
    everything = load_clips(FACE_DIR, MEL_INDEX, ("train", "val", "test"))
    print("silence:", json.dumps({k: round(v, 4) for k, v in silence_stats(everything, level, cfg.min_negative_shift).items()}))
    neg = Negatives(cfg.negative_other_clip_fraction, cfg.min_negative_shift, cfg.negative_silence_level)
    train, test = load_clips(FACE_DIR, MEL_INDEX, ("train",)), load_clips(FACE_DIR, MEL_INDEX, ("test",))
    print(f"oracle expert (ground-truth mouth parameters + mel), negatives {neg}:")
    for epoch, tr, te in oracle_accuracy(train, test, neg, args.epochs):
        print(f"  epoch {epoch:3d}  train accuracy {tr:.3f}  test-speaker accuracy {te:.3f}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
