"""How the generated mouth opening relates to the ground truth per test identity, from the evaluate stage's
per-frame table (reports/eval_mouth_opening.csv, sample corpus only).

The pooled correlation (the issue's gate) mixes identities: a generator that follows the audio on every face
but opens one face's mouth half as wide, or holds another's a little open, scores lower pooled than per face.
This prints, per identity and pooled, the correlation of the generated opening with the ground-truth sidecar
and the least-squares line generated = slope * truth + offset (px), next to the same for the ground-truth
frames measured by the same landmark code. `--by-clip` prints the same per test clip: whether a face's shortfall is
spread over its clips or carried by a few.

Needs `dvc repro evaluate`. Usage: python benchmarks/mouth_opening_by_identity.py [--csv PATH] [--by-clip]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd


def line_fit(truth: np.ndarray, measured: np.ndarray) -> dict:
    slope, offset = np.polyfit(truth, measured, 1)
    return {"r": round(float(np.corrcoef(truth, measured)[0, 1]), 3), "slope": round(float(slope), 2),
            "offset_px": round(float(offset), 2), "mean_px": round(float(measured.mean()), 2)}


def identity_groups(table: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """"pooled" (every frame), then one table per identity (the speaker folder of `clip_id`)."""
    return {"pooled": table, **dict(iter(table.groupby(table.clip_id.str.split("/").str[0])))}


def lines(groups: dict[str, pd.DataFrame]) -> dict:
    return {name: {"frames": len(g), "generated": line_fit(g.ground_truth_sidecar.values, g.generated.values),
                   "ground_truth_measured": line_fit(g.ground_truth_sidecar.values, g.ground_truth_measured.values)}
            for name, g in groups.items()}


def by_identity(table: pd.DataFrame) -> dict:
    return lines(identity_groups(table))


def by_clip(table: pd.DataFrame) -> dict:
    return lines(dict(iter(table.groupby("clip_id"))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default="reports/eval_mouth_opening.csv")
    ap.add_argument("--by-clip", action="store_true", help="one line per test clip instead of per identity")
    args = ap.parse_args()
    table = pd.read_csv(args.csv).dropna(subset=["ground_truth_sidecar", "generated", "ground_truth_measured"])
    print(json.dumps(by_clip(table) if args.by_clip else by_identity(table), indent=2))


if __name__ == "__main__":
    main()
