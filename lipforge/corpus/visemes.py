"""ARPAbet phones -> per-video-frame mouth parameters, with coarticulation.

Three articulatory parameters drive the mouth warp:
- jaw_open: lip aperture, 0 = lips closed, 1 = the widest open vowel (AA);
- lip_width: mouth-corner distance relative to the photo's rest mouth (1.0 = rest, >1 spread, <1 narrow);
- lip_round: 0 = neutral lips, 1 = fully rounded/protruded (UW, W).

Coarticulation follows Cohen & Massaro's dominance model: every phone segment pulls each parameter
toward its target with a dominance that is constant (alpha) over the segment and decays
exponentially with the distance to the segment outside it; the parameter value at time t is the
dominance-weighted mean of the targets. The plateau matters: a long silence keeps the mouth closed
all the way to the next phone instead of opening half-way through it. Bilabials and labiodentals get
a very high dominance on the jaw with a Gaussian (not exponential) fall-off: the lips *must* close for
B/P/M even between two open vowels, yet the closure must not leak into a vowel 60 ms away. Their
dominance on width/rounding is low, so the lips keep the shape of the neighbouring vowel as they close.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lipforge.phonemes import SILENCE, normalize_phone

PARAMS = ("jaw_open", "lip_width", "lip_round")


@dataclass(frozen=True)
class Viseme:
    target: tuple[float, float, float]  # (jaw_open, lip_width, lip_round)
    alpha: tuple[float, float, float]  # dominance strength per parameter
    tau: float  # seconds: outside the segment, dominance = alpha * exp(-(distance / tau) ** power)
    power: float = 1.0  # 1: exponential fall-off (Cohen & Massaro's c = 1); 2: Gaussian, for closures


_V = Viseme
_CLOSURE = (20.0, 0.5, 0.5)  # overriding on the jaw, weak on the lip shape
_VOWEL = (1.0, 1.0, 1.0)
_WEAK = (0.6, 0.4, 0.4)  # tongue consonants: the lips follow the neighbours

VISEMES: dict[str, Viseme] = {
    SILENCE: _V((0.0, 1.00, 0.0), (1.0, 1.0, 1.0), 0.040),
    # bilabial closure
    "B": _V((0.0, 1.00, 0.0), _CLOSURE, 0.025, 2.0),
    "P": _V((0.0, 1.00, 0.0), _CLOSURE, 0.025, 2.0),
    "M": _V((0.0, 1.00, 0.0), _CLOSURE, 0.025, 2.0),
    # lower lip to the upper teeth
    "F": _V((0.08, 1.00, 0.0), (10.0, 0.6, 0.6), 0.025, 2.0),
    "V": _V((0.08, 1.00, 0.0), (10.0, 0.6, 0.6), 0.025, 2.0),
    # open vowels
    "AA": _V((1.00, 1.02, 0.0), _VOWEL, 0.040),
    "AE": _V((0.85, 1.08, 0.0), _VOWEL, 0.040),
    "AY": _V((0.85, 1.05, 0.0), _VOWEL, 0.040),
    "AW": _V((0.85, 0.98, 0.2), _VOWEL, 0.040),
    "AH": _V((0.60, 1.00, 0.0), _VOWEL, 0.040),
    "AO": _V((0.75, 0.90, 0.45), _VOWEL, 0.040),
    # rounded
    "UW": _V((0.20, 0.78, 1.0), (1.0, 1.5, 1.5), 0.040),
    "UH": _V((0.30, 0.88, 0.6), _VOWEL, 0.040),
    "OW": _V((0.50, 0.82, 0.8), (1.0, 1.3, 1.3), 0.040),
    "OY": _V((0.60, 0.85, 0.6), _VOWEL, 0.040),
    "W": _V((0.12, 0.76, 1.0), (1.0, 2.0, 2.0), 0.030),
    "ER": _V((0.30, 0.90, 0.4), _VOWEL, 0.040),
    "R": _V((0.20, 0.90, 0.4), (0.6, 0.8, 0.8), 0.030),
    "SH": _V((0.20, 0.88, 0.55), (0.8, 1.5, 1.5), 0.030),
    "ZH": _V((0.20, 0.88, 0.55), (0.8, 1.5, 1.5), 0.030),
    "CH": _V((0.20, 0.88, 0.55), (0.8, 1.5, 1.5), 0.030),
    "JH": _V((0.20, 0.88, 0.55), (0.8, 1.5, 1.5), 0.030),
    # spread
    "IY": _V((0.22, 1.15, 0.0), (1.0, 1.2, 1.2), 0.040),
    "IH": _V((0.35, 1.10, 0.0), _VOWEL, 0.040),
    "EH": _V((0.50, 1.10, 0.0), _VOWEL, 0.040),
    "EY": _V((0.45, 1.12, 0.0), _VOWEL, 0.040),
    "Y": _V((0.20, 1.10, 0.0), (0.8, 1.0, 1.0), 0.030),
    # tongue consonants: teeth nearly together for sibilants, a little open otherwise
    "S": _V((0.12, 1.06, 0.0), (1.0, 0.5, 0.5), 0.030),
    "Z": _V((0.12, 1.06, 0.0), (1.0, 0.5, 0.5), 0.030),
    "TH": _V((0.20, 1.02, 0.0), _WEAK, 0.030),
    "DH": _V((0.20, 1.02, 0.0), _WEAK, 0.030),
    "T": _V((0.25, 1.02, 0.0), _WEAK, 0.030),
    "D": _V((0.25, 1.02, 0.0), _WEAK, 0.030),
    "N": _V((0.25, 1.02, 0.0), _WEAK, 0.030),
    "L": _V((0.30, 1.02, 0.0), _WEAK, 0.030),
    "K": _V((0.30, 1.00, 0.0), _WEAK, 0.030),
    "G": _V((0.30, 1.00, 0.0), _WEAK, 0.030),
    "NG": _V((0.30, 1.00, 0.0), _WEAK, 0.030),
    # HH is shaped by the following vowel: almost no dominance of its own
    "HH": _V((0.40, 1.00, 0.0), (0.2, 0.2, 0.2), 0.030),
}

BILABIALS = frozenset({"B", "P", "M"})
OPEN_VOWELS = frozenset({"AA", "AE", "AY", "AW"})


@dataclass(frozen=True)
class MouthTrack:
    """Mouth parameters sampled at the video frames (frame i shows time i / fps)."""

    times: np.ndarray  # (T,) seconds
    jaw_open: np.ndarray  # (T,)
    lip_width: np.ndarray
    lip_round: np.ndarray

    def frame(self, i: int) -> tuple[float, float, float]:
        return float(self.jaw_open[i]), float(self.lip_width[i]), float(self.lip_round[i])


def viseme(phone: str) -> Viseme:
    return VISEMES[normalize_phone(phone)]


def segment_distance(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Distance in seconds from each time to the segment [start, end]; 0 inside it."""
    return np.maximum(0.0, np.maximum(start - t, t - end))


