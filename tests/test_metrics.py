"""Metrics of lipforge.metrics on constructed inputs with hand-computed answers."""
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from lipforge.metrics import (
    MOUTH,
    correlation,
    half_abs_errors,
    inter_frame_consistency,
    landmark_distance,
    lse_scores,
    mouth_opening,
    offset_distances,
    psnr,
    roc_auc,
    ssim,
    video_psnr,
    video_ssim,
)

PSNR_MSE_100 = 10 * math.log10(255.0**2 / 100.0)  # = 28.1308036
PSNR_MSE_25 = 10 * math.log10(255.0**2 / 25.0)  # = 34.1514035


# ---------------------------------------------------------------- PSNR / SSIM / half errors


def test_half_abs_errors_split_rows_at_half_the_height():
    # 2 frames of 5 rows: rows 0-1 are the upper half (5 // 2 = 2), rows 2-4 the lower one, as mask_lower_half.
    a = np.zeros((2, 5, 4, 3), dtype=np.uint8)
    b = a.copy()
    b[:, 0] = 8                  # one upper row of two: mean 4
    b[0, 4] = 255                # uint8 must not wrap: a - b is -255 in float64
    b[1, 2:] = 30                # frame 1, every lower row
    errs = half_abs_errors(a, b)
    assert errs["upper_half"] == pytest.approx(4.0)
    assert errs["lower_half"] == pytest.approx((255 * 1 + 30 * 3) / 6)   # (frame 0 + frame 1) over 2 x 3 rows
    assert half_abs_errors(b, b) == {"upper_half": 0.0, "lower_half": 0.0}
    with pytest.raises(ValueError, match="shape"):
        half_abs_errors(a, b[:1])


def test_psnr_known_mse():
    # every pixel differs by 10 -> MSE = 100 -> 10 log10(255^2 / 100) = 28.1308
    a = np.full((8, 8, 3), 200, np.uint8)
    b = np.full((8, 8, 3), 190, np.uint8)  # 190 - 200 would wrap in uint8
    assert psnr(a, b) == pytest.approx(28.1308036, rel=1e-7)
    assert psnr(b, a) == pytest.approx(PSNR_MSE_100)
    # float images in [0, 1] with data_range 1: difference 0.1 -> MSE 0.01 -> 20 dB
    assert psnr(np.full((4, 4, 3), 0.5), np.full((4, 4, 3), 0.4), data_range=1.0) == pytest.approx(20.0)


def test_psnr_identical_is_inf():
    a = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert psnr(a, a.copy()) == float("inf")


def test_psnr_shape_mismatch():
    with pytest.raises(ValueError):
        psnr(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_ssim_identical_is_one():
    a = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert ssim(a, a.copy()) == pytest.approx(1.0)


def test_ssim_constant_images_hand_value():
    # constant 100 vs constant 110: sigmas = covariance = 0, so SSIM = (2*100*110 + C1) / (100^2 + 110^2 + C1),
    # C1 = (0.01*255)^2 = 6.5025 -> 22006.5025 / 22106.5025 = 0.9954764
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 110, np.uint8)
    assert ssim(a, b) == pytest.approx(22006.5025 / 22106.5025, rel=1e-9)


def test_ssim_matches_skimage_gaussian_settings():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a.astype(float), b.astype(float), gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False, channel_axis=-1, data_range=255.0)
    value = ssim(a, b)
    assert value == pytest.approx(ref, rel=1e-12)
    assert 0.0 < value < 1.0
    # mean over channels: per-channel grayscale SSIMs average to the colour value
    per_channel = [ssim(a[..., c], b[..., c]) for c in range(3)]
    assert value == pytest.approx(np.mean(per_channel), rel=1e-12)


def test_video_psnr_mean_of_finite_frames():
    base = np.full((3, 8, 8, 3), 100, np.uint8)
    other = base.copy()
    other[0] += 10  # MSE 100
    other[1] += 5  # MSE 25; frame 2 identical (inf, left out)
    # mean(28.1308, 34.1514) = 31.1411
    assert video_psnr(base, other) == pytest.approx((PSNR_MSE_100 + PSNR_MSE_25) / 2)
    assert video_psnr(base, base.copy()) == float("inf")


def test_video_ssim_is_mean_of_frames():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    b = a.copy()
    b[1] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    # frame 0 identical -> 1; frame 1 unrelated noise -> s; mean (1 + s) / 2
    assert video_ssim(a, b) == pytest.approx((1.0 + ssim(a[1], b[1])) / 2)


# ---------------------------------------------------------------- LSE-D / LSE-C


def test_offset_distances_hand_values():
    # T=2, D=1, vshift=1: audio [3, 5] padded -> [0, 3, 5, 0]
    # frame 0 (v=1): |1-0|, |1-3|, |1-5| = 1, 2, 4;  frame 1 (v=2): |2-3|, |2-5|, |2-0| = 1, 3, 2
    d = offset_distances(np.array([[1.0], [2.0]]), np.array([[3.0], [5.0]]), vshift=1)
    np.testing.assert_allclose(d, [[1, 2, 4], [1, 3, 2]])
    # mean_dists = [1, 2.5, 3] -> LSE-D = 1 at k=0, offset = vshift - 0 = 1, LSE-C = median 2.5 - 1 = 1.5
    s = lse_scores(np.array([[1.0], [2.0]]), np.array([[3.0], [5.0]]), vshift=1)
    assert s == {"lse_d": 1.0, "lse_c": 1.5, "offset": 1, "mean_dists": [1.0, 2.5, 3.0]}


def _unit_rows(rng, n, dim):
    x = rng.standard_normal((n, dim))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("shift", [3, -3, 0])
