"""The per-identity breakdown of the evaluate stage's mouth-opening table (benchmarks/mouth_opening_by_identity.py)."""
import pandas as pd
import pytest

from benchmarks.mouth_opening_by_identity import by_clip, by_identity


def test_each_identity_gets_its_own_line_and_the_pooled_one_mixes_them():
    truth = [1.0, 2.0, 3.0]
    table = pd.DataFrame({
        "clip_id": ["a/00001"] * 3 + ["b/00001"] * 3,
        "ground_truth_sidecar": truth * 2,
        "generated": [3.0, 5.0, 7.0] + [1.5, 2.0, 2.5],      # a: 2 t + 1; b: 0.5 t + 1
        "ground_truth_measured": truth * 2,
    })
    out = by_identity(table)
    assert out["a"]["generated"] == {"r": 1.0, "slope": 2.0, "offset_px": 1.0, "mean_px": 5.0}
    assert out["b"]["generated"]["slope"] == 0.5 and out["b"]["frames"] == 3
    assert out["pooled"]["ground_truth_measured"]["slope"] == 1.0
    # both faces follow the truth exactly, but with different gains and levels: pooled r falls below 1.
    # By hand: deviations t (-1, 0, 1, -1, 0, 1), g (-0.5, 1.5, 3.5, -2, -1.5, -1): r = 5 / sqrt(4 * 22)
    assert out["pooled"]["generated"]["r"] == pytest.approx(5 / (4 * 22) ** 0.5, abs=1e-3)


def test_by_clip_gives_each_clip_its_own_line():
    table = pd.DataFrame({
        "clip_id": ["a/00001"] * 3 + ["a/00002"] * 3,
        "ground_truth_sidecar": [1.0, 2.0, 3.0] * 2,
        "generated": [3.0, 5.0, 7.0] + [3.0, 2.0, 1.0],     # the second clip runs against the truth
        "ground_truth_measured": [1.0, 2.0, 3.0] * 2,
    })
    out = by_clip(table)
    assert set(out) == {"a/00001", "a/00002"}
    assert out["a/00001"]["generated"]["r"] == 1.0 and out["a/00002"]["generated"]["r"] == -1.0
    assert out["a/00002"]["generated"]["slope"] == -1.0 and out["a/00002"]["frames"] == 3
