import pytest

from stages.silent_refs import reference_errors_by_split


def test_reference_errors_average_each_split_over_its_references():
    errors = [{"split": "train", "refs": 16, "upper_half": 2.0, "lower_half": 10.0},
              {"split": "train", "refs": 8, "upper_half": 5.0, "lower_half": 4.0},
              {"split": "test", "refs": 3, "upper_half": 7.0, "lower_half": 9.5}]
    out = reference_errors_by_split(errors)
    assert out["train"] == {"upper_half": pytest.approx((16 * 2 + 8 * 5) / 24),     # 3.0
                            "lower_half": pytest.approx((16 * 10 + 8 * 4) / 24)}    # 8.0
    assert out["test"] == {"upper_half": 7.0, "lower_half": 9.5}
    assert set(out) == {"train", "test"}
