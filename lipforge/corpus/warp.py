"""Dense piecewise-affine backward maps over a triangulation (the classic AAM warp), for cv2.remap.

Each output pixel inside a destination triangle is sent to the same barycentric position in the
source triangle; pixels outside the triangulated region use a global affine. The map is continuous
across triangle edges and, because the triangulation's outer ring does not move, continuous with the
global affine at its border. Triangles that collapse to zero area (an inner mouth that closes) cover
no pixels, which is exactly how the region between the lips disappears.
"""
from __future__ import annotations

import cv2
import numpy as np

_SUBPIXEL_BITS = 4  # fillConvexPoly fixed-point precision: 1/16 px
_MIN_AREA = 1e-4  # px^2: below this a destination triangle covers no pixel centre
_SLIVER_AREA = 2.0  # px^2: triangles smaller than this never extrapolate


def apply_affine(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(N, 2) points through a 2x3 affine."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, dtype=np.float64))


def signed_areas(pts: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    p0, p1, p2 = (pts[triangles[:, k]] for k in range(3))
    return 0.5 * ((p1[:, 0] - p0[:, 0]) * (p2[:, 1] - p0[:, 1]) - (p1[:, 1] - p0[:, 1]) * (p2[:, 0] - p0[:, 0]))


def piecewise_affine_map(dst_pts: np.ndarray, src_pts: np.ndarray, triangles: np.ndarray,
                         shape: tuple[int, int], outside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 (map_x, map_y) of `shape` (h, w): output pixel -> source pixel.

    dst_pts/src_pts: (N, 2) corresponding control points (output / source coordinates);
    triangles: (K, 3) vertex indices; outside: 2x3 affine output -> source for uncovered pixels.
    """
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    map_x = outside[0, 0] * xs + outside[0, 1] * ys + outside[0, 2]
    map_y = outside[1, 0] * xs + outside[1, 1] * ys + outside[1, 2]

    dst = np.asarray(dst_pts, dtype=np.float64)
    src = np.asarray(src_pts, dtype=np.float64)
    x0, y0 = np.floor(dst.min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(dst.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return map_x.astype(np.float32), map_y.astype(np.float32)

    # Rasterise triangle ids (k + 1; 0 = uncovered), largest first so slivers keep their own pixels.
    areas = np.abs(signed_areas(dst, triangles))
    label = np.zeros((y1 - y0, x1 - x0), dtype=np.int32)
    scale = 1 << _SUBPIXEL_BITS
    for k in np.argsort(-areas, kind="stable"):
        if areas[k] < _MIN_AREA:
            continue
        poly = np.round((dst[triangles[k]] - (x0, y0)) * scale).astype(np.int32)
        cv2.fillConvexPoly(label, poly, int(k) + 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)

    # Pixel centres exactly on a shared edge can be claimed by neither neighbour: give them a
    # neighbour's id (the barycentric clamp below then puts them on that shared edge).
    hull = np.zeros_like(label, dtype=np.uint8)
    hull_poly = cv2.convexHull(np.round((dst - (x0, y0)) * scale).astype(np.int32))
    cv2.fillConvexPoly(hull, hull_poly, 1, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)
    holes = (label == 0) & (hull == 1)
    if holes.any():
        grown = cv2.dilate(label.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
        label[holes] = grown[holes]
    iy, ix = np.nonzero(label)
    if len(iy) == 0:
        return map_x.astype(np.float32), map_y.astype(np.float32)
    k = label[iy, ix] - 1
    px = np.stack([ix + x0, iy + y0], axis=1).astype(np.float64)
    tri = triangles[k]
    d0, d1, d2 = dst[tri[:, 0]], dst[tri[:, 1]], dst[tri[:, 2]]
    e1, e2, r = d1 - d0, d2 - d0, px - d0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-12, 1e-12, det)
    l1 = (r[:, 0] * e2[:, 1] - r[:, 1] * e2[:, 0]) / det
    l2 = (e1[:, 0] * r[:, 1] - e1[:, 1] * r[:, 0]) / det
    bary = np.stack([1.0 - l1 - l2, l1, l2], axis=1)
    # The rasteriser claims pixel centres up to half a pixel outside a triangle. A well-shaped triangle
    # extrapolates its affine exactly there; a sliver (a closing mouth) would amplify that half pixel
    # into a jump across the face, so such pixels are clamped onto the sliver instead.
    sliver = (np.abs(det) < 2 * _SLIVER_AREA)[:, None]
    clamped = np.clip(bary, 0.0, None)
    clamped /= clamped.sum(axis=1, keepdims=True)
    bary = np.where(sliver, clamped, bary)
    s = bary[:, :1] * src[tri[:, 0]] + bary[:, 1:2] * src[tri[:, 1]] + bary[:, 2:] * src[tri[:, 2]]
    map_x[iy + y0, ix + x0] = s[:, 0]
    map_y[iy + y0, ix + x0] = s[:, 1]
    return map_x.astype(np.float32), map_y.astype(np.float32)
