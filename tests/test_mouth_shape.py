"""Mouth-shape descriptors from 68-point landmarks (the experts' auxiliary targets)."""
import numpy as np
import pytest

from lipforge.train.mouth_shape import mouth_shape, standardizer


def mouth(width, gap, height, x0=0.0, y0=0.0):
    """68 landmarks (only the mouth points matter) of a mouth with the given corner distance, inner-lip gap and
    outer-lip height, the corners on a horizontal line from (x0, y0)."""
    pts = np.zeros((68, 2))
    pts[48], pts[54] = (x0, y0), (x0 + width, y0)
    for up, lo, x in ((61, 67, 0.3), (62, 66, 0.5), (63, 65, 0.7)):
        pts[up] = (x0 + x * width, y0 - gap / 2)
        pts[lo] = (x0 + x * width, y0 + gap / 2)
    pts[51], pts[57] = (x0 + width / 2, y0 - height / 2), (x0 + width / 2, y0 + height / 2)
    return pts


def test_hand_values():
    # frame 0: width 10, gap 2, height 4; frame 1: width 20, gap 10, height 6. Median width 15.
    shapes = mouth_shape(np.stack([mouth(10, 2, 4), mouth(20, 10, 6)]))
    np.testing.assert_allclose(shapes, [[0.2, 10 / 15, 0.4], [0.5, 20 / 15, 0.3]], rtol=1e-6)
    assert shapes.dtype == np.float32


def test_descriptors_survive_a_mirror_shift_zoom_and_rotation():
    clip = np.stack([mouth(10, 2, 4, 30, 60), mouth(12, 5, 6, 31, 61), mouth(9, 0, 3, 29, 59)])
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = scale * clip @ rot.T + shift
    mirrored = clip * np.array([-1.0, 1.0])
    np.testing.assert_allclose(mouth_shape(moved), mouth_shape(clip), rtol=1e-5)
    np.testing.assert_allclose(mouth_shape(mirrored), mouth_shape(clip), rtol=1e-5)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\(T, 68, 2\)"):
        mouth_shape(np.zeros((3, 5, 2)))
    with pytest.raises(ValueError, match="coincident mouth corners"):
        mouth_shape(np.zeros((2, 68, 2)))


def test_standardizer_pools_the_frames_of_all_clips():
    mean, std = standardizer([np.array([[0.0, 1.0, 2.0]]), np.array([[2.0, 1.0, 4.0]])])
    np.testing.assert_allclose(mean, [1.0, 1.0, 3.0])
    np.testing.assert_allclose(std, [1.0, 1e-6, 1.0])
