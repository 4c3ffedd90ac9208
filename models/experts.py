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

    def heads_state(self) -> dict:
        """What `MouthReader.from_heads` needs to rebuild the face head (the audio head is kept too)."""
        return {"n_frames": self.shape[0], "n_descriptors": self.shape[1],
                "face_head": self.face_head.state_dict(), "audio_head": self.audio_head.state_dict()}

    def forward(self, faces, mels):
        """-> (audio embedding, face embedding, predicted audio-side shapes, predicted face-side shapes (B, T, K))."""
        fa = self.expert.audio_encoder.features(mels)
        fv = self.expert.face_encoder.features(faces)
        return (self.expert.audio_encoder.embed(fa), self.expert.face_encoder.embed(fv),
                self.audio_head(fa).view(-1, *self.shape), self.face_head(fv).view(-1, *self.shape))


class MouthReader(nn.Module):
    """A trained expert's face encoder with the mouth-shape head it trained with: lower-half windows
    (B, T*3, H/2, W) -> the predicted standardized mouth-shape descriptors (B, T, K) of their frames. Frozen, it
    lets a generator compare the mouths it draws with the target's (G_L's `mouth_shape` term)."""

    def __init__(self, face_encoder: nn.Module, n_frames: int, n_descriptors: int):
        super().__init__()
        self.face_encoder = face_encoder
        self.shape = (n_frames, n_descriptors)
        self.face_head = nn.Linear(face_encoder.feature_dim, n_frames * n_descriptors)

    @classmethod
    def from_heads(cls, face_encoder: nn.Module, heads: dict) -> "MouthReader":
        reader = cls(face_encoder, heads["n_frames"], heads["n_descriptors"])
        reader.face_head.load_state_dict(heads["face_head"])
        return reader

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.face_head(self.face_encoder.features(faces)).view(-1, *self.shape)
