"""How much of the mouth-opening correlation does blur alone cost? The evaluate stage measures every row's mouth
opening with dlib landmarks on the pasted-back frames; the ground truth scores r 0.95 against the sidecars, but
the generated faces are blurred. This blurs the ground-truth crops of the test clips with a Gaussian of growing
sigma, measures them with the same code, and prints, per sigma, their sharpness (variance of the Laplacian over
the lower half of the crop) and pooled correlation with the sidecars, next to the generator's own. Read the
correlation at the sigma whose sharpness matches the generator's: what a generator that drew every mouth
exactly right, but as blurred, would score.

Needs `dvc repro evaluate`. Usage: python benchmarks/blurred_truth.py [--sigmas 0 1 2 3]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipforge import metrics as M  # noqa: E402
from lipforge.evaluation import evaluate_clip, pasted_landmarks  # noqa: E402
from lipforge.face.clipmeta import read_clip_meta  # noqa: E402
from lipforge.face.detectors import load_backend  # noqa: E402
from lipforge.media import read_video_frames  # noqa: E402
from lipforge.params import load_params  # noqa: E402
from stages.evaluate import FACE_DIR, MANIFEST, MEL_INDEX, SILENT_INDEX, clip_context, clip_rows  # noqa: E402


def blurred(crops: np.ndarray, sigma: float) -> np.ndarray:
    """uint8 crops (T, H, W, 3) blurred by a Gaussian of `sigma` px (unchanged at 0)."""
    if sigma <= 0:
        return crops
    return np.stack([cv2.GaussianBlur(c, (0, 0), sigma) for c in crops])


def lower_half_sharpness(crops: np.ndarray) -> float:
    """Mean over frames of the variance of the Laplacian of the grey lower half (higher: sharper)."""
    half = crops.shape[1] // 2
    return float(np.mean([cv2.Laplacian(cv2.cvtColor(c[half:], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                          for c in crops]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sigmas", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
    args = ap.parse_args()
    torch.set_num_threads(2)
    params = load_params()
    method = params.train_generator.method
    ctx = clip_context(params)
    backend = load_backend("dlib")   # the evaluate stage's landmark model
    truth, generated, gen_sharpness = [], [], []
    opening = {s: [] for s in args.sigmas}
    sharpness = {s: [] for s in args.sigmas}
    for row in clip_rows(params, FACE_DIR, MEL_INDEX, MANIFEST, SILENT_INDEX):
        if not row.get("gt_path"):
            sys.exit(f"clip {row['clip_id']} has no ground-truth sidecar: this benchmark needs the sample corpus")
        per_frame = evaluate_clip(row, ctx)["per_frame"]
        gt_crops, gen_rows = per_frame["ground_truth"]["crops"], per_frame[method]
        m = len(gen_rows["gt_mouth_opening"])
        truth.append(gen_rows["gt_mouth_opening"])
        generated.append(gen_rows["mouth_opening"][:m])
        gen_sharpness.append(lower_half_sharpness(gen_rows["crops"]))
        meta = read_clip_meta(FACE_DIR / row["meta_path"])
        n = len(gt_crops)
        full = read_video_frames(row["video_path"], params.manifest.fps)[:n]
        for s in args.sigmas:
            crops = blurred(gt_crops, s)
            opening[s].append(M.mouth_opening(pasted_landmarks(backend, crops, full, meta)[1])[:m])
            sharpness[s].append(lower_half_sharpness(crops))
    truth = np.concatenate(truth)
    out = {"generated": {"sharpness": round(float(np.mean(gen_sharpness)), 1),
                         "corr": round(M.correlation(np.concatenate(generated), truth), 3)},
           "ground_truth_blurred": {str(s): {"sharpness": round(float(np.mean(sharpness[s])), 1),
                                             "corr": round(M.correlation(np.concatenate(opening[s]), truth), 3)}
                                    for s in args.sigmas}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
