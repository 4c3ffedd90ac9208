"""Mel spectrogram (Wav2Lip parameters) and the video-frame -> mel-index mapping."""
import numpy as np
import pytest

from lipforge.mel import SYNC_MEL_STEP, mel_start_index, mel_window, melspectrogram
from lipforge.params import MelParams
from stages.mel import usable_frames


def test_mel_start_index_hand_computed():
    # 80 mel frames/s, 25 video frames/s: frame i starts at int(3.2 * i).
    assert [mel_start_index(i) for i in range(6)] == [0, 3, 6, 9, 12, 16]
    assert mel_start_index(25) == 80
    assert mel_start_index(1, fps=30, mel_fps=80) == 2
    with pytest.raises(ValueError):
        mel_start_index(-1)


def test_mel_window_shape_and_end():
    mel = np.arange(80 * 40).reshape(80, 40).astype(np.float32)
    w = mel_window(mel, 2)
    assert w.shape == (80, SYNC_MEL_STEP) and w[0, 0] == 6
    assert mel_window(mel, 8) is None  # starts at 25, needs up to 41 > 40


def test_usable_frames():
    # n_mel = 40: frame 7 starts at 22 (22+16=38 fits), frame 8 at 25 (41 > 40).
    assert usable_frames(10, 40, 25, 80) == 8


def test_melspectrogram_shape_range_and_pitch():
    cfg = MelParams()
    sr = cfg.sample_rate
    t = np.arange(sr) / sr
    low = melspectrogram((0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), cfg)
    high = melspectrogram((0.5 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32), cfg)
    assert low.shape == (80, 1 + sr // cfg.hop_size) and low.dtype == np.float32
    assert low.min() >= -cfg.max_abs_value and low.max() <= cfg.max_abs_value
    assert np.argmax(low[:, 40]) < np.argmax(high[:, 40])
    silence = melspectrogram(np.zeros(sr, np.float32), cfg)
    assert np.allclose(silence, -cfg.max_abs_value)