def test_lse_recovers_a_known_shift(shift):
    # audio_emb[j] = video_emb[j - shift]: for shift = 3 the audio lags the video by 3 frames.
    # dists[i, k] = ||v_i - a[i + k - vshift]|| = 0 at k = vshift + shift -> offset = vshift - k = -shift.
    # At that k, the |shift| frames whose partner falls in the zero padding have distance ||v_i|| = 1,
    # so LSE-D = |shift| / T exactly; other offsets compare unrelated unit vectors (~sqrt 2) -> LSE-C large.
    rng = np.random.default_rng(4)
    T, D, vshift = 100, 32, 15
    base = _unit_rows(rng, T + abs(shift), D)
    if shift >= 0:
        video, audio = base[shift:], base[: T]  # audio[j] = base[j] = video[j - shift]
    else:
        video, audio = base[:T], base[-shift:]  # audio[j] = base[j - shift] = video[j - shift]
    np.testing.assert_allclose(audio[10], video[10 - shift])
    s = lse_scores(video, audio, vshift=vshift)
    assert s["offset"] == -shift
    assert s["lse_d"] == pytest.approx(abs(shift) / T, abs=1e-12)
    assert s["lse_c"] > 1.0
    assert len(s["mean_dists"]) == 2 * vshift + 1
    assert isinstance(s["offset"], int) and isinstance(s["lse_d"], float) and isinstance(s["lse_c"], float)


def test_lse_accepts_torch_input():
    rng = np.random.default_rng(5)
    video, audio = _unit_rows(rng, 20, 8), _unit_rows(rng, 20, 8)
    from_np = lse_scores(video, audio, vshift=4)
    from_torch = lse_scores(torch.from_numpy(video).float(), torch.from_numpy(audio).float(), vshift=4)
    assert from_torch["offset"] == from_np["offset"]
    assert from_torch["lse_d"] == pytest.approx(from_np["lse_d"], rel=1e-5)
    assert from_torch["mean_dists"] == pytest.approx(from_np["mean_dists"], rel=1e-5)


def test_lse_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        offset_distances(np.zeros((5, 4)), np.zeros((6, 4)))


# ---------------------------------------------------------------- landmarks


def _mouth_frames():
    lm = np.zeros((2, 68, 2))
    # frame 0: inner-lip pairs (61,67), (62,66), (63,65) opened by 3, 4, 5 -> mean 4
    lm[0, 61], lm[0, 67] = (0, 0), (0, 3)
    lm[0, 62], lm[0, 66] = (1, 0), (1, 4)
    lm[0, 63], lm[0, 65] = (2, 0), (2, 5)
    # frame 1: only (61,67) open, diagonally by (3,4) -> 5 / 3
    lm[1, 61], lm[1, 67] = (0, 0), (3, 4)
    return lm


def test_mouth_opening_hand_values():
    np.testing.assert_allclose(mouth_opening(_mouth_frames()), [4.0, 5.0 / 3.0])
    assert MOUTH == slice(48, 68)


def test_landmark_distance_mouth_and_face():
    gt = np.random.default_rng(6).uniform(0, 96, (3, 68, 2))
    pred = gt.copy()
    pred[:, MOUTH] += (3.0, 4.0)  # each of the 20 mouth points moves by 5
    # M-LMD: 5;  F-LMD: 20 points * 5 / 68 points = 100 / 68 = 1.4705882
    assert landmark_distance(pred, gt, "mouth") == pytest.approx(5.0)
    assert landmark_distance(pred, gt, "face") == pytest.approx(100.0 / 68.0)
    assert landmark_distance(gt, gt.copy(), "face") == 0.0
    with pytest.raises(ValueError):
        landmark_distance(pred, gt, "eyes")


def test_correlation_hand_values():
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # deviations (-1.5, -.5, .5, 1.5) and (-1.5, .5, -.5, 1.5): cov sum 4, variance sums 5 and 5 -> r = 0.8
    assert correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_correlation_nan_on_constant_input():
    assert math.isnan(correlation([2, 2, 2], [1, 2, 3]))
    assert math.isnan(correlation([1, 2, 3], [0, 0, 0]))
    assert math.isnan(correlation([1], [1]))


# ---------------------------------------------------------------- inter-frame consistency


def test_ifc_hand_computed():
    # 3 constant 2x2x3 frames. gen = 0, 51, 51 -> /255: 0, 0.2, 0.2 -> d_gen = (0.2, 0.0)
    #                          gt  = 0, 0, 102 -> /255: 0, 0, 0.4   -> d_gt  = (0.0, 0.4)
    # IFC = mean(|0.2 - 0|, |0 - 0.4|) = 0.3
    gen = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 51, 51)])
    gt = np.stack([np.full((2, 2, 3), v, np.uint8) for v in (0, 0, 102)])
    assert inter_frame_consistency(gen, gt) == pytest.approx(0.3)
    # only the size of the frame-to-frame change counts: a video and its constant offset agree
    assert inter_frame_consistency(gt, gt + 10) == pytest.approx(0.0)


def test_ifc_nan_for_single_frame():
    one = np.zeros((1, 2, 2, 3), np.uint8)
    assert math.isnan(inter_frame_consistency(one, one))


# ---------------------------------------------------------------- ROC AUC


def test_roc_auc_counts_correctly_ranked_pairs():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: 3 of the 4 (positive, negative) pairs are ranked right
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.9, 0.2], [1, 0]) == 1.0 and roc_auc([0.2, 0.9], [1, 0]) == 0.0


def test_roc_auc_ties_count_half_and_one_class_is_nan():
    assert roc_auc([0.5, 0.5, 0.5], [1, 0, 0]) == pytest.approx(0.5)
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
