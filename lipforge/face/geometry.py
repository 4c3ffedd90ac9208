"""Box and landmark arithmetic for face cropping: pure numpy functions, no I/O.

Boxes are float (x1, y1, x2, y2) in full-frame pixels, x2/y2 exclusive edges. Landmark points use the
pixel-centre convention (pixel (i, j) has centre (j, i)), which is what dlib and face-alignment return.
"""
from __future__ import annotations

import numpy as np


def fill_missing_boxes(boxes: np.ndarray) -> np.ndarray:
    """Rows that are all-NaN (no detection) filled by linear interpolation between the nearest detected
    frames before and after; before the first / after the last detection the nearest one is held.

    Raises ValueError when no row has a detection (nothing to interpolate from).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    found = ~np.isnan(boxes).any(axis=1)
    if not found.any():
        raise ValueError("no frame has a detected box; nothing to interpolate from")
    t = np.arange(len(boxes))
    # np.interp holds the end values outside the known range, which is the edge rule we want.
    return np.stack([np.interp(t, t[found], boxes[found, c]) for c in range(boxes.shape[1])], axis=1)


def smooth_boxes(boxes: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` (odd) frames.

    Near the ends the window shrinks symmetrically (frame t averages t-r..t+r with r = min(window//2, t,
    T-1-t)), so it stays centred and a box moving at constant speed is left exactly unchanged; a
    truncated one-sided window would drag the first and last boxes towards the interior.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"smooth window must be a positive odd number, got {window}")
    boxes = np.asarray(boxes, dtype=np.float64)
    if np.isnan(boxes).any():
        raise ValueError("boxes contain NaN rows; fill_missing_boxes first")
    n = len(boxes)
    # Prefix sums make every window mean O(1).
    csum = np.concatenate([np.zeros((1,) + boxes.shape[1:]), np.cumsum(boxes, axis=0)])
    t = np.arange(n)
    r = np.minimum(np.minimum(window // 2, t), n - 1 - t)
    lo, hi = t - r, t + r + 1
    return (csum[hi] - csum[lo]) / (hi - lo)[:, None]


def crop_box(box, frame_h: int, frame_w: int, pad_fraction: float) -> tuple[int, int, int, int]:
    """Integer square crop (x1, y1, x2, y2) around a face box, inside a frame_h x frame_w image.

    The side is the larger box side plus `pad_fraction` of it on each side, centred on the box centre.
    A square that does not fit is shifted back inside the image (the face stays whole rather than the
    crop losing its square shape); one larger than the image shrinks to the image's shorter side.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = int(round(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * pad_fraction)))
    side = max(1, min(side, frame_h, frame_w))
    left = int(round(cx - side / 2.0))
    top = int(round(cy - side / 2.0))
    left = min(max(left, 0), frame_w - side)
    top = min(max(top, 0), frame_h - side)
    return left, top, left + side, top + side


def landmarks_to_crop(landmarks: np.ndarray, box, out_size: int) -> np.ndarray:
    """Full-frame landmark points (..., 2) in the pixel coordinates of `box` resized to out_size x out_size.

    Pixel-centre convention, matching cv2.resize: the crop's edge x1 maps to -0.5, so a point at pixel
    centre x lands at (x - x1 + 0.5) * out_size / width - 0.5.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    scale = np.array([out_size / (x2 - x1), out_size / (y2 - y1)])
    return (np.asarray(landmarks, dtype=np.float64) - np.array([x1, y1]) + 0.5) * scale - 0.5
