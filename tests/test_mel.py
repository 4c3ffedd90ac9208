"""Mel spectrogram (Wav2Lip parameters) and the video-frame -> mel-index mapping."""
import numpy as np
import pytest

from lipforge.mel import SYNC_MEL_STEP, mel_start_index, mel_window, melspectrogram, usable_frames
from lipforge.params import MelParams


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


def test_mel_stage_is_incremental(tmp_path, ray_local):
    """Adding a clip computes only that clip; removing one drops its file."""
    import pandas as pd

    from lipforge.params import parse_params
    from stages import manifest as manifest_stage
    from stages import mel as mel_stage
    from stages import scan_corpus
    from tests import media_factory as mf

    root = tmp_path / "corpus"
    (root / "spk").mkdir(parents=True)
    for k in range(2):
        mf.good_clip(root / f"spk/{k:05d}.mp4", seed=k)
    params = parse_params({"manifest": {"roots": [{"name": "t", "path": str(root)}]}})

    def stage_run():
        scan_corpus.run(params, "t", parts_dir=tmp_path / "parts")
        manifest_stage.run(params, parts_dir=tmp_path / "parts", manifest_path=tmp_path / "m.parquet",
                           rejects_path=tmp_path / "r.parquet", report_path=tmp_path / "m.json")
        return mel_stage.run(params, tmp_path / "m.parquet", tmp_path / "mel", tmp_path / "mel.json")

    first = stage_run()
    assert (first["clips_ok"], first["clips_processed"]) == (2, 2)
    mel = np.load(tmp_path / "mel/clips/spk/00000.npy")
    # 1.2 s at 80 frames/s; AAC pads the decoded audio by up to one 1024-sample frame
    assert mel.shape[0] == 80 and 97 <= mel.shape[1] <= 97 + 1024 // 200 + 1
    mf.good_clip(root / "spk/00002.mp4", seed=2)
    second = stage_run()
    assert (second["clips_ok"], second["clips_processed"], second["clips_cached"]) == (3, 1, 2)
    (root / "spk/00000.mp4").unlink()
    (root / "spk/00000.txt").unlink()
    third = stage_run()
    assert (third["clips_ok"], third["clips_processed"]) == (2, 0)
    assert not (tmp_path / "mel/clips/spk/00000.npy").exists()
    index = pd.read_parquet(tmp_path / "mel/index.parquet")
    assert list(index.clip_id) == ["spk/00001", "spk/00002"] and (index.usable_frames > 0).all()
