"""AVSyncNet, the shift-invariant lip-sync expert of "Audio-driven Talking Face Generation with Stabilized
Synchronization Loss" (Sec. 3.4, Fig. 3b).

Image encoder: a ResNet-50 (He et al. 2016, bottleneck blocks) whose first conv takes the 15-channel stack
of 5 lower-half RGB frames. Audio encoder: a ResNetSE-34 (basic residual blocks with squeeze-and-excitation,
as ResNetSE34V2 in clovaai/voxceleb_trainer) on the (80, 16) mel window, with attentive statistics pooling
over time. Both project to `embed_dim`, then ReLU + L2 normalise, so cosine similarity lies in [0, 1]
(trained with BCE like Wav2Lip's SyncNet). The defaults are the paper's sizes.

`image_input` "frames" is the paper's input. "motion" (lipforge's) gives the image encoder each frame minus the
window's mean frame (`window_motion`): what stays put over the 5 frames (the face, its skin, teeth and light)
cancels and what moves (lips, jaw) remains, which might generalise to unseen faces better when there are few
training faces. On the sample corpus (7 training faces) it does not, over two seeds (docs/experiments.md, "The
expert's own knobs").

`image_columns` (lipforge's) crops the lower half to a band of its columns before the image encoder: (0, 1) is the
paper's whole lower half; (0.25, 0.75) keeps the middle half, the mouth and chin, and drops the cheeks, jaw line
and background, which tell faces apart more than they tell mouths apart (`middle_columns`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


IMAGE_INPUTS = ("frames", "motion")
# The motion residuals span a few hundredths of the [0, 1] pixel range; this gain brings them near the frames' scale.
# Saved motion experts were trained with it (it is not among their saved kwargs): changing it changes them.
MOTION_GAIN = 4.0


def window_motion(faces: torch.Tensor) -> torch.Tensor:
    """(N, T*3, H, W) stack of T RGB frames -> each frame minus the T frames' mean, times `MOTION_GAIN` (same shape)."""
    n, c, h, w = faces.shape
    frames = faces.view(n, c // 3, 3, h, w)
    return ((frames - frames.mean(dim=1, keepdim=True)) * MOTION_GAIN).view(n, c, h, w)


def column_band(columns) -> tuple[float, float]:
    """The (first, last) fractions of a band of columns, checked: 0 <= first < last <= 1."""
    lo, hi = (float(c) for c in columns)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"image_columns must satisfy 0 <= first < second <= 1, got {tuple(columns)}")
    return lo, hi


def middle_columns(faces: torch.Tensor, columns: tuple[float, float]) -> torch.Tensor:
    """(..., H, W) -> (..., H, W') keeping the columns from fraction `columns[0]` to `columns[1]` of the width
    (a band checked by `column_band`; (0, 1) keeps every column)."""
    lo, hi = columns
    w = faces.shape[-1]
    return faces[..., round(lo * w):round(hi * w)]


def conv_bn(cin, cout, kernel_size, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=False),
                         nn.BatchNorm2d(cout))


def shortcut(cin, cout, stride):
    return nn.Identity() if cin == cout and stride == 1 else conv_bn(cin, cout, 1, stride)


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck: 1x1 reduce, 3x3 (strided), 1x1 expand x4, plus the (projected) input."""

    expansion = 4

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(conv_bn(cin, planes, 1), nn.ReLU(),
                                  conv_bn(planes, planes, 3, stride), nn.ReLU(),
                                  conv_bn(planes, cout, 1))
        self.shortcut = shortcut(cin, cout, stride)

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


class SELayer(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features."""

    def __init__(self, channels, reduction=8):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class SEBasicBlock(nn.Module):
    """ResNetSE basic block: two 3x3 convs, SE gate, plus the (projected) input."""

    expansion = 1

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, planes, 3, stride), nn.ReLU(), conv_bn(planes, planes, 3),
                                  SELayer(planes))
        self.shortcut = shortcut(cin, planes, stride)

    def forward(self, x):
        return F.relu(self.body(x) + self.shortcut(x))


def make_stages(block, cin, widths, layers, strides):
    stages = []
    for planes, n, stride in zip(widths, layers, strides):
        blocks = []
        for i in range(n):
            blocks.append(block(cin, planes, stride if i == 0 else 1))
            cin = planes * block.expansion
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), cin


