"""LSE-D / LSE-C lip-sync metrics: the offset search of syncnet_python (SyncNetInstance.evaluate + calc_pdist).

Given per-frame SyncNet embeddings of the video (lips, 5-frame windows) and of the audio (MFCC windows), the
audio sequence is padded with `vshift` zero rows at both ends and every video frame i is compared with the
2*vshift+1 audio rows around it:

    dists[i, k] = || v_i - a_pad[i + k] ||_2 = || v_i - a[i + k - vshift] ||_2,   k = 0 .. 2*vshift
    mean_dists[k] = mean_i dists[i, k]
    LSE-D  = min_k mean_dists[k]
    LSE-C  = median_k mean_dists[k] - LSE-D
    offset = vshift - argmin_k mean_dists[k]

Sign convention (syncnet_python's): at the best k, video frame i matches audio frame i - offset, so a positive
offset means the video lags the audio (the lips show a sound `offset` frames after it is heard) and a negative
offset means the audio lags the video. If audio_emb[j] = video_emb[j - s], the recovered offset is -s.

Note: syncnet_python uses torch.nn.functional.pairwise_distance, which adds 1e-6 to the difference before the
norm; here the plain Euclidean distance is used (the difference is O(1e-6 * sqrt(D))).
"""
from __future__ import annotations

import numpy as np


def _as_2d(x, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (T, D), got shape {x.shape}")
    return x


def offset_distances(video_emb, audio_emb, vshift: int = 15) -> np.ndarray:
    """dists (T, 2*vshift+1): dists[i, k] = ||video_emb[i] - audio_pad[i + k]||_2, audio padded with vshift zero rows."""
    v = _as_2d(video_emb, "video_emb")
    a = _as_2d(audio_emb, "audio_emb")
    if v.shape != a.shape:
        raise ValueError(f"video and audio embeddings differ in shape: {v.shape} vs {a.shape}")
    if vshift < 0:
        raise ValueError(f"vshift must be >= 0, got {vshift}")
    t, dim = v.shape
    a_pad = np.concatenate([np.zeros((vshift, dim)), a, np.zeros((vshift, dim))], axis=0)
    idx = np.arange(t)[:, None] + np.arange(2 * vshift + 1)[None, :]  # (T, W) rows of a_pad
    return np.linalg.norm(v[:, None, :] - a_pad[idx], axis=-1)


def lse_scores(video_emb, audio_emb, vshift: int = 15) -> dict:
    """LSE-D, LSE-C and the AV offset of one clip (see the module docstring for the equations and the sign).

    Returns {"lse_d": float, "lse_c": float, "offset": int, "mean_dists": list of 2*vshift+1 floats}.
    Ties in the minimum resolve to the smallest k (the largest offset).
    """
    dists = offset_distances(video_emb, audio_emb, vshift)
    if dists.shape[0] == 0:
        raise ValueError("no frames")
    mean_dists = dists.mean(axis=0)
    k = int(np.argmin(mean_dists))
    minval = float(mean_dists[k])
    return {
        "lse_d": minval,
        "lse_c": float(np.median(mean_dists)) - minval,  # 2*vshift+1 is odd: the median is the middle value
        "offset": int(vshift - k),
        "mean_dists": [float(m) for m in mean_dists],
    }
