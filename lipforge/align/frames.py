"""Phones -> per-video-frame phoneme track (FluentLip's phoneme sequence + duration input). Pure."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipforge.phonemes import PAD, PHONE_TO_ID, phone_id


@dataclass(frozen=True)
class FrameTrack:
    phone_id: np.ndarray  # (n_frames,) int: global phoneme-table id active at each frame
    phone_idx: np.ndarray  # (n_frames,) int: index into the phone list, -1 where no phone covers the frame
    duration_frames: np.ndarray  # (n_frames,) int: frames that this frame's phone occupies in total


def frame_phoneme_track(phones: list, n_frames: int, fps: float = 25.0) -> FrameTrack:
    """Rule: frame k shows the phone active at its centre time (k + 0.5) / fps, a phone owning [start, end).

    A centre exactly on a boundary belongs to the later phone. Frames whose centre no phone covers
    (past the last phone's end) get the <pad> id and phone_idx -1. duration_frames is the number of
    frames that picked the same phone, so a phone shorter than a frame that no centre hits has no
    frame and does not count (FluentLip's durations are in frames of the video it conditions).
    """
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    starts = np.array([float(p["start"] if isinstance(p, dict) else p.start) for p in phones], dtype=np.float64)
    ends = np.array([float(p["end"] if isinstance(p, dict) else p.end) for p in phones], dtype=np.float64)
    labels = [p["phone"] if isinstance(p, dict) else getattr(p, "phone", getattr(p, "label", None)) for p in phones]
    centres = (np.arange(n_frames) + 0.5) / fps
    idx = np.searchsorted(starts, centres, side="right") - 1
    covered = (idx >= 0) & (centres < ends[np.clip(idx, 0, max(len(ends) - 1, 0))]) if len(phones) else \
        np.zeros(n_frames, dtype=bool)
    idx = np.where(covered, idx, -1)
    ids = np.array([phone_id(labels[i]) if i >= 0 else PHONE_TO_ID[PAD] for i in idx], dtype=np.int64)
    counts = np.bincount(idx[idx >= 0], minlength=len(phones)) if len(phones) else np.zeros(0, dtype=np.int64)
    duration = np.where(idx >= 0, counts[np.clip(idx, 0, None)] if len(phones) else 0, 0).astype(np.int64)
    return FrameTrack(phone_id=ids, phone_idx=idx.astype(np.int64), duration_frames=duration)
