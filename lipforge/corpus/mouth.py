"""The articulated mouth: mouth parameters -> moved 68-point landmarks, and the painted inner mouth.

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

import cv2
import numpy as np
from scipy.spatial import Delaunay

MAX_GAP = 0.5  # inner-lip gap at jaw_open = 1, in rest mouth widths
UPPER_SHARE = 0.15  # fraction of an aperture change carried by the upper lip
SIDE_GAP = 0.75  # gap at the side pairs (61-67, 63-65) relative to the middle pair, unrounded
ROUND_SIDE_GAP = 0.20  # extra side gap when fully rounded: a round opening instead of a lens
ROUND_INNER_NARROWING = 0.25  # inner opening narrows this much more than the outer lips when rounded
ROUND_EVERSION = 0.05  # lips evert (look fuller) by this many mouth widths when fully rounded
JAW_NARROWING = 0.06  # the corners come in a little as the jaw drops

INNER_PAIRS = ((61, 67), (62, 66), (63, 65))  # (upper, lower) inner-lip points facing each other
UPPER_WEIGHTS = {49: 0.6, 50: 0.9, 51: 1.0, 52: 0.9, 53: 0.6, 61: 0.9, 62: 1.0, 63: 0.9}
LOWER_OUTER_WEIGHTS = {55: 0.65, 56: 0.92, 57: 1.0, 58: 0.92, 59: 0.65}
CORNER_WEIGHT = 0.4  # corners (48, 54, 60, 64) move this much of the lower-lip displacement
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
    jaw_open = float(np.clip(jaw_open, 0.0, 1.2))
    lip_width = float(np.clip(lip_width, 0.6, 1.4))
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
    for k in (48, 54, 60, 64):
        nb[k] = b[k] + CORNER_WEIGHT * lower_shift
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
    na[INNER] *= 1.0 - ROUND_INNER_NARROWING * lip_round
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


def triangulate(rest: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """(K, 3) triangles over the control points, built on a half-open mouth.

    Triangulating the rest pose would join points across a closed mouth arbitrarily; on an open mouth
    the inner-lip polygon gets its own triangles, which then collapse (never flip) as the lips close.
    """
    opened = deform_landmarks(rest, 0.6, 1.0, 0.0)
    tri = Delaunay(control_points(opened, anchors)).simplices.astype(np.int32)
    return np.ascontiguousarray(tri)


# ------------------------------------------------------------------------------------- inner mouth
CAVITY_RGB = np.array([72.0, 26.0, 30.0])
TEETH_RGB = np.array([226.0, 219.0, 204.0])
LOWER_TEETH_RGB = np.array([196.0, 188.0, 176.0])
TONGUE_RGB = np.array([170.0, 78.0, 84.0])


def _curve(a_pts: np.ndarray, b_pts: np.ndarray, a: np.ndarray) -> np.ndarray:
    order = np.argsort(a_pts)
    return np.interp(a, a_pts[order], b_pts[order])


def paint_inner_mouth(frame: np.ndarray, pts: np.ndarray, rest_width: float) -> np.ndarray:
    """Paint cavity, upper teeth, tongue and a hint of lower teeth inside the inner-lip contour.

    frame: RGB uint8, modified copy returned; pts: the frame's 68 landmarks; rest_width: the rest
    mouth width in frame pixels (teeth size does not change with the lips).
    """
    gap = mouth_open_px(pts)
    if gap < 0.25:
        return frame
    h, w = frame.shape[:2]
    inner = pts[60:68].astype(np.float64)
    x0, y0 = np.floor(inner.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(inner.max(axis=0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return frame

    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [np.round((inner - (x0, y0)) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.6)[..., None]

    left, right = pts[60].astype(np.float64), pts[64].astype(np.float64)
    u = (right - left) / max(np.linalg.norm(right - left), 1e-6)
    v = np.array([-u[1], u[0]])
    mid = (left + right) / 2
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    rel_x, rel_y = xs - mid[0], ys - mid[1]
    a, b = rel_x * u[0] + rel_y * u[1], rel_x * v[0] + rel_y * v[1]
    upper_ids, lower_ids = [60, 61, 62, 63, 64], [60, 67, 66, 65, 64]
    ia, ib = (inner - mid) @ u + 0.0, (inner - mid) @ v
    pa, pb = (pts.astype(np.float64) - mid) @ u, (pts.astype(np.float64) - mid) @ v
    b_up = _curve(pa[upper_ids], pb[upper_ids], a)
    b_lo = _curve(pa[lower_ids], pb[lower_ids], a)
    half = max(float(np.max(np.abs(ia))), 1e-3)
    q = np.clip(np.abs(a) / half, 0.0, 1.0)  # 0 centre .. 1 corner
    local_gap = np.maximum(b_lo - b_up, 1e-3)
    depth_up = b - b_up  # px below the upper lip edge
    depth_lo = b_lo - b  # px above the lower lip edge

    # cavity: darkest in the middle (the throat), lighter towards the cheeks
    shade = (0.35 + 0.65 * q ** 2)[..., None]
    img = CAVITY_RGB * shade
    # tongue: a soft ellipse resting behind the lower teeth
    t_cy = -0.22 * gap  # relative to the lower lip edge
    tongue = ((a / (0.6 * half)) ** 2 + ((depth_lo + t_cy) / (0.32 * gap + 1e-3)) ** 2)
    t_alpha = np.clip(1.5 - tongue, 0.0, 1.0)[..., None] * 0.85
    img = img * (1 - t_alpha) + TONGUE_RGB * (0.75 + 0.25 * (1 - q ** 2))[..., None] * t_alpha
    # lower teeth: a thin, shadowed band just above the lower lip, visible only when wide open
    lower_h = np.minimum(0.10 * local_gap, 0.05 * rest_width)
    lt_alpha = np.clip(lower_h - depth_lo + 0.5, 0.0, 1.0)[..., None] * np.clip(gap / (0.15 * rest_width), 0, 1) * 0.7
    img = img * (1 - lt_alpha) + LOWER_TEETH_RGB * (1 - 0.5 * q ** 2)[..., None] * lt_alpha
    # upper teeth: a band under the upper lip, as tall as a third of the opening up to a tooth height
    teeth_h = np.minimum(0.34 * local_gap, 0.11 * rest_width)
    ut_alpha = np.clip(teeth_h - depth_up + 0.5, 0.0, 1.0)[..., None] * (1 - np.clip((q - 0.8) / 0.2, 0, 1))[..., None]
    img = img * (1 - ut_alpha) + TEETH_RGB * (1 - 0.45 * q ** 2)[..., None] * ut_alpha

    out = frame.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(roi * (1 - alpha) + img.astype(np.float32) * alpha + 0.5, 0, 255).astype(np.uint8)
    return out
