"""The blur helpers of benchmarks/blurred_truth.py."""
import numpy as np
import pytest

from benchmarks.blurred_truth import blurred, lower_half_sharpness


def one_bright_pixel(value: int = 10) -> np.ndarray:
    crops = np.zeros((1, 12, 8, 3), np.uint8)
    crops[0, 8, 3] = value          # lower half (rows 6-11), two rows from its border (which OpenCV reflects)
    return crops


def test_sharpness_is_the_laplacian_variance_of_the_lower_half():
    # Laplacian (kernel 0 1 0 / 1 -4 1 / 0 1 0): -4v at the pixel, +v at its 4 neighbours, 0 elsewhere; mean 0,
    # so the variance over the 6 x 8 lower half is (16 + 4) v^2 / 48 = 41.67 for v = 10
    assert lower_half_sharpness(one_bright_pixel()) == pytest.approx(2000 / 48)
    upper = np.zeros((1, 12, 8, 3), np.uint8)
    upper[0, 1, 3] = 10
    assert lower_half_sharpness(upper) == 0.0


def test_blur_keeps_sigma_0_and_lowers_sharpness():
    crops = one_bright_pixel(200)
    assert blurred(crops, 0) is crops
    assert lower_half_sharpness(blurred(crops, 1.0)) < lower_half_sharpness(crops)
