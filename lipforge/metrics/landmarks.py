"""Landmark-based lip metrics on the 68-point iBUG layout (0-based indices).

Mouth: 48-59 outer lip, 60-67 inner lip; the inner-lip vertical pairs are (61, 67), (62, 66), (63, 65).
"""
from __future__ import annotations

import numpy as np

FACE = slice(0, 68)
MOUTH = slice(48, 68)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
_REGIONS = {"mouth": MOUTH, "face": FACE}


def _landmarks(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.shape[-2:] != (68, 2):
        raise ValueError(f"{name} must be (..., 68, 2), got shape {x.shape}")
    return x


def mouth_opening(landmarks) -> np.ndarray:
    """Inner-lip opening per frame, (T, 68, 2) -> (T,):
    (|p61 - p67| + |p62 - p66| + |p63 - p65|) / 3 with |.| the Euclidean distance."""
    lm = _landmarks(landmarks, "landmarks")
    gaps = [np.linalg.norm(lm[..., top, :] - lm[..., bottom, :], axis=-1) for top, bottom in INNER_LIP_PAIRS]
    return np.mean(gaps, axis=0)


def landmark_distance(pred, gt, region: str = "mouth") -> float:
    """Landmark distance LMD (Chen et al. 2019): mean over frames t and points p of ||pred[t, p] - gt[t, p]||_2.

    region 'mouth' -> M-LMD over points 48-67, 'face' -> F-LMD over all 68 points. No normalisation is
    applied: both sequences must already be in the same (aligned, scaled) coordinate frame, e.g. pixels of
    the face crop.
    """
    if region not in _REGIONS:
        raise ValueError(f"region must be one of {sorted(_REGIONS)}, got {region!r}")
    p, g = _landmarks(pred, "pred"), _landmarks(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"shape mismatch: {p.shape} vs {g.shape}")
    sl = _REGIONS[region]
    return float(np.linalg.norm(p[..., sl, :] - g[..., sl, :], axis=-1).mean())


def correlation(a, b) -> float:
    """Pearson correlation r = cov(a, b) / (std(a) std(b)) of two equal-length 1-D series (e.g. mouth openings).

    Returns NaN when either series is constant (zero variance, r undefined) or has fewer than 2 values.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"length mismatch: {a.size} vs {b.size}")
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt((da * da).sum() * (db * db).sum())
    if denom == 0.0:
        return float("nan")
    return float((da * db).sum() / denom)
