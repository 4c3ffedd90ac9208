"""Does the generated mouth copy its identity reference's mouth (lip leaking)? From the evaluate stage's
per-frame table (reports/eval_mouth_opening.csv, sample corpus only).

Frame t of a test clip is generated from the reference frame (t + N/2) mod N (`reference_schedule`, the same
for every row); `stabilized` gets G_S's closed-lip version of it, which is meant to stop the reference's mouth
from leaking into the output. On the sample corpus that reference's ground-truth opening anti-correlates with
frame t's (speech in the middle of a clip, silence at its ends), so a leak pulls the pooled correlation down.
This prints, per identity and pooled, the correlations among the generated opening, the ground truth and the
reference's ground truth, the partial correlation of the generated opening with the reference's given the
ground truth (about 0: no leak beyond what the truth explains), and the least-squares fit
generated = a * truth + b * reference + offset (px).

Needs `dvc repro evaluate`. Usage: python benchmarks/reference_leak.py [--csv PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.mouth_opening_by_identity import identity_groups  # noqa: E402
from lipforge.evaluation import reference_schedule  # noqa: E402
from lipforge.metrics.landmarks import correlation  # noqa: E402


def partial_correlation(x, y, given) -> float:
    """Pearson correlation of x and y with the linear effect of `given` removed from both:
    (r_xy - r_xg r_yg) / sqrt((1 - r_xg^2) (1 - r_yg^2)). NaN when `given` explains x or y exactly."""
    r_xy, r_xg, r_yg = correlation(x, y), correlation(x, given), correlation(y, given)
    denominator = np.sqrt((1 - r_xg ** 2) * (1 - r_yg ** 2))
    return float((r_xy - r_xg * r_yg) / denominator) if denominator > 1e-12 else float("nan")


def with_reference(table: pd.DataFrame) -> pd.DataFrame:
    """The table with `reference_sidecar`: each frame's reference frame's ground-truth opening. Needs every
    clip's frames 0..N-1, as the evaluate stage writes them."""
    parts = []
    for _, clip in table.groupby("clip_id", sort=False):
        clip = clip.sort_values("frame")
        if not np.array_equal(clip.frame.to_numpy(), np.arange(len(clip))):
            raise ValueError(f"clip {clip.clip_id.iloc[0]}: frames are not 0..{len(clip) - 1}; the reference "
                             "schedule needs the whole clip (re-run `dvc repro evaluate`)")
        parts.append(clip.assign(reference_sidecar=clip.ground_truth_sidecar.to_numpy()[reference_schedule(len(clip))]))
    return pd.concat(parts)


def leak_figures(table: pd.DataFrame) -> dict:
    gen, truth, ref = (table[c].to_numpy(np.float64) for c in ("generated", "ground_truth_sidecar",
                                                                "reference_sidecar"))
    design = np.column_stack([truth, ref, np.ones(len(table))])
    (a, b, offset), *_ = np.linalg.lstsq(design, gen, rcond=None)
    return {"frames": len(table),
            "r_generated_truth": round(correlation(gen, truth), 3),
            "r_generated_reference": round(correlation(gen, ref), 3),
            "r_truth_reference": round(correlation(truth, ref), 3),
            "partial_r_generated_reference_given_truth": round(partial_correlation(gen, ref, truth), 3),
            "fit": {"truth": round(float(a), 3), "reference": round(float(b), 3), "offset_px": round(float(offset), 2)}}


def by_identity(table: pd.DataFrame) -> dict:
    # a frame whose landmarks failed (NaN) still serves as another frame's reference
    table = with_reference(table).dropna(subset=["generated", "ground_truth_sidecar", "reference_sidecar"])
    return {name: leak_figures(g) for name, g in identity_groups(table).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default="reports/eval_mouth_opening.csv")
    args = ap.parse_args()
    table = pd.read_csv(args.csv)
    print(json.dumps(by_identity(table), indent=2))


if __name__ == "__main__":
    main()
