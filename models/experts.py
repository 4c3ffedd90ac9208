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


class ExpertWithMouthHeads(nn.Module):
    """Training-time wrapper: an expert plus one linear head per encoder that predicts the window's per-frame
    mouth-shape descriptors (lipforge/train/mouth_shape.py) from that encoder's features, before its projection.
    The heads only shape training (an auxiliary loss); the saved expert is `self.expert` alone."""

    def __init__(self, expert: nn.Module, n_frames: int, n_descriptors: int):
        super().__init__()
        self.expert = expert
        self.shape = (n_frames, n_descriptors)
        self.face_head = nn.Linear(expert.face_encoder.feature_dim, n_frames * n_descriptors)
        self.audio_head = nn.Linear(expert.audio_encoder.feature_dim, n_frames * n_descriptors)

    def forward(self, faces, mels):
        """-> (audio embedding, face embedding, predicted audio-side shapes, predicted face-side shapes (B, T, K))."""
        fa = self.expert.audio_encoder.features(mels)
        fv = self.expert.face_encoder.features(faces)
        return (self.expert.audio_encoder.embed(fa), self.expert.face_encoder.embed(fv),
                self.audio_head(fa).view(-1, *self.shape), self.face_head(fv).view(-1, *self.shape))
