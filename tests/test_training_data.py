"""Window sampling for the experts and generators, and the evaluation's window/reference bookkeeping."""
import numpy as np
import pytest

from lipforge.evaluation import paste_back, reference_schedule, window_starts
from lipforge.face.framestore import FrameStore, write_frames
from lipforge.mel import mel_start_index
from lipforge.stage import StageError
from lipforge.train.data import (Clip, Negatives, SilentRefs, count_windows, expert_batch, generator_batch, is_silent,
                                 mask_lower_half, same_clip_off_sync_starts)


def test_count_windows_stops_where_the_last_frames_mel_runs_out():
    # 10 frames, mel long enough for frame 6's window (start int(80*6/25)=19, +16 = 35) but not frame 7's (22+16=38)
    assert count_windows(10, 35) == 3      # windows 0,1,2 end at frames 4,5,6
    assert count_windows(10, 38) == 4
    assert count_windows(4, 1000) == 0     # fewer than 5 frames: no window
    assert mel_start_index(7) + 16 == 38


def _clip(tmp_path, name, n_frames, value_offset):
    frames = np.zeros((n_frames, 8, 8, 3), np.uint8)
    frames[:] = (np.arange(n_frames)[:, None, None, None] + value_offset) % 256  # frame index is its pixel value
    write_frames(tmp_path / f"{name}.npy", frames)
    mel = np.tile(np.arange(400, dtype=np.float32) + 1000 * value_offset, (80, 1))  # mel column index as value
    n_mel = mel_start_index(n_frames - 1) + 16
    return Clip(name, FrameStore.open(tmp_path / f"{name}.npy"), mel[:, :n_mel], count_windows(n_frames, n_mel))


def test_expert_batch_pairs_positives_with_their_own_audio_and_negatives_elsewhere(tmp_path):
    clips = [_clip(tmp_path, "a", 40, 0), _clip(tmp_path, "b", 40, 100)]
    batch = expert_batch(clips, np.random.default_rng(0), 64, Negatives(other_clip_fraction=0.5, min_shift=5))
    assert batch["frames"].shape == (64, 5, 3, 8, 8) and batch["mels"].shape == (64, 1, 80, 16)
    assert batch["label"].tolist() == [1.0, 0.0] * 32
    for frames, mel, label in zip(batch["frames"], batch["mels"], batch["label"]):
        start_value = round(float(frames[0, 0, 0, 0]) * 255)          # frame index + clip offset
        clip_offset = 100 if start_value >= 100 else 0
        t = start_value - clip_offset
        mel_clip_offset, mel_start = divmod(int(mel[0, 0, 0]), 1000)
        same_clip = mel_clip_offset == clip_offset
        if label == 1:
            assert same_clip and mel_start == mel_start_index(t)
        else:  # another clip, or the same clip at least 5 frames away
            assert not same_clip or abs(mel_start - mel_start_index(t)) >= mel_start_index(5)


def test_expert_batch_carries_the_mouth_shapes_of_the_shown_and_the_heard_frames(tmp_path):
    clips = [_clip(tmp_path, "a", 40, 0), _clip(tmp_path, "b", 40, 100)]
    # descriptor = frame index + clip offset, as the pixels
    shapes = {clip.clip_id: np.repeat(np.arange(40, dtype=np.float32)[:, None] + offset, 3, axis=1)
              for clip, offset in zip(clips, (0, 100))}
    batch = expert_batch(clips, np.random.default_rng(1), 32, Negatives(0.5, 5), mouth_shapes=shapes)
    assert batch["video_mouth"].shape == batch["audio_mouth"].shape == (32, 5, 3)
    for frames, mel, video, audio in zip(batch["frames"], batch["mels"], batch["video_mouth"], batch["audio_mouth"]):
        np.testing.assert_allclose(video[:, 0], np.round(frames[:, 0, 0, 0] * 255))
        clip_offset, mel_start = divmod(int(mel[0, 0, 0]), 1000)
        heard = [t for t in range(36) if mel_start_index(t) == mel_start]  # the audio's own window start
        np.testing.assert_allclose(audio[:, 0], np.arange(heard[0], heard[0] + 5) + clip_offset)
    assert "video_mouth" not in expert_batch(clips, np.random.default_rng(1), 4, Negatives(0.5, 5))


