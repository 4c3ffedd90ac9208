"""One clip's frames -> per-frame face boxes, smoothed square crops and 68-point landmarks."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from lipforge.face.detectors import FaceBackend
from lipforge.face.geometry import crop_box, fill_missing_boxes, landmarks_to_crop, smooth_boxes
from lipforge.params import FaceCropParams


class FacelessClipError(ValueError):
    """Too many frames without a face; the message is the clip's rejects reason."""


@dataclass
class CroppedClip:
    frames: np.ndarray  # (T, S, S, 3) uint8 RGB face crops
    detected_boxes: np.ndarray  # (T, 4) detector boxes, NaN where not run or nothing found
    boxes: np.ndarray  # (T, 4) gaps interpolated + smoothed, in the detector's convention
    crop_boxes: np.ndarray  # (T, 4) int square crop in full-frame pixels (x2, y2 exclusive)
    landmarks: np.ndarray  # (T, 68, 2) full-frame pixel-centre coordinates
    landmarks_crop: np.ndarray  # (T, 68, 2) in the S x S crop's pixel coordinates
    face_found: np.ndarray  # (T,) bool
    detect_frames: np.ndarray  # (T,) bool: frames the detector ran on

    @property
    def faceless_fraction(self) -> float:
        return float(1.0 - self.face_found.mean())


def detection_frames(n_frames: int, every: int) -> np.ndarray:
    """Frames the detector runs on: every `every`-th, plus the last so no box is extrapolated."""
    mask = np.zeros(n_frames, dtype=bool)
    mask[::every] = True
    mask[-1] = True
    return mask


def face_found_mask(detect_frames: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Per-frame face presence. A frame the detector skipped counts as found only when the detected
    frames on both sides of it found a face (its box is then an interpolation, not a guess)."""
    idx = np.flatnonzero(detect_frames)
    prev_i = idx[np.clip(np.searchsorted(idx, np.arange(len(detect_frames)), side="right") - 1, 0, len(idx) - 1)]
    next_i = idx[np.clip(np.searchsorted(idx, np.arange(len(detect_frames)), side="left"), 0, len(idx) - 1)]
    return detected[prev_i] & detected[next_i]


def detect_boxes(frames: np.ndarray, backend: FaceBackend, detect_frames: np.ndarray,
                 max_side: int) -> np.ndarray:
    """(T, 4) largest-face boxes in full-frame pixels on the detect frames, NaN elsewhere and where none."""
    h, w = frames.shape[1:3]
    scale = min(1.0, max_side / max(h, w))
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    boxes = np.full((len(frames), 4), np.nan)
    for t in np.flatnonzero(detect_frames):
        image = frames[t] if scale == 1.0 else cv2.resize(frames[t], size, interpolation=cv2.INTER_AREA)
        box = backend.detect(image)
        if box is not None:
            boxes[t] = np.asarray(box, dtype=np.float64) / np.array([size[0] / w, size[1] / h] * 2)
    return boxes


def resize_crop(frame: np.ndarray, box, size: int) -> np.ndarray:
    x1, y1, x2, y2 = box
    patch = frame[y1:y2, x1:x2]
    # AREA averages when shrinking (no aliasing); it degenerates to nearest-neighbour when enlarging.
    interp = cv2.INTER_AREA if (x2 - x1) >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


def crop_clip(frames: np.ndarray, backend: FaceBackend, params: FaceCropParams) -> CroppedClip:
    """Detect, fill gaps, smooth, crop and landmark every frame of one clip (RGB uint8 (T, H, W, 3)).

    Raises FacelessClipError when more than params.max_faceless_fraction of the frames have no face.
    """
    n, h, w = frames.shape[:3]
    detect_mask = detection_frames(n, params.detect_every)
    detected_boxes = detect_boxes(frames, backend, detect_mask, params.detect_max_side)
    detected = ~np.isnan(detected_boxes).any(axis=1)
    face_found = face_found_mask(detect_mask, detected)
    faceless = 1.0 - face_found.mean()
    if not detected.any() or faceless > params.max_faceless_fraction:
        raise FacelessClipError(f"no face in {int((~face_found).sum())}/{n} frames ({faceless:.0%} > "
                                f"max_faceless_fraction {params.max_faceless_fraction:g})")
    boxes = smooth_boxes(fill_missing_boxes(detected_boxes), params.smooth_window)
    crops = np.array([crop_box(backend.face_extent(b), h, w, params.pad_fraction) for b in boxes], dtype=np.int64)
    landmarks = np.stack([backend.landmarks(frames[t], boxes[t]) for t in range(n)])
    landmarks_crop = np.stack([landmarks_to_crop(landmarks[t], crops[t], params.img_size) for t in range(n)])
    out = np.stack([resize_crop(frames[t], crops[t], params.img_size) for t in range(n)])
    return CroppedClip(frames=out, detected_boxes=detected_boxes, boxes=boxes, crop_boxes=crops,
                       landmarks=landmarks, landmarks_crop=landmarks_crop, face_found=face_found,
                       detect_frames=detect_mask)
