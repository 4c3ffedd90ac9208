"""Mouth-shape targets from the face_crop stage's 68-point landmarks, for the expert's auxiliary loss.

An expert trained only by BCE on synced/off-synced pairs gets one bit per pair about what a mouth looks
like, and on a corpus with few faces it learns those faces before it learns mouths. Landmarks exist for
every clip of any corpus (face_crop computes them), so each window also carries a dense target: three
per-frame descriptors of the lip contour, all ratios of lengths, so a mirror, shift or zoom of the window
(lipforge/train/augment.py) leaves them true. The image encoder predicts them from the frames, the audio
encoder from the mel of the frames it is paired with.

- opening: mean inner-lip gap (61-67, 62-66, 63-65) / mouth width (48-54);
- width: mouth width / the clip's median mouth width (spread vs. rounded lips);
- height: outer-lip height (51-57) / mouth width.
"""
from __future__ import annotations

import numpy as np

N_DESCRIPTORS = 3
INNER_PAIRS = ((61, 67), (62, 66), (63, 65))


def mouth_shape(landmarks: np.ndarray) -> np.ndarray:
    """(T, 68, 2) landmarks of one clip -> (T, 3) float32 descriptors (opening, width, height)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[1:] != (68, 2):
        raise ValueError(f"expected (T, 68, 2) landmarks, got shape {pts.shape}")
    width = np.linalg.norm(pts[:, 54] - pts[:, 48], axis=1)
    if np.any(width <= 0):
        raise ValueError("a frame has coincident mouth corners (points 48 and 54): its landmarks are invalid")
    up, lo = np.array(INNER_PAIRS).T
    gap = np.linalg.norm(pts[:, lo] - pts[:, up], axis=2).mean(axis=1)
    height = np.linalg.norm(pts[:, 57] - pts[:, 51], axis=1)
    return np.stack([gap / width, width / np.median(width), height / width], axis=1).astype(np.float32)


def standardizer(shapes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-descriptor (mean, std) over the frames of the training clips; std never below 1e-6."""
    frames = np.concatenate(shapes, axis=0)
    return frames.mean(axis=0).astype(np.float32), np.maximum(frames.std(axis=0), 1e-6).astype(np.float32)