def test_multiway_candidates_are_off_sync_audio_of_the_in_sync_windows_own_clip(tmp_path):
    clips = [_clip(tmp_path, "a", 40, 0), _clip(tmp_path, "b", 40, 100)]
    plain = expert_batch(clips, np.random.default_rng(3), 16, Negatives(0.5, 5))
    batch = expert_batch(clips, np.random.default_rng(3), 16, Negatives(0.5, 5), multiway=6,
                         multiway_rng=np.random.default_rng(4))
    assert "candidate_mels" not in plain
    assert batch["candidate_mels"].shape == (8, 6, 1, 80, 16)  # one row per in-sync pair
    for key in ("frames", "mels", "label"):  # the candidates' own stream leaves the pairs as they were
        np.testing.assert_array_equal(batch[key], plain[key])
    for frames, candidates in zip(batch["frames"][batch["label"] == 1], batch["candidate_mels"]):
        start_value = round(float(frames[0, 0, 0, 0]) * 255)
        clip_offset = 100 if start_value >= 100 else 0
        t = start_value - clip_offset
        for mel in candidates:
            mel_clip_offset, mel_start = divmod(int(mel[0, 0, 0]), 1000)
            assert mel_clip_offset == clip_offset  # always the window's own clip
            assert abs(mel_start - mel_start_index(t)) >= mel_start_index(5)


def test_same_clip_off_sync_starts_keep_the_shift_and_the_silence_rule(tmp_path):
    clip = _clip(tmp_path, "a", 40, 0)
    assert same_clip_off_sync_starts(clip, 10, Negatives(0.0, 5)).tolist() == (
        list(range(0, 6)) + list(range(15, clip.n_windows)))
    silent = _clip(tmp_path, "b", 40, 0)
    silent.mel[:] = -4.0  # every window silent: a silent window has no usable partner
    assert len(same_clip_off_sync_starts(silent, 10, Negatives(0.0, 5, silence_level=-3.5))) == 0


def test_a_clip_too_short_for_off_sync_audio_says_which_params_to_change(tmp_path):
    short = _clip(tmp_path, "a", 8, 0)  # 4 windows: none is 5 frames from another
    with pytest.raises(StageError, match="clip a has no window at least 5 frames .*min_negative_shift"):
        expert_batch([short], np.random.default_rng(0), 2, Negatives(0.0, 5))  # the only clip: its own negative
    other = _clip(tmp_path, "b", 40, 100)
    assert expert_batch([short, other], np.random.default_rng(0), 8, Negatives(0.0, 5))["label"].shape == (8,)
    with pytest.raises(StageError, match="clip [ab] has no window at least 30 frames"):  # candidates: own clip only
        expert_batch([short, other], np.random.default_rng(0), 8, Negatives(0.0, 30), multiway=2)


def test_a_silent_window_never_gets_silent_audio_as_its_negative(tmp_path):
    # Clip with speech (level 0) only in mel columns 40..79; everything else digital silence (-4).
    clip = _clip(tmp_path, "a", 40, 0)
    clip.mel[:] = -4.0
    clip.mel[:, 40:80] = 0.0
    speech = {t for t in range(clip.n_windows) if not is_silent(clip.sync_mel(t), -3.5)}
    assert speech and len(speech) < clip.n_windows
    batch = expert_batch([clip], np.random.default_rng(0), 400, Negatives(0.0, 5, silence_level=-3.5))
    for frames, mel, label in zip(batch["frames"], batch["mels"], batch["label"]):
        t = round(float(frames[0, 0, 0, 0]) * 255)
        if label == 0 and is_silent(clip.sync_mel(t), -3.5):
            assert not is_silent(mel[0], -3.5)
    # Without the rule (Wav2Lip), silent-silent negatives occur.
    batch = expert_batch([clip], np.random.default_rng(0), 400, Negatives(0.0, 5, silence_level=None))
    pairs = [(is_silent(clip.sync_mel(round(float(f[0, 0, 0, 0]) * 255)), -3.5), is_silent(m[0], -3.5))
             for f, m, lab in zip(batch["frames"], batch["mels"], batch["label"]) if lab == 0]
    assert (True, True) in pairs


