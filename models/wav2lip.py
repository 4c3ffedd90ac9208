"""Wav2Lip generator and visual-quality discriminator (Prajwal et al., "A Lip Sync Expert Is All You Need
for Speech to Lip Generation In The Wild", ACM MM 2020, Fig. 2 and Sec. 3.3-3.4).

The layouts follow the published model layer for layer at 96x96; `width` scales every channel count
(round(c * width), at least 8) so a small version trains on a laptop CPU. The building blocks here are
shared with models/syncnet.py, as in Wav2Lip's own models/conv.py.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def scaled(channels: int, width: float) -> int:
    return max(8, round(channels * width))


class ConvBlock(nn.Module):
    """Wav2Lip's Conv2d: conv + BN (+ input when `residual`) + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0, residual=False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x):
        out = self.bn(self.conv(x))
        if self.residual:
            out = out + x
        return F.relu(out)


class ConvTransposeBlock(nn.Module):
    """Wav2Lip's Conv2dTranspose: transposed conv + BN + ReLU."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0, output_padding=0):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class LeakyConvBlock(nn.Module):
    """Wav2Lip's nonorm_Conv2d (discriminator): conv + LeakyReLU(0.01), no normalisation."""

    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, padding)

    def forward(self, x):
        return F.leaky_relu(self.conv(x), 0.01)


def wav2lip_audio_encoder(width: float, out_channels: int, n_res_last: int = 1) -> nn.Sequential:
    """Wav2Lip's audio encoder: (N, 1, 80, 16) mel -> (N, out_channels, 1, 1), ReLU'd.

    The generator has one residual block at the 256-channel level, SyncNet_color two (`n_res_last`).
    """
    c = lambda n: scaled(n, width)
    r = {"kernel_size": 3, "stride": 1, "padding": 1, "residual": True}
    return nn.Sequential(
        ConvBlock(1, c(32), 3, 1, 1), ConvBlock(c(32), c(32), **r), ConvBlock(c(32), c(32), **r),
        ConvBlock(c(32), c(64), 3, (3, 1), 1), ConvBlock(c(64), c(64), **r), ConvBlock(c(64), c(64), **r),
        ConvBlock(c(64), c(128), 3, 3, 1), ConvBlock(c(128), c(128), **r), ConvBlock(c(128), c(128), **r),
        ConvBlock(c(128), c(256), 3, (3, 2), 1), *[ConvBlock(c(256), c(256), **r) for _ in range(n_res_last)],
        ConvBlock(c(256), c(512), 3, 1, 0),  # 3x3 -> 1x1
        ConvBlock(c(512), out_channels, 1, 1, 0),
    )


