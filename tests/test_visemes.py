"""Viseme targets and coarticulation (lipforge.corpus.visemes) against hand-computed values."""
import math

import numpy as np
import pytest

from lipforge.corpus import visemes
from lipforge.corpus.visemes import VISEMES, blend_targets, dominance, mouth_track, n_video_frames, segment_distance
from lipforge.phonemes import ARPABET, SILENCE


def test_every_phone_of_the_table_has_a_viseme():
    assert set(VISEMES) == set(ARPABET) | {SILENCE}


def test_targets_follow_articulation():
    jaw = {p: VISEMES[p].target[0] for p in VISEMES}
    width = {p: VISEMES[p].target[1] for p in VISEMES}
    rnd = {p: VISEMES[p].target[2] for p in VISEMES}
    assert all(jaw[p] == 0.0 for p in ("B", "P", "M", SILENCE))
    assert min(jaw[p] for p in visemes.OPEN_VOWELS) > max(jaw[p] for p in ("IY", "UW", "F", "V", "S"))
    assert all(rnd[p] >= 0.8 and width[p] < 0.85 for p in ("UW", "W", "OW"))
    assert all(width[p] > 1.05 and rnd[p] == 0 for p in ("IY", "EH"))
    assert 0 < jaw["F"] < 0.15 and jaw["V"] == jaw["F"]


def test_segment_distance_is_zero_inside_and_grows_outside():
    t = np.array([0.0, 0.1, 0.25, 0.5])
    np.testing.assert_allclose(segment_distance(t, 0.1, 0.3), [0.1, 0.0, 0.0, 0.2])


def test_dominance_exponential_and_gaussian():
    assert dominance(np.array([0.0]), 0.1, 0.2, 2.0, 0.05)[0] == pytest.approx(2 * math.exp(-2))
    assert dominance(np.array([0.15]), 0.1, 0.2, 2.0, 0.05)[0] == pytest.approx(2.0)
    assert dominance(np.array([0.3]), 0.1, 0.2, 3.0, 0.05, power=2)[0] == pytest.approx(3 * math.exp(-4))


def test_blend_of_silence_then_open_vowel():
    segs = [(SILENCE, 0.0, 0.1), ("AA", 0.1, 0.3)]
    out = blend_targets(np.array([0.05, 0.1, 0.2]), segs)
    e1, e2 = math.exp(-0.05 / 0.04), math.exp(-0.1 / 0.04)  # both tau 40 ms, alpha 1
    assert out[0, 0] == pytest.approx(e1 / (1 + e1))  # jaw: AA leaks into the silence before it
    assert out[1, 0] == pytest.approx(0.5)  # equal dominance at the boundary
    assert out[2, 0] == pytest.approx(1 / (1 + e2))
    assert out[0, 1] == pytest.approx((1.0 + 1.02 * e1) / (1 + e1))  # lip width
    assert np.all(out[:, 2] == 0.0)  # nothing rounds


def test_bilabial_closes_between_open_vowels_and_does_not_leak_far():
    segs = [("AA", 0.0, 0.1), ("B", 0.1, 0.16), ("AA", 0.16, 0.3)]
    mid = blend_targets(np.array([0.13]), segs)[0, 0]
    e = math.exp(-0.03 / 0.04)  # each AA is 30 ms away from the centre of B
    assert mid == pytest.approx(2 * e / (20 + 2 * e))
    assert mid < 0.05
    later = blend_targets(np.array([0.22]), segs)[0, 0]  # 60 ms after the closure
    b_dom = 20 * math.exp(-((0.06 / 0.025) ** 2))
    a_far = math.exp(-0.12 / 0.04)
    assert later == pytest.approx((1 + a_far) / (1 + a_far + b_dom))
    assert later > 0.9


def test_bilabial_keeps_the_neighbouring_rounding():
    segs = [("UW", 0.0, 0.12), ("M", 0.12, 0.18), ("UW", 0.18, 0.3)]
    jaw, _, rnd = blend_targets(np.array([0.15]), segs)[0]
    assert jaw < 0.05 and rnd > 0.6


def test_long_silence_stays_closed_until_speech():
    segs = [(SILENCE, 0.0, 1.0), ("AA", 1.0, 1.2), (SILENCE, 1.2, 2.0)]
    jaw = blend_targets(np.array([0.5, 0.9, 1.6]), segs)[:, 0]
    assert jaw[0] < 1e-5 and jaw[2] < 1e-4
    e_aa, e_sil2 = math.exp(-0.1 / 0.04), math.exp(-0.3 / 0.04)
    assert jaw[1] == pytest.approx(e_aa / (1 + e_aa + e_sil2))


def test_mouth_track_samples_frame_times():
    track = mouth_track([(SILENCE, 0.0, 0.2), ("AA", 0.2, 0.4)], 10, 25)
    np.testing.assert_allclose(track.times, np.arange(10) / 25)
    assert track.frame(0) == pytest.approx((0.0, 1.0, 0.0), abs=1e-2)
    assert track.jaw_open[7] == pytest.approx(1 / (1 + math.exp(-0.08 / 0.04)))  # t = 0.28, inside AA


def test_n_video_frames_is_exact_ceil():
    assert n_video_frames(16000 * 3, 16000, 25) == 75  # whole frames: no extra frame from float error
    assert n_video_frames(16000 * 3 + 1, 16000, 25) == 76
    assert n_video_frames(47000, 16000, 25) == math.ceil(47000 / 16000 * 25)


def test_unknown_phone_is_an_error():
    with pytest.raises(ValueError, match="ARPAbet"):
        blend_targets(np.array([0.0]), [("QQ", 0.0, 1.0)])
