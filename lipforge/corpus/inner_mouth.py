"""The inside of an open mouth, painted within the warped inner-lip contour.

The warp only moves the photo's pixels: opening a closed mouth stretches the thin seam between the
lips over the opening. This paints what a camera would see there instead, from the landmarks alone:
a dark cavity (darkest at the throat), the upper teeth under the upper lip, the tongue and a hint of
lower teeth when the jaw is well open, plus the shadow along the lip seam. Edges are anti-aliased and
feathered so the paint blends with the lips at 96 px crops.
"""
from __future__ import annotations

import cv2
import numpy as np

from lipforge.corpus.mouth import MAX_GAP, mouth_open_px

CAVITY_RGB = np.array([70.0, 24.0, 28.0])
TEETH_RGB = np.array([226.0, 219.0, 204.0])
LOWER_TEETH_RGB = np.array([190.0, 180.0, 168.0])
TONGUE_RGB = np.array([160.0, 70.0, 76.0])
SEAM_DARKENING = (0.45, 0.2)  # lip-seam shadow strength when closed / open
UPPER_CONTOUR = (60, 61, 62, 63, 64)
LOWER_CONTOUR = (60, 67, 66, 65, 64)
_CURVE_SAMPLES = 17


def lip_curve(pa: np.ndarray, pb: np.ndarray, ids: tuple[int, ...], a: np.ndarray) -> np.ndarray:
    """b of a smooth (shape-preserving cubic) inner-lip curve through landmarks `ids` at positions a."""
    from scipy.interpolate import PchipInterpolator

    xa, xb = pa[list(ids)], pb[list(ids)]
    order = np.argsort(xa, kind="stable")
    xa, xb = xa[order], xb[order]
    keep = np.concatenate([[True], np.diff(xa) > 1e-6])  # Pchip needs strictly increasing a
    xa, xb = xa[keep], xb[keep]
    if len(xa) < 2:
        return np.full_like(a, xb.mean() if len(xb) else 0.0)
    return PchipInterpolator(xa, xb, extrapolate=False)(np.clip(a, xa[0], xa[-1]))


def paint_inner_mouth(frame: np.ndarray, pts: np.ndarray, rest_width: float) -> np.ndarray:
    """Shade the lip seam, and inside an open inner-lip contour paint cavity, teeth and tongue.

    frame: RGB uint8 (a modified copy is returned); pts: the frame's 68 landmarks; rest_width: the
    rest mouth width in frame pixels (the teeth keep their size whatever the lips do).
    """
    h, w = frame.shape[:2]
    pts = pts.astype(np.float64)
    left, right = pts[60], pts[64]
    u = (right - left) / max(np.linalg.norm(right - left), 1e-6)
    v = np.array([-u[1], u[0]])
    mid = (left + right) / 2
    pa, pb = (pts - mid) @ u, (pts - mid) @ v
    half = max(float(np.max(np.abs(pa[60:68]))), 1e-3)
    gap = mouth_open_px(pts)

    pad = 3
    x0, y0 = np.floor(pts[60:68].min(axis=0)).astype(int) - pad
    x1, y1 = np.ceil(pts[60:68].max(axis=0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return frame
    out = frame.copy()
    roi = out[y0:y1, x0:x1].astype(np.float32)

    # smooth contours in frame pixels, relative to the ROI
    ca = np.linspace(pa[60], pa[64], _CURVE_SAMPLES)
    up_b, lo_b = lip_curve(pa, pb, UPPER_CONTOUR, ca), lip_curve(pa, pb, LOWER_CONTOUR, ca)
    to_px = lambda a_, b_: mid + np.outer(a_, u) + np.outer(b_, v) - (x0, y0)  # noqa: E731
    upper_px = to_px(ca, up_b)
    # The warp stretches the rest seam over the opening; let the paint overlap the lip edges a little
    # (more at the lower lip, whose edge moves most) so none of that stretched band shows.
    grow = min(gap / 4.0, 1.0)
    upper_fill, lower_fill = to_px(ca, up_b - 0.3 * grow), to_px(ca, lo_b + 0.7 * grow)

    # the seam between the lips is always in shadow; strongest when the lips press together
    seam = np.zeros(roi.shape[:2], np.uint8)
    cv2.polylines(seam, [np.round(upper_px * 16).astype(np.int32)], False, 255, 1, cv2.LINE_AA, shift=4)
    closedness = 1.0 - min(gap / 2.0, 1.0)
    strength = SEAM_DARKENING[1] + (SEAM_DARKENING[0] - SEAM_DARKENING[1]) * closedness
    roi *= 1.0 - strength * (seam.astype(np.float32) / 255.0)[..., None]

    if gap >= 0.25:
        mask = np.zeros(roi.shape[:2], np.uint8)
        poly = np.concatenate([upper_fill, lower_fill[::-1]])
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), 0.5)[..., None]
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        rx, ry = xs - mid[0], ys - mid[1]
        a, b = rx * u[0] + ry * u[1], rx * v[0] + ry * v[1]
        b_up, b_lo = lip_curve(pa, pb, UPPER_CONTOUR, a), lip_curve(pa, pb, LOWER_CONTOUR, a)
        q = np.clip(np.abs(a) / half, 0.0, 1.0)  # 0 centre .. 1 corner
        local_gap = np.maximum(b_lo - b_up, 1e-3)
        b_lo = b_lo + 0.7 * grow
        depth_up, depth_lo = b - b_up, b_lo - b  # px below the upper / above the lower lip edge
        open_frac = float(np.clip(gap / (MAX_GAP * rest_width), 0.0, 1.0))

        # cavity: darkest at the back of the throat (centre, just under the teeth), lighter at the cheeks
        shade = 0.3 + 0.7 * q ** 2
        img = CAVITY_RGB * shade[..., None]
        # tongue: low in the mouth, seen only once the jaw is well open
        tongue = (a / (0.55 * half)) ** 2 + ((depth_lo - 0.12 * gap) / (0.22 * gap + 1e-3)) ** 2
        t_alpha = (np.clip(1.2 - tongue, 0.0, 1.0) * 0.8 * np.clip(2 * open_frac - 0.3, 0, 1))[..., None]
        img = img * (1 - t_alpha) + TONGUE_RGB * (0.7 + 0.3 * (1 - q ** 2))[..., None] * t_alpha
        # lower teeth: a faint band behind the lower lip when wide open
        lower_h = np.minimum(0.10 * local_gap, 0.04 * rest_width)
        lt_alpha = (np.clip(lower_h - depth_lo + 0.5, 0.0, 1.0) * 0.45 * np.clip(2 * open_frac - 0.6, 0, 1)
                    * (1 - q ** 2))[..., None]
        img = img * (1 - lt_alpha) + LOWER_TEETH_RGB * lt_alpha
        # upper teeth: a band under the upper lip, a third of the opening tall up to one tooth height,
        # fading into shadow towards the corners
        teeth_h = np.minimum(0.34 * local_gap, 0.10 * rest_width)
        ut_alpha = (np.clip(teeth_h - depth_up + 0.5, 0.0, 1.0) * (1 - np.clip((q - 0.75) / 0.25, 0, 1)))[..., None]
        img = img * (1 - ut_alpha) + TEETH_RGB * (1 - 0.5 * q ** 2)[..., None] * ut_alpha
        roi = roi * (1 - alpha) + img.astype(np.float32) * alpha

    out[y0:y1, x0:x1] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    return out
