"""Temporal consistency metric: inter-frame consistency (IFC).

As used by the Stabilized-Sync paper (section 4), after the training objective of Zhou et al. 2022
("Responsive listening head generation"): the difference between the distances of consecutive frames in the
generated and the GT video. Lower is better.
"""
from __future__ import annotations

import numpy as np


def inter_frame_consistency(gen, gt, data_range: float = 255.0) -> float:
    """IFC of two (T, H, W, C) videos:

        d(u, v) = mean |u - v|   (images scaled to [0, 1], i.e. divided by data_range)
        IFC = mean_{t=1..T-1} | d(gen_t, gen_{t-1}) - d(gt_t, gt_{t-1}) |

    Returns NaN for T < 2 (no consecutive pair).
    """
    g = np.asarray(gen, dtype=np.float64) / data_range
    r = np.asarray(gt, dtype=np.float64) / data_range
    if g.shape != r.shape:
        raise ValueError(f"shape mismatch: {g.shape} vs {r.shape}")
    if g.ndim < 1 or g.shape[0] < 2:
        return float("nan")
    step_axes = tuple(range(1, g.ndim))
    d_gen = np.abs(np.diff(g, axis=0)).mean(axis=step_axes)
    d_gt = np.abs(np.diff(r, axis=0)).mean(axis=step_axes)
    return float(np.abs(d_gen - d_gt).mean())