def test_generator_batch_shapes_and_references(tmp_path):
    clips = [_clip(tmp_path, "a", 30, 0)]
    batch = generator_batch(clips, np.random.default_rng(1), 4)
    assert batch["gt"].shape == (4, 5, 3, 8, 8) and batch["ref"].shape == (4, 5, 3, 8, 8)
    assert batch["mels"].shape == (4, 5, 1, 80, 16) and batch["sync_mel"].shape == (4, 1, 80, 16)
    for gt, ref, mels in zip(batch["gt"], batch["ref"], batch["mels"]):
        t = round(float(gt[0, 0, 0, 0]) * 255)
        assert abs(round(float(ref[0, 0, 0, 0]) * 255) - t) >= 5        # a non-overlapping reference window
        assert [int(m[0, 0, 0]) for m in mels] == [mel_start_index(t + i) for i in range(5)]


def test_audio_offset_moves_each_frames_mel_window_and_clamps_it_to_the_clip(tmp_path):
    clip = _clip(tmp_path, "a", 30, 0)          # 26 windows: frames 0..29 each have a 16-mel window
    assert clip.n_windows == 26

    def heard(start, offset):                    # the frame whose window each of the 5 frames hears
        firsts = [int(m[0, 0]) for m in clip.frame_mels(start, offset)]
        return [next(f for f in range(30) if mel_start_index(f) == first) for first in firsts]

    assert heard(10, 0) == [10, 11, 12, 13, 14]
    assert heard(10, -2) == [8, 9, 10, 11, 12]   # centred: frame i hears frames i-2..i+2
    assert heard(0, -2) == [0, 0, 0, 1, 2]       # before the clip: its first window
    assert heard(25, 0) == [25, 26, 27, 28, 29]  # the last window start reaches the last frame's window
    batch = generator_batch([clip], np.random.default_rng(1), 8, audio_offset=-2)
    for gt, mels in zip(batch["gt"], batch["mels"]):
        t = round(float(gt[0, 0, 0, 0]) * 255)
        assert [int(m[0, 0, 0]) for m in mels] == [mel_start_index(max(t + i - 2, 0)) for i in range(5)]


def test_silent_references_never_come_from_the_target_window(tmp_path):
    clips = [_clip(tmp_path, "a", 30, 0)]
    made_from = np.arange(0, 30, 3)  # G_S's pool: every third frame, each painted with its frame index
    pool = np.broadcast_to(made_from[:, None, None, None], (len(made_from), 8, 8, 3)).astype(np.uint8)
    batch = generator_batch(clips, np.random.default_rng(1), 64, silent_refs={"a": SilentRefs(pool, made_from)})
    for gt, ref in zip(batch["gt"], batch["ref"]):
        t = round(float(gt[0, 0, 0, 0]) * 255)
        sources = {round(float(f[0, 0, 0]) * 255) for f in ref}
        assert sources <= set(made_from.tolist())
        assert not sources & set(range(t, t + 5)), f"window {t}: reference made from a target frame {sources}"


def test_a_pool_entirely_inside_the_window_is_still_used():
    refs = SilentRefs(np.zeros((2, 8, 8, 3), np.uint8), np.array([3, 4]))
    assert refs.outside_window(0).tolist() == [0, 1] and refs.outside_window(5).tolist() == [0, 1]
    assert SilentRefs(refs.frames, np.array([3, 9])).outside_window(0).tolist() == [1]


def test_mask_lower_half_zeroes_only_the_bottom_rows():
    x = np.ones((2, 5, 3, 6, 4), np.float32)
    m = mask_lower_half(x)
    assert m[..., :3, :].min() == 1 and m[..., 3:, :].max() == 0 and x.min() == 1


def test_window_starts_cover_every_frame():
    assert window_starts(10) == [0, 5]
    assert window_starts(12) == [0, 5, 7]
    for n in range(5, 40):
        covered = {s + i for s in window_starts(n) for i in range(5)}
        assert covered == set(range(n))


def test_reference_schedule_never_uses_the_target_frame():
    for n in range(5, 50):
        r = reference_schedule(n)
        assert (r != np.arange(n)).all() and r.min() >= 0 and r.max() < n


def test_paste_back_puts_the_resized_crop_at_its_box():
    frames = np.zeros((1, 20, 20, 3), np.uint8)
    crop = np.full((1, 4, 4, 3), 200, np.uint8)
    out = paste_back(frames, crop, np.array([[2, 4, 10, 12]]))
    assert (out[0, 4:12, 2:10] == 200).all() and out[0].sum() == 200 * 8 * 8 * 3
    assert frames.sum() == 0
