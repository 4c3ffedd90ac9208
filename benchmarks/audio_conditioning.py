"""Does a trained generator hear its audio? Generate the same test windows three times: with their own mel, with
the mel of digital silence (as G_S is run) and with another window's mel, and compare the outputs in the mouth
region and in the upper face. A generator that ignores the audio changes neither; one that lip-syncs changes
the mouth far more than the upper face.

Needs `dvc repro train_generator`. Usage: python benchmarks/audio_conditioning.py [--model data/generator/model.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge.face.clipmeta import read_clip_meta  # noqa: E402
from lipforge.metrics.landmarks import MOUTH  # noqa: E402
from lipforge.params import load_params  # noqa: E402
from lipforge.train.data import generator_batch, load_clips  # noqa: E402
from lipforge.train.generator_loop import load_generator, load_silent_refs, silent_ref_paths, to_device  # noqa: E402
from stages.silent_refs import silent_mel  # noqa: E402

FACE_DIR, MEL_INDEX, SILENT_INDEX = Path("data/face_crop"), Path("data/mel/index.parquet"), Path("data/silent_refs/index.parquet")


def mouth_box(face_dir: Path, split: str, size: int, margin: int = 2) -> tuple[slice, slice]:
    """Rows and columns of the crop that hold the mouth on the split's clips: the box around the lip landmarks
    (iBUG 48-67, crop coordinates from face_crop) of every frame, 1st to 99th percentile, plus `margin` px."""
    index = pd.read_parquet(face_dir / "index.parquet")
    lips = np.concatenate([read_clip_meta(face_dir / m)["landmarks_crop"][:, MOUTH].reshape(-1, 2)
                           for m in index.loc[index["split"] == split, "meta_path"]])
    lips = lips[np.isfinite(lips).all(axis=1)]
    (x0, y0), (x1, y1) = np.percentile(lips, 1, axis=0), np.percentile(lips, 99, axis=0)
    top, bottom, left, right = (int(v) for v in np.clip([y0 - margin, y1 + margin + 1, x0 - margin, x1 + margin + 1],
                                                         0, size))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="data/generator/model.pt")
    ap.add_argument("--split", default="test")
    ap.add_argument("--windows", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(2)
    params = load_params()
    generator = load_generator(args.model)
    gen = generator.net
    clips = load_clips(FACE_DIR, MEL_INDEX, (args.split,))
    silent = None
    if generator.method == "stabilized":
        silent = load_silent_refs(silent_ref_paths(SILENT_INDEX))
    batch = to_device(generator_batch(clips, np.random.default_rng(0), args.windows, silent,
                                      generator.audio_offset), "cpu")
    quiet = torch.from_numpy(silent_mel(params)).expand_as(batch["mels"])
    with torch.no_grad():
        own = gen(batch["mels"], batch["pose"], batch["ref"])
        outputs = {"silent_mel": gen(quiet, batch["pose"], batch["ref"]),
                   "other_window_mel": gen(batch["mels"].roll(1, 0), batch["pose"], batch["ref"])}
    rows, cols = mouth_box(FACE_DIR, args.split, own.shape[-1])
    report = {"model": args.model, "method": generator.method, "windows": args.windows,
              "mouth_box_rows_cols": [rows.start, rows.stop, cols.start, cols.stop],
              "mouth_error_vs_ground_truth": float((own - batch["gt"])[..., rows, cols].abs().mean())}
    for name, out in outputs.items():
        diff = (own - out).abs()
        report[f"mouth_change_{name}"] = float(diff[..., rows, cols].mean())
        report[f"upper_face_change_{name}"] = float(diff[..., : own.shape[-2] // 2, :].mean())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
