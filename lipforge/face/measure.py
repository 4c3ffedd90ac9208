"""Landmarks on images the pipeline made (crops, generated frames), with the face box it already knows.

Used to measure mouth opening and LMD on generated faces by the same code that measures the originals.
"""
from __future__ import annotations

import numpy as np


def box_in_crop(box, crop_box, img_size: int) -> np.ndarray:
    """A full-frame face box (x1, y1, x2, y2) in the pixel coordinates of its img_size x img_size crop."""
    cx1, cy1, cx2, cy2 = (float(v) for v in crop_box)
    scale = np.array([img_size / (cx2 - cx1), img_size / (cy2 - cy1)] * 2)
    return (np.asarray(box, dtype=np.float64) - np.array([cx1, cy1, cx1, cy1])) * scale


def landmarks_in_boxes(backend, images: np.ndarray, boxes: np.ndarray, upscale: int = 1) -> np.ndarray:
    """(N, 68, 2) landmarks of images (N, H, W, 3) uint8 inside the given boxes (N, 4).

    `upscale` enlarges small images (96 px crops) before the landmark model runs; points are returned in
    the original pixel coordinates.
    """
    import cv2

    out = np.zeros((len(images), 68, 2))
    for i, (img, box) in enumerate(zip(images, boxes)):
        if upscale > 1:
            img = cv2.resize(np.ascontiguousarray(img), None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
        out[i] = backend.landmarks(img, np.asarray(box, dtype=np.float64) * upscale) / upscale
    return out
