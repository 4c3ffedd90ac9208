"""The articulated mouth: mouth parameters -> moved 68-point landmarks, and the warp's triangulation.

Geometry works in the mouth's own axes (u along the outer lip corners 48 -> 54, v perpendicular,
pointing to the chin), in units of the rest mouth width W, so the same parameters give the same
shape on every face, at any photo scale and head roll:
- the inner-lip gap is jaw_open * MAX_GAP * W, lens-shaped (a bit less at the sides, rounder when
  the lips are rounded); the upper lip takes UPPER_SHARE of the movement, the lower lip the rest;
- the lower lip, the mouth corners (partly) and the jaw line (by height between nose and chin) follow
  the lower inner lip, so the chin drops when the mouth opens;
- lip_width scales all lip points along u; rounding narrows the inner opening and everts the lips.
Photos whose rest mouth is open (a smile with teeth) close correctly: the lower inner lip is placed
relative to the upper one, never relative to where it was.
"""
from __future__ import annotations

import numpy as np
from matplotlib.path import Path
from scipy.spatial import ConvexHull, Delaunay

from lipforge.corpus.warp import signed_areas

MAX_GAP = 0.5  # inner-lip gap at jaw_open = 1, in rest mouth widths
UPPER_SHARE = 0.15  # fraction of an aperture change carried by the upper lip
SIDE_GAP = 0.82  # gap at the side pairs (61-67, 63-65) relative to the middle pair, unrounded
ROUND_SIDE_GAP = 0.12  # extra side gap when fully rounded: a round opening instead of a lens
ROUND_INNER_NARROWING = 0.25  # inner opening narrows this much more than the outer lips when rounded
ROUND_EVERSION = 0.05  # lips evert (look fuller) by this many mouth widths when fully rounded
JAW_NARROWING = 0.06  # the corners come in a little as the jaw drops
# Parameter ranges the warp is built for (the viseme targets span them); inputs are clipped to them.
JAW_RANGE = (0.0, 1.0)
WIDTH_RANGE = (0.75, 1.2)

INNER_PAIRS = ((61, 67), (62, 66), (63, 65))  # (upper, lower) inner-lip points facing each other
UPPER_WEIGHTS = {49: 0.6, 50: 0.9, 51: 1.0, 52: 0.9, 53: 0.6, 61: 0.9, 62: 1.0, 63: 0.9}
LOWER_OUTER_WEIGHTS = {55: 0.65, 56: 0.92, 57: 1.0, 58: 0.92, 59: 0.65}
CORNER_WEIGHT = 0.4  # corners (48, 54, 60, 64) drop this much of the lower lip's drop
EVERT_UPPER = {50: 0.8, 51: 1.0, 52: 0.8}
EVERT_LOWER = {56: 0.8, 57: 1.0, 58: 0.8}
LIPS = np.arange(48, 68)
INNER = np.arange(60, 68)
JAW = np.arange(0, 17)
# Control points of the warp: jaw line, nose (fixed), lips; plus an outer ring of fixed anchors.
CONTROL = np.concatenate([JAW, np.arange(27, 36), LIPS])


