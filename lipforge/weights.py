"""Pretrained weight files the training and evaluation stages can use, where it looks for them, and what runs
when they are absent.

Standard caches are honoured (torch hub's checkpoints folder, $LIPFORGE_WEIGHTS_DIR); a file that is present
is used and its sha256 recorded in the outputs it produced, else the named offline fallback runs.
The face detector's own files are handled by lipforge.face.weights.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightFile:
    name: str
    filename: str
    used_by: str
    fallback: str


# The weight files a stage loads today (what `lipforge doctor` lists).
KNOWN_WEIGHTS: tuple[WeightFile, ...] = (
    WeightFile("vgg19", "vgg19-dcbb9e9d.pth", "silent_refs / train_generator perceptual and triplet features "
               "(torchvision VGG-19, ImageNet)", "a fixed randomly initialised VGG-19 (named in the reports)"),
)


def search_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("LIPFORGE_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["LIPFORGE_WEIGHTS_DIR"]))
    try:
        import torch.hub

        dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    except ImportError:
        dirs.append(Path.home() / ".cache" / "torch" / "hub" / "checkpoints")
    dirs.append(Path("weights"))
    return dirs


def locate(filename: str) -> Path | None:
    """First existing copy of a weight file in the search dirs, else None."""
    for d in search_dirs():
        if (d / filename).is_file():
            return d / filename
    return None
