"""Wav2Lip-compatible mel spectrograms and the one video-frame -> mel-index mapping.

The spectrogram reproduces Wav2Lip's `audio.melspectrogram` (hparams.py): pre-emphasis, |STFT|,
librosa mel filterbank, 20*log10 - ref_level_db, then symmetric normalisation to
[-max_abs_value, max_abs_value]. With hop 200 at 16 kHz there are 80 mel frames per second, so a 25 fps
video frame i starts at mel index int(80 * i / 25) and a 5-frame window pairs with 16 mel frames.
Every later stage indexes audio with `mel_start_index` / `mel_window`; nothing re-derives the mapping.
"""
from __future__ import annotations

from functools import lru_cache

import librosa
import numpy as np
from scipy.signal import lfilter

from lipforge.params import MelParams

SYNC_MEL_STEP = 16  # mel frames paired with a 5-frame video window (Wav2Lip's syncnet_mel_step_size)


def mel_frames_per_second(cfg: MelParams) -> float:
    return cfg.sample_rate / cfg.hop_size


def mel_start_index(frame: int, fps: float = 25.0, mel_fps: float = 80.0) -> int:
    """First mel frame of video frame `frame`: int(mel_fps * frame / fps), Wav2Lip's crop_audio_window."""
    if frame < 0:
        raise ValueError(f"frame index must be >= 0, got {frame}")
    return int(mel_fps * (frame / float(fps)))


def usable_frames(n_frames: int, n_mel: int, fps: float = 25.0, mel_fps: float = 80.0) -> int:
    """Video frames whose 16-mel window lies inside the spectrogram (the last frames' windows run past it)."""
    count = 0
    for i in range(n_frames):
        if mel_start_index(i, fps, mel_fps) + SYNC_MEL_STEP > n_mel:
            break
        count += 1
    return count


def mel_window(mel: np.ndarray, frame: int, n_mel: int = SYNC_MEL_STEP, fps: float = 25.0,
               mel_fps: float = 80.0) -> np.ndarray | None:
    """The (n_mels, n_mel) slice starting at video frame `frame` of a (n_mels, T) mel; None past the end."""
    start = mel_start_index(frame, fps, mel_fps)
    end = start + n_mel
    if end > mel.shape[1]:
        return None
    return mel[:, start:end]


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def melspectrogram(wav: np.ndarray, cfg: MelParams) -> np.ndarray:
    """(num_mels, T) float32 in [-max_abs_value, max_abs_value]; T = 1 + len(wav) // hop_size."""
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {wav.shape}")
    emphasized = lfilter([1, -cfg.preemphasis], [1], wav) if cfg.preemphasis > 0 else wav
    spec = np.abs(librosa.stft(y=emphasized, n_fft=cfg.n_fft, hop_length=cfg.hop_size, win_length=cfg.win_size))
    mel = _mel_basis(cfg.sample_rate, cfg.n_fft, cfg.num_mels, cfg.fmin, cfg.fmax) @ spec
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - cfg.ref_level_db
    m = cfg.max_abs_value
    normalized = (2 * m) * ((db - cfg.min_level_db) / (-cfg.min_level_db)) - m
    return np.clip(normalized, -m, m).astype(np.float32)