def mouth_axes(rest: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(centre, u, v, width) of the rest mouth."""
    left, right = rest[48].astype(np.float64), rest[54].astype(np.float64)
    width = float(np.linalg.norm(right - left))
    u = (right - left) / width
    v = np.array([-u[1], u[0]])
    return (left + right) / 2, u, v, width


def inner_gaps(pts: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed inner-lip gaps of the three facing pairs along v (positive = open)."""
    return np.array([(pts[lo] - pts[up]) @ v for up, lo in INNER_PAIRS])


def mouth_open_px(pts: np.ndarray) -> float:
    """Inner-lip gap: mean distance of the three facing inner-lip pairs, in the pixels of `pts`."""
    return float(np.mean([np.linalg.norm(pts[lo] - pts[up]) for up, lo in INNER_PAIRS]))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def deform_landmarks(rest: np.ndarray, jaw_open: float, lip_width: float, lip_round: float) -> np.ndarray:
    """The 68 rest landmarks moved to the given mouth parameters (same coordinates as `rest`)."""
    jaw_open = float(np.clip(jaw_open, *JAW_RANGE))
    lip_width = float(np.clip(lip_width, *WIDTH_RANGE))
    lip_round = float(np.clip(lip_round, 0.0, 1.0))
    c, u, v, width = mouth_axes(rest)
    rel = rest.astype(np.float64) - c
    a, b = rel @ u, rel @ v

    gap = jaw_open * MAX_GAP * width
    rest_gap = max(0.0, float(np.mean(inner_gaps(rest, v))))
    upper_shift = -UPPER_SHARE * (gap - rest_gap)
    nb = b.copy()
    for k, wgt in UPPER_WEIGHTS.items():
        nb[k] = b[k] + wgt * upper_shift
    side = SIDE_GAP + ROUND_SIDE_GAP * lip_round
    for (up, lo), profile in zip(INNER_PAIRS, (side, 1.0, side)):
        nb[lo] = nb[up] + gap * profile
    lower_shift = nb[66] - b[66]
    for k, wgt in LOWER_OUTER_WEIGHTS.items():
        nb[k] = b[k] + wgt * lower_shift
    # The corners drop with a jaw opening wider than the photo's, but stay put (the hinge) when a
    # photo's open mouth closes; moving them up would fold them over the upper lip.
    corner_shift = CORNER_WEIGHT * max(lower_shift, 0.0)
    for k in (48, 54, 60, 64):
        nb[k] = b[k] + corner_shift
    # The jaw line follows by height: nothing at the nose tip, fully at the chin.
    height = _smoothstep((b[JAW] - b[33]) / max(b[8] - b[33], 1e-6))
    nb[JAW] = b[JAW] + height * lower_shift
    for k, wgt in EVERT_UPPER.items():
        nb[k] -= wgt * ROUND_EVERSION * width * lip_round
    for k, wgt in EVERT_LOWER.items():
        nb[k] += wgt * ROUND_EVERSION * width * lip_round

    na = a.copy()
    spread = lip_width * (1.0 - JAW_NARROWING * jaw_open)
    na[LIPS] = a[LIPS] * spread
    # a rounded *opening* is narrower than the lips; closed lips have no opening to narrow
    na[INNER] *= 1.0 - ROUND_INNER_NARROWING * lip_round * min(1.0, jaw_open / 0.3)
    # Each lower inner-lip point sits right under the upper point it faces, so a closed mouth is
    # closed exactly (zero gap) and the triangles across the opening collapse instead of folding.
    for up, lo in INNER_PAIRS:
        na[lo] = na[up]
    out = c + np.outer(na, u) + np.outer(nb, v)
    return out.astype(np.float32)


def anchor_ring(rest: np.ndarray, per_side: int = 5) -> np.ndarray:
    """Fixed points on a box around the lower face, far enough that the neck absorbs a dropping chin."""
    pts = rest[CONTROL].astype(np.float64)
    face_w = float(np.linalg.norm(rest[16] - rest[0]))
    x0, y0 = pts.min(axis=0) - 0.25 * face_w
    x1, y1 = pts.max(axis=0) + (0.25 * face_w, 0.6 * face_w)
    t = np.linspace(0.0, 1.0, per_side, endpoint=False)
    top = np.stack([x0 + (x1 - x0) * t, np.full_like(t, y0)], 1)
    right = np.stack([np.full_like(t, x1), y0 + (y1 - y0) * t], 1)
    bottom = np.stack([x1 - (x1 - x0) * t, np.full_like(t, y1)], 1)
    left = np.stack([np.full_like(t, x0), y1 - (y1 - y0) * t], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float32)


def control_points(landmarks: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks[CONTROL], anchors]).astype(np.float64)


# The lips have a fixed topology: a band between the outer contour and the inner contour for each
# lip, and the inner mouth as a strip whose every triangle holds a facing pair (61-67, 62-66, 63-65)
# or a corner, so the strip collapses to zero area, never folds, when the lips close. Only the face
# around the lips is left to Delaunay, whose triangles would otherwise join the lips arbitrarily.
OUTER_LIP = tuple(range(48, 60))
LIP_TRIANGLES = (
    # upper lip
    (48, 49, 60), (49, 61, 60), (49, 50, 61), (50, 62, 61), (50, 51, 62), (51, 52, 62), (52, 63, 62),
    (52, 53, 63), (53, 64, 63), (53, 54, 64),
    # lower lip
    (54, 55, 64), (55, 65, 64), (55, 56, 65), (56, 66, 65), (56, 57, 66), (57, 58, 66), (58, 67, 66),
    (58, 59, 67), (59, 60, 67), (59, 48, 60),
    # inner mouth
    (60, 61, 67), (61, 62, 67), (62, 66, 67), (62, 63, 66), (63, 65, 66), (63, 64, 65),
)


def _control_index(landmark: int) -> int:
    return int(np.nonzero(CONTROL == landmark)[0][0])


def triangulate(rest: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(K, 3) triangles over the control points, all counter-clockwise on a half-open mouth.

    Delaunay over the face points outside the lips (the outer lip contour included), minus its
    triangles inside the outer lip contour, plus LIP_TRIANGLES. Raises if the result does not tile
    the hull of the control points exactly (degenerate landmarks).
    """
    opened = deform_landmarks(rest, 0.6, 1.0, 0.0)
    pts = control_points(opened, anchors)
    inner_ctrl = {_control_index(k) for k in range(60, 68)}
    outside = np.array([i for i in range(len(pts)) if i not in inner_ctrl])
    tri = outside[Delaunay(pts[outside]).simplices]
    lips = Path(pts[[_control_index(k) for k in OUTER_LIP]])
    tri = tri[~lips.contains_points(pts[tri].mean(axis=1))]
    fixed = np.array([[_control_index(k) for k in t] for t in LIP_TRIANGLES])
    tri = np.concatenate([tri, fixed]).astype(np.int32)
    areas = signed_areas(pts, tri)
    hull_area = ConvexHull(pts).volume
    if abs(np.abs(areas).sum() - hull_area) > 1e-6 * hull_area + 1e-3:
        raise ValueError("the mouth triangulation does not tile the lower face; this photo's landmarks are "
                         "degenerate (inspect its detection with lipforge.corpus.faces.detect_faces)")
    tri[areas < 0] = tri[areas < 0][:, ::-1]  # one orientation, so a fold shows as a sign change
    return np.ascontiguousarray(tri)