def dominance(t: np.ndarray, start: float, end: float, alpha: float, tau: float, power: float = 1.0) -> np.ndarray:
    """alpha on the segment, alpha * exp(-(distance / tau) ** power) outside it."""
    return alpha * np.exp(-((segment_distance(t, start, end) / tau) ** power))


def blend_targets(t: np.ndarray, segments: Sequence[tuple[str, float, float]]) -> np.ndarray:
    """(len(t), 3) parameters at times t: the dominance-weighted mean of the segment targets."""
    if not segments:
        raise ValueError("no phone segments: the utterance needs at least one (SIL) phone")
    t = np.asarray(t, dtype=np.float64)
    num = np.zeros((len(t), 3))
    den = np.zeros((len(t), 3))
    for phone, start, end in segments:
        vis = viseme(phone)
        for k in range(3):
            d = dominance(t, start, end, vis.alpha[k], vis.tau, vis.power)
            num[:, k] += d * vis.target[k]
            den[:, k] += d
    return num / den


def frame_times(n_frames: int, fps: float) -> np.ndarray:
    return np.arange(n_frames, dtype=np.float64) / fps


def n_video_frames(n_samples: int, sample_rate: int, fps: int) -> int:
    """ceil(audio seconds * fps) in exact integer arithmetic (no float rounding at whole frames)."""
    return -(-n_samples * fps // sample_rate)


def mouth_track(segments: Sequence[tuple[str, float, float]], n_frames: int, fps: float) -> MouthTrack:
    times = frame_times(n_frames, fps)
    values = blend_targets(times, segments)
    return MouthTrack(times=times, jaw_open=values[:, 0], lip_width=values[:, 1], lip_round=values[:, 2])