class ImageEncoder(nn.Module):
    """ResNet-50-style encoder: (N, 15, H/2, W) lower-half frame stack -> (N, D) normalised embedding."""

    def __init__(self, layers=(3, 4, 6, 3), width=64, embed_dim=512, in_channels=15, image_input="frames",
                 columns=(0.0, 1.0)):
        super().__init__()
        if image_input not in IMAGE_INPUTS:
            raise ValueError(f"image_input must be one of {', '.join(IMAGE_INPUTS)}, got {image_input!r}")
        self.image_input = image_input
        self.columns = column_band(columns)
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(), nn.MaxPool2d(3, 2, 1))
        widths = [width * 2 ** i for i in range(len(layers))]
        self.stages, cout = make_stages(Bottleneck, width, widths, layers, (1, 2, 2, 2))
        self.feature_dim = cout
        self.fc = nn.Linear(cout, embed_dim)

    def features(self, x):
        """(N, C) globally pooled features, before the projection."""
        x = middle_columns(x, self.columns)
        if self.image_input == "motion":
            x = window_motion(x)
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def embed(self, features):
        return F.normalize(F.relu(self.fc(features)), p=2, dim=1)

    def forward(self, x):
        return self.embed(self.features(x))


class AudioEncoder(nn.Module):
    """ResNetSE-34-style encoder: (N, 1, 80, 16) mel -> (N, D) normalised embedding.

    As in ResNetSE34V2, frequency is folded into channels after the last stage and attentive statistics
    pooling (weighted mean and std over time) feeds the projection.
    """

    def __init__(self, layers=(3, 4, 6, 3), width=32, embed_dim=512, n_mels=80):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(1, width, 3), nn.ReLU())
        widths = [width * 2 ** i for i in range(len(layers))]
        self.stages, cout = make_stages(SEBasicBlock, width, widths, layers, (1, 2, 2, 2))
        channels = cout * -(-n_mels // 8)  # three stride-2 stages: ceil(n_mels / 8) frequency rows remain
        self.attention = nn.Sequential(nn.Conv1d(channels, 128, 1), nn.ReLU(), nn.BatchNorm1d(128),
                                       nn.Conv1d(128, channels, 1), nn.Softmax(dim=2))
        self.feature_dim = 2 * channels
        self.fc = nn.Linear(2 * channels, embed_dim)

    def features(self, mels):
        """(N, 2 * C * F) attentive statistics (weighted mean and std over time), before the projection."""
        x = self.stages(self.stem(mels))
        x = x.flatten(1, 2)  # (N, C * F, T)
        w = self.attention(x)
        mu = (x * w).sum(dim=2)
        sigma = ((x * x * w).sum(dim=2) - mu * mu).clamp(min=1e-5).sqrt()
        return torch.cat([mu, sigma], dim=1)

    def embed(self, features):
        return F.normalize(F.relu(self.fc(features)), p=2, dim=1)

    def forward(self, mels):
        return self.embed(self.features(mels))


class AVSyncNet(nn.Module):
    """AVSyncNet (Fig. 3b): ResNet-50 lip encoder + ResNetSE-34 audio encoder with a shared embedding space."""

    def __init__(self, image_layers: tuple = (3, 4, 6, 3), image_width: int = 64,
                 audio_layers: tuple = (3, 4, 6, 3), audio_width: int = 32, embed_dim: int = 512,
                 image_input: str = "frames", image_columns: tuple = (0.0, 1.0)):
        super().__init__()
        if len(image_layers) != 4 or len(audio_layers) != 4:
            raise ValueError(f"AVSyncNet needs 4 stages per encoder, got image_layers={image_layers}, "
                             f"audio_layers={audio_layers}")
        self.embed_dim = embed_dim
        self.face_encoder = ImageEncoder(tuple(image_layers), image_width, embed_dim, image_input=image_input,
                                         columns=image_columns)
        self.audio_encoder = AudioEncoder(tuple(audio_layers), audio_width, embed_dim)

    def encode_face(self, faces):
        """(B, 15, H/2, W) in [0,1] -> (B, embed_dim), non-negative and unit norm."""
        return self.face_encoder(faces)

    def encode_audio(self, mels):
        """(B, 1, 80, 16) -> (B, embed_dim), non-negative and unit norm."""
        return self.audio_encoder(mels)

    def forward(self, faces, mels):
        return self.encode_audio(mels), self.encode_face(faces)
