"""The lip-leak figures of the evaluate stage's mouth-opening table (benchmarks/reference_leak.py)."""
import math

import pandas as pd
import pytest

from benchmarks.reference_leak import by_identity, partial_correlation, with_reference


def test_partial_correlation_removes_what_the_given_series_explains():
    # zero-mean, y orthogonal to z, x = y + z. By hand: r_xy = r_xz = 4 / sqrt(8 * 4) = 0.7071, r_yz = 0, so
    # r_xy.z = 0.7071 / sqrt(1 - 0.5) = 1: once z is known, x is y.
    z, y = [1, 1, -1, -1], [1, -1, 1, -1]
    x = [a + b for a, b in zip(y, z)]
    assert partial_correlation(x, y, z) == pytest.approx(1.0)
    assert math.isnan(partial_correlation(x, y, x))          # x explains itself exactly


def test_the_reference_is_the_frame_half_a_clip_away_and_a_copied_reference_shows_as_a_leak():
    truth = [0.0, 1.0, 3.0, 2.0]                              # reference of frame t: frame (t + 2) % 4
    table = pd.DataFrame({"clip_id": ["a/00001"] * 4, "frame": [0, 1, 2, 3], "ground_truth_sidecar": truth})
    assert with_reference(table).reference_sidecar.tolist() == [3.0, 2.0, 0.0, 1.0]

    # two identities; generated = 2 truth + 0.5 reference + 1 exactly
    truth2 = [1.0, 0.0, 2.0, 4.0, 3.0, 1.0]
    table = pd.DataFrame({"clip_id": ["a/00001"] * 4 + ["b/00001"] * 6, "frame": [0, 1, 2, 3, 0, 1, 2, 3, 4, 5],
                          "ground_truth_sidecar": truth + truth2})
    table["generated"] = 2 * table.ground_truth_sidecar + 0.5 * with_reference(table).reference_sidecar + 1
    out = by_identity(table)
    assert out["pooled"]["fit"] == pytest.approx({"truth": 2.0, "reference": 0.5, "offset_px": 1.0})
    assert out["pooled"]["partial_r_generated_reference_given_truth"] == pytest.approx(1.0)
    assert out["b"]["frames"] == 6 and set(out) == {"pooled", "a", "b"}


def test_a_clip_with_missing_frames_is_named():
    table = pd.DataFrame({"clip_id": ["a/00001"] * 3, "frame": [0, 2, 3], "ground_truth_sidecar": [0.0, 1.0, 2.0]})
    with pytest.raises(ValueError, match="a/00001"):
        with_reference(table)
