"""Wav2Lip's colour SyncNet, the lip-sync expert (Prajwal et al. 2020, Sec. 3.2; SyncNet_color).

A face encoder on the lower halves of 5 stacked RGB frames and an audio encoder on the matching
(80, 16) mel window, each ending in a ReLU'd 1x1 conv and L2 normalisation, so the cosine similarity
of a pair lies in [0, 1] and can be trained with BCE as in Wav2Lip.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from models.wav2lip import ConvBlock, scaled, wav2lip_audio_encoder


class NormalizedEmbedding(nn.Module):
    """Runs `body` (a Sequential ending in a ReLU'd 1x1 projection of a 1x1 map) and returns the flattened,
    L2-normalised output; `features` stops before the projection."""

    def __init__(self, body: nn.Sequential, feature_dim: int):
        super().__init__()
        self.body = body
        self.feature_dim = feature_dim

    def features(self, x):
        """(N, C) features before the closing 1x1 projection."""
        return self.body[:-1](x).flatten(1)

    def embed(self, features):
        return F.normalize(self.body[-1](features[:, :, None, None]).flatten(1), p=2, dim=1)

    def forward(self, x):
        return self.embed(self.features(x))


class SyncNet(nn.Module):
    """Wav2Lip's SyncNet_color; channel counts scaled by `width`, final projection to `embed_dim`.

    faces: (B, 15, H/2, W) in [0,1]; mels: (B, 1, 80, 16). The layout is Wav2Lip's for 48x96 inputs; the
    features are average-pooled to 3x3 before the closing valid 3x3 conv (an identity at 48x96) so 32x64
    and 64x128 inputs also end in a 1x1 embedding.
    """

    def __init__(self, width: float = 1.0, embed_dim: int = 512):
        super().__init__()
        self.embed_dim = embed_dim
        c = lambda n: scaled(n, width)
        r = {"kernel_size": 3, "stride": 1, "padding": 1, "residual": True}
        face = nn.Sequential(
            ConvBlock(15, c(32), 7, 1, 3),
            ConvBlock(c(32), c(64), 5, (1, 2), 1), ConvBlock(c(64), c(64), **r), ConvBlock(c(64), c(64), **r),
            ConvBlock(c(64), c(128), 3, 2, 1), *[ConvBlock(c(128), c(128), **r) for _ in range(3)],
            ConvBlock(c(128), c(256), 3, 2, 1), *[ConvBlock(c(256), c(256), **r) for _ in range(2)],
            ConvBlock(c(256), c(512), 3, 2, 1), *[ConvBlock(c(512), c(512), **r) for _ in range(2)],
            ConvBlock(c(512), c(512), 3, 2, 1),
            nn.AdaptiveAvgPool2d(3),
            ConvBlock(c(512), c(512), 3, 1, 0),
            ConvBlock(c(512), embed_dim, 1, 1, 0),
        )
        self.face_encoder = NormalizedEmbedding(face, c(512))
        self.audio_encoder = NormalizedEmbedding(wav2lip_audio_encoder(width, embed_dim, n_res_last=2), c(512))

    def encode_face(self, faces):
        """(B, 15, H/2, W) -> (B, embed_dim), non-negative and unit norm."""
        return self.face_encoder(faces)

    def encode_audio(self, mels):
        """(B, 1, 80, 16) -> (B, embed_dim), non-negative and unit norm."""
        return self.audio_encoder(mels)

    def forward(self, faces, mels):
        return self.encode_audio(mels), self.encode_face(faces)
