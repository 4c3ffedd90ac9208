"""Slow, smooth nuisance motion of a clip: head pose and lighting drift.

Every curve is a sum of a few low-frequency sinusoids with random frequencies and phases (a smooth,
band-limited random process), scaled to a peak amplitude, so neighbouring frames differ by a
fraction of a pixel and a clip never jumps.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_ROTATION_DEG = 2.5
MAX_TRANSLATION = 0.02  # of the frame size
MAX_SCALE = 0.025  # relative
MAX_GAIN = 0.06  # global brightness
MAX_TINT = 0.025  # per-channel colour gain
MAX_SIDE_LIGHT = 0.06  # left-right brightness gradient across the frame


@dataclass(frozen=True)
class HeadMotion:
    dx: np.ndarray  # (T,) pixels
    dy: np.ndarray
    angle: np.ndarray  # (T,) degrees, counter-clockwise on screen
    scale: np.ndarray  # (T,) multiplicative

    def at(self, i: int) -> tuple[float, float, float, float]:
        return float(self.dx[i]), float(self.dy[i]), float(self.angle[i]), float(self.scale[i])


@dataclass(frozen=True)
class Lighting:
    gain: np.ndarray  # (T, 3) per-channel multiplicative gain
    side: np.ndarray  # (T,) gradient: gain multiplier 1 + side * (x / width - 0.5)


def smooth_curve(rng: np.random.Generator, n_frames: int, fps: float, amplitude: float,
                 min_hz: float = 0.1, max_hz: float = 0.6, n_waves: int = 3) -> np.ndarray:
    """(n_frames,) smooth curve with peak |value| == amplitude (0 for a single frame)."""
    t = np.arange(n_frames) / fps
    freqs = rng.uniform(min_hz, max_hz, n_waves)
    phases = rng.uniform(0, 2 * np.pi, n_waves)
    weights = rng.uniform(0.5, 1.0, n_waves)
    curve = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(axis=0)
    peak = float(np.max(np.abs(curve)))
    return amplitude * curve / peak if peak > 0 else np.zeros(n_frames)


def head_motion(rng: np.random.Generator, n_frames: int, fps: float, frame_size: int) -> HeadMotion:
    return HeadMotion(
        dx=smooth_curve(rng, n_frames, fps, MAX_TRANSLATION * frame_size),
        dy=smooth_curve(rng, n_frames, fps, MAX_TRANSLATION * frame_size),
        angle=smooth_curve(rng, n_frames, fps, MAX_ROTATION_DEG),
        scale=1.0 + smooth_curve(rng, n_frames, fps, MAX_SCALE),
    )


def lighting_drift(rng: np.random.Generator, n_frames: int, fps: float) -> Lighting:
    brightness = smooth_curve(rng, n_frames, fps, MAX_GAIN, 0.05, 0.3)
    tint = np.stack([smooth_curve(rng, n_frames, fps, MAX_TINT, 0.05, 0.3) for _ in range(3)], axis=1)
    side = smooth_curve(rng, n_frames, fps, MAX_SIDE_LIGHT, 0.05, 0.3)
    return Lighting(gain=1.0 + brightness[:, None] + tint, side=side)


def apply_lighting(frame: np.ndarray, gain: np.ndarray, side: float) -> np.ndarray:
    """RGB uint8 frame under a colour gain and a horizontal light gradient."""
    w = frame.shape[1]
    ramp = 1.0 + side * (np.arange(w, dtype=np.float32) / w - 0.5)
    lit = frame.astype(np.float32) * ramp[None, :, None] * gain.astype(np.float32)[None, None, :]
    return np.clip(lit + 0.5, 0, 255).astype(np.uint8)
