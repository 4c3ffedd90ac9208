"""Frame-level visual quality: PSNR and SSIM (per image and averaged over a video), abs error of each half.

Images are (H, W, 3) (or (H, W)) arrays, uint8 or float, with values in [0, data_range]; videos are (T, H, W, 3).
Everything is computed in float64, so uint8 inputs never wrap around on subtraction.
"""
from __future__ import annotations

import math

import numpy as np


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return a, b


def psnr(a, b, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB: 10 * log10(data_range^2 / MSE), MSE over all pixels and channels.

    Returns float('inf') for identical images (MSE = 0).
    """
    a, b = _pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def half_abs_errors(a, b) -> dict:
    """Mean absolute difference of the upper and of the lower half of (..., H, W, C) images, rows split at H // 2
    as the generators' pose mask splits them. An edit of the mouth alone (G_S closing the lips) should leave the
    upper half near 0 and change the lower half a little: a large difference says the edit lost the face."""
    a, b = _pair(a, b)
    if a.ndim < 3:
        raise ValueError(f"expected (..., H, W, C) images, got shape {a.shape}")
    h = a.shape[-3] // 2
    diff = np.abs(a - b)
    return {"upper_half": float(diff[..., :h, :, :].mean()), "lower_half": float(diff[..., h:, :, :].mean())}


def ssim(a, b, data_range: float = 255.0) -> float:
    """Structural similarity (Wang et al. 2004), mean over pixels and channels.

        SSIM = (2 mu_a mu_b + C1)(2 sigma_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2)),
        C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = data_range,

    with local statistics under an 11x11 Gaussian window (sigma 1.5; skimage truncates at 3.5 sigma -> radius 5)
    and population (not sample) covariance. Images must be at least 11x11.
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(a, b)
    return float(
        structural_similarity(
            a,
            b,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            K1=0.01,
            K2=0.03,
            data_range=data_range,
            channel_axis=-1 if a.ndim == 3 else None,
        )
    )


def _check_video(a, b) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"shape mismatch: {np.shape(a)} vs {np.shape(b)}")
    if len(a) == 0:
        raise ValueError("empty video")


def video_psnr(a, b, data_range: float = 255.0) -> float:
    """Mean per-frame PSNR of two (T, H, W, 3) videos, averaged over the frames with a finite PSNR.

    Identical frames (PSNR = inf) are left out of the mean so a few perfect frames do not make the score
    infinite; if every frame is identical the result is inf.
    """
    _check_video(a, b)
    values = [psnr(fa, fb, data_range) for fa, fb in zip(a, b)]
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("inf")


def video_ssim(a, b, data_range: float = 255.0) -> float:
    """Mean per-frame SSIM of two (T, H, W, 3) videos."""
    _check_video(a, b)
    return float(np.mean([ssim(fa, fb, data_range) for fa, fb in zip(a, b)]))