class Wav2LipGenerator(nn.Module):
    """Wav2Lip generator (Fig. 2): face encoder with U-Net skips, audio encoder, face decoder.

    The face encoder sees cat(pose, ref): the target frame with its lower half zeroed and an identity
    reference. img_size must be a multiple of 32 in [64, 192]; the bottleneck is img_size/32 pixels square
    and is collapsed by a valid conv of that size (3x3 at 96, exactly Wav2Lip's layout) and re-expanded by
    a transposed conv of the same size.
    """

    def __init__(self, width: float = 1.0, img_size: int = 96):
        super().__init__()
        if img_size % 32 or not 64 <= img_size <= 192:
            raise ValueError(f"Wav2LipGenerator supports img_size in (64, 96, 128, 160, 192), got {img_size}")
        self.img_size = img_size
        k = img_size // 32  # bottleneck side
        c = lambda n: scaled(n, width)
        r = {"kernel_size": 3, "stride": 1, "padding": 1, "residual": True}

        def down(cin, cout, n_res):
            return nn.Sequential(ConvBlock(cin, cout, 3, 2, 1), *[ConvBlock(cout, cout, **r) for _ in range(n_res)])

        self.face_encoder = nn.ModuleList([
            ConvBlock(6, c(16), 7, 1, 3),          # 96
            down(c(16), c(32), 2),                 # 48
            down(c(32), c(64), 3),                 # 24
            down(c(64), c(128), 2),                # 12
            down(c(128), c(256), 2),               # 6
            down(c(256), c(512), 1),               # 3
            nn.Sequential(ConvBlock(c(512), c(512), k, 1, 0), ConvBlock(c(512), c(512), 1, 1, 0)),  # 1
        ])
        self.audio_encoder = wav2lip_audio_encoder(width, c(512))

        def up(cin, cout):
            return nn.Sequential(ConvTransposeBlock(cin, cout, 3, 2, 1, 1),
                                 ConvBlock(cout, cout, **r), ConvBlock(cout, cout, **r))

        # Decoder inputs are the previous output concatenated with the encoder feature at that resolution.
        self.face_decoder = nn.ModuleList([
            ConvBlock(c(512), c(512), 1, 1, 0),                                                # 1
            nn.Sequential(ConvTransposeBlock(2 * c(512), c(512), k, 1, 0),
                          ConvBlock(c(512), c(512), **r)),                                     # 3
            up(2 * c(512), c(512)),                                                            # 6
            up(c(512) + c(256), c(384)),                                                       # 12
            up(c(384) + c(128), c(256)),                                                       # 24
            up(c(256) + c(64), c(128)),                                                        # 48
            up(c(128) + c(32), c(64)),                                                         # 96
        ])
        self.output_block = nn.Sequential(ConvBlock(c(64) + c(16), c(32), 3, 1, 1), nn.Conv2d(c(32), 3, 1))

    def forward(self, mels, pose, ref):
        """mels (B,T,1,80,16), pose/ref (B,T,3,H,W) in [0,1] -> (B,T,3,H,W) in [0,1]."""
        B, T = pose.shape[:2]
        if pose.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"expected {self.img_size}x{self.img_size} frames, got {tuple(pose.shape[-2:])}")
        x = torch.cat([pose, ref], dim=2).flatten(0, 1)
        feats = []
        for block in self.face_encoder:
            x = block(x)
            feats.append(x)
        x = self.audio_encoder(mels.flatten(0, 1))
        for block in self.face_decoder:
            x = torch.cat([block(x), feats.pop()], dim=1)
        out = torch.sigmoid(self.output_block(x))
        return out.unflatten(0, (B, T))


class Wav2LipDiscriminator(nn.Module):
    """Wav2Lip's visual-quality discriminator (Sec. 3.4) on the lower half of single frames.

    Returns raw logits; Wav2Lip's final sigmoid is left to BCE-with-logits. Before the closing valid 3x3
    conv the features are average-pooled to 3x3 (an identity at 96 px) so other frame sizes also give one
    logit per frame.
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        c = lambda n: scaled(n, width)
        self.encoder = nn.Sequential(
            LeakyConvBlock(3, c(32), 7, 1, 3),                                                  # 48x96
            LeakyConvBlock(c(32), c(64), 5, (1, 2), 2), LeakyConvBlock(c(64), c(64), 5, 1, 2),  # 48x48
            LeakyConvBlock(c(64), c(128), 5, 2, 2), LeakyConvBlock(c(128), c(128), 5, 1, 2),    # 24
            LeakyConvBlock(c(128), c(256), 5, 2, 2), LeakyConvBlock(c(256), c(256), 5, 1, 2),   # 12
            LeakyConvBlock(c(256), c(512), 3, 2, 1), LeakyConvBlock(c(512), c(512), 3, 1, 1),   # 6
            LeakyConvBlock(c(512), c(512), 3, 2, 1), LeakyConvBlock(c(512), c(512), 3, 1, 1),   # 3
            nn.AdaptiveAvgPool2d(3),
            LeakyConvBlock(c(512), c(512), 3, 1, 0), LeakyConvBlock(c(512), c(512), 1, 1, 0),   # 1
        )
        self.binary_pred = nn.Conv2d(c(512), 1, 1)

    def forward(self, frames):
        """frames (N,3,H,W) in [0,1] -> logits (N,)."""
        h = frames.shape[2]
        x = self.encoder(frames[:, :, h - h // 2:])
        return self.binary_pred(x).flatten()
