"""Training-time augmentation of the expert's lower-half windows (and, switched on, of the generators' windows).

A small corpus has few faces (the sample corpus trains on 7), and an expert trained on their raw pixels
learns those faces: its mouth reading does not carry over to a new one. One random similarity transform
(mirror, shift, zoom) and one random brightness/colour gain per window, the same for all 5 frames of it (the
motion between frames is the signal and must survive), make it read the mouth instead of the face. A
mirror, a small shift or zoom and a change of light leave lip sync unchanged, so the labels stay true.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class WindowAugment:
    flip: bool = True          # mirror left-right with probability 1/2
    max_shift: float = 0.05    # translation, fraction of the image's width and height (each way)
    max_zoom: float = 0.15     # scale factor drawn from 1 +- max_zoom
    brightness: float = 0.3    # one gain per window from 1 +- brightness
    colour: float = 0.15       # one gain per colour channel from 1 +- colour

    @property
    def active(self) -> bool:
        return self.flip or any(v > 0 for v in (self.max_shift, self.max_zoom, self.brightness, self.colour))


def similarity_thetas(n: int, rng: np.random.Generator, aug: WindowAugment) -> np.ndarray:
    """(n, 2, 3) affine matrices in `F.affine_grid`'s normalised coordinates (output -> input): x_in = s*x + tx,
    y_in = s*y + ty, with x negated for a mirrored window."""
    scale = 1.0 + rng.uniform(-aug.max_zoom, aug.max_zoom, n)
    mirror = np.where(aug.flip & (rng.random(n) < 0.5), -1.0, 1.0)
    shift = rng.uniform(-aug.max_shift, aug.max_shift, (n, 2)) * 2.0  # normalised coordinates span 2
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = scale * mirror
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    return theta


def augment_windows(faces: torch.Tensor, rng: np.random.Generator, aug: WindowAugment) -> torch.Tensor:
    """(B, T*3, H, W) stacks of T RGB frames in [0, 1] -> the same, each window under its own random transform
    and light (every frame of a window alike). Draws from `rng` only, so a batch's augmentation is reproducible."""
    if not aug.active:
        return faces
    n, channels = faces.shape[:2]
    if channels % 3:
        raise ValueError(f"expected stacked RGB frames (channels a multiple of 3), got {channels} channels")
    theta = torch.from_numpy(similarity_thetas(n, rng, aug)).to(faces)
    grid = F.affine_grid(theta, list(faces.shape), align_corners=False)
    out = F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gain = (1.0 + rng.uniform(-aug.brightness, aug.brightness, (n, 1))) * \
        (1.0 + rng.uniform(-aug.colour, aug.colour, (n, 3)))
    gain = torch.from_numpy(np.tile(gain, channels // 3)).to(faces)  # frame-major RGB: the same gain per frame
    return (out * gain[:, :, None, None]).clamp(0.0, 1.0)


def augment_generator_windows(gt: torch.Tensor, ref: torch.Tensor, rng: np.random.Generator,
                              aug: WindowAugment) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 3, H, W) target windows and their identity references -> the same, each sample's target and
    references under one random transform and light (so the references still show the target's face as it is
    drawn, and the pose reference, made from the target afterwards, lines up with it)."""
    if not aug.active:
        return gt, ref
    if gt.shape != ref.shape:
        raise ValueError(f"targets {tuple(gt.shape)} and references {tuple(ref.shape)} differ in shape")
    B, T, C, H, W = gt.shape
    out = augment_windows(torch.cat([gt, ref], dim=1).reshape(B, 2 * T * C, H, W), rng, aug)
    out = out.view(B, 2 * T, C, H, W)
    return out[:, :T], out[:, T:]
