"""Lip-sync experts (Wav2Lip's SyncNet, the stabilized-sync paper's AVSyncNet) and their input layout."""
from __future__ import annotations

import torch
from torch import nn

from models.avsyncnet import AVSyncNet
from models.syncnet import SyncNet

EXPERTS = {"syncnet": SyncNet, "avsyncnet": AVSyncNet}


def build_expert(arch: str, **kwargs) -> nn.Module:
    """Construct the expert named `arch` ("syncnet" or "avsyncnet") with its keyword arguments."""
    if arch not in EXPERTS:
        raise ValueError(f"unknown expert arch {arch!r}; allowed: {', '.join(sorted(EXPERTS))}")
    return EXPERTS[arch](**kwargs)


def lower_half(frames: torch.Tensor) -> torch.Tensor:
    """(B, T, 3, H, W) -> (B, T*3, H//2, W): bottom halves stacked frame-major (f0 RGB, f1 RGB, ...)."""
    B, T, C, H, W = frames.shape
    return frames[..., H - H // 2:, :].reshape(B, T * C, H // 2, W)
