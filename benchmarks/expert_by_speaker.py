"""Sync/off-sync accuracy and ROC AUC of the trained experts per speaker (identity), per split.

The stage reports one held-out figure per split; this says whether a low one is a few hard faces or all of
them, and how far the training faces themselves are learned. Pairs are drawn as in training (params
train_expert.negative_*), `--pairs` per speaker, a fixed seed.

Needs `dvc repro train_expert`. Usage: python benchmarks/expert_by_speaker.py [--pairs 256]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge.params import load_params  # noqa: E402
from lipforge.train.artifacts import load_expert  # noqa: E402
from lipforge.train.data import Negatives, fixed_expert_set, load_clips  # noqa: E402
from lipforge.train.expert_loop import score_pairs  # noqa: E402

FACE_DIR, MEL_INDEX, MANIFEST = Path("data/face_crop"), Path("data/mel/index.parquet"), Path("data/manifest/manifest.parquet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=256)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = load_params().train_expert
    neg = Negatives(cfg.negative_other_clip_fraction, cfg.min_negative_shift, cfg.negative_silence_level)
    speaker = dict(pd.read_parquet(MANIFEST, columns=["clip_id", "speaker"]).itertuples(index=False))
    experts = {name: load_expert(Path(cfg.out_dir) / name / "model.pt")[0] for name in cfg.experts}
    rows = []
    for split in ("train", "val", "test"):
        try:
            clips = load_clips(FACE_DIR, MEL_INDEX, (split,))
        except Exception:  # noqa: BLE001 - a corpus without this split
            continue
        by_speaker: dict[str, list] = {}
        for clip in clips:
            by_speaker.setdefault(speaker[clip.clip_id], []).append(clip)
        for spk, group in sorted(by_speaker.items()):
            pairs = fixed_expert_set(group, args.pairs, args.seed, neg)
            row = {"split": split, "speaker": spk, "clips": len(group)}
            for name, model in experts.items():
                scores = score_pairs(model, pairs, torch.device("cpu"))
                row[f"{name}_accuracy"], row[f"{name}_auc"] = scores["accuracy"], scores["auc"]
            rows.append(row)
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
