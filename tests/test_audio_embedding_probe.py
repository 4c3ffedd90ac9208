"""The linear probe's per-clip score (benchmarks/audio_embedding_probe.py --by-clip)."""
import numpy as np
import pytest

from benchmarks.audio_embedding_probe import per_clip_r


def test_per_clip_r_scores_each_clip_on_its_own_rows():
    ids = np.array(["a/1", "a/1", "a/1", "b/1", "b/1", "b/1"])
    target = np.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.0])
    pred = np.array([2.0, 4.0, 6.0, 3.0, 1.0, 2.0])
    out = per_clip_r(pred, target, ids)
    assert set(out) == {"a/1", "b/1"}
    assert out["a/1"] == pytest.approx(1.0)
    # b: deviations pred (1, -1, 0), target (-1, 0, 1): r = -1 / sqrt(2 * 2)
    assert out["b/1"] == pytest.approx(-0.5)
