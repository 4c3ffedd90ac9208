"""Frozen VGG-19 features (Simonyan & Zisserman 2015) for the perceptual loss (Johnson et al. 2016; Eq. 1 of
the stabilized-sync paper) and the adaptive triplet loss (Eq. 2).

The `features` Sequential has torchvision's exact layout and indices, so torchvision's ImageNet file
`vgg19-dcbb9e9d.pth` loads into it directly. Without that file a fixed, seeded random initialisation is
used, and the returned provenance says so.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lipforge.hashing import file_sha256

# torchvision's cfg "E"; "M" is a 2x2 max pool.
VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layout() -> tuple[list, dict[str, int], dict[str, tuple]]:
    """The features layout as (cfg per index, relu name -> index, state-dict key -> shape)."""
    items, names, shapes = [], {}, {}
    block, conv, cin = 1, 1, 3
    for v in VGG19_CFG:
        if v == "M":
            items.append("M")
            block, conv = block + 1, 1
            continue
        i = len(items)
        shapes[f"features.{i}.weight"] = (v, cin, 3, 3)
        shapes[f"features.{i}.bias"] = (v,)
        items += [("conv", cin, v), "relu"]
        names[f"relu{block}_{conv}"] = i + 1
        conv, cin = conv + 1, v
    return items, names, shapes


LAYOUT, RELU_INDEX, FEATURE_SHAPES = _layout()


class VGG19Features(nn.Module):
    """VGG-19 `features` up to the deepest requested ReLU; forward(x in [0,1]) -> list of those outputs."""

    def __init__(self, layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")):
        super().__init__()
        unknown = [name for name in layers if name not in RELU_INDEX]
        if unknown or not layers:
            raise ValueError(f"unknown VGG-19 layers {unknown}; choose from {', '.join(RELU_INDEX)}")
        self.layers = tuple(layers)
        self._indices = [RELU_INDEX[name] for name in self.layers]
        modules = []
        for item in LAYOUT[: max(self._indices) + 1]:
            if item == "M":
                modules.append(nn.MaxPool2d(2, 2))
            elif item == "relu":
                modules.append(nn.ReLU())  # not in-place: returned activations must survive later layers
            else:
                modules.append(nn.Conv2d(item[1], item[2], 3, padding=1))
        self.features = nn.Sequential(*modules)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # a fixed feature extractor

    def forward(self, x):
        x = (x - self.mean) / self.std
        out = {}
        for i, module in enumerate(self.features):
            x = module(x)
            out[i] = x
        return [out[i] for i in self._indices]


def load_vgg19(layers, weights_path: str | Path | None, seed: int) -> tuple[VGG19Features, dict]:
    """Build VGG19Features with ImageNet weights from `weights_path` when that file exists, else with a
    deterministic kaiming-normal initialisation from `seed`. Returns (model, provenance)."""
    model = VGG19Features(tuple(layers))
    if weights_path is not None and Path(weights_path).is_file():
        path = Path(weights_path)
        _load_features(model, path)
        return model, {"network": "vgg19", "weights": "imagenet", "file": str(path), "sha256": file_sha256(path)}

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.features:
            if isinstance(m, nn.Conv2d):
                # fan_in keeps activation scale roughly constant with depth, so no layer's loss term dominates
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=g)
                nn.init.zeros_(m.bias)
    return model, {"network": "vgg19-random-init", "weights": None, "seed": seed,
                   "note": "VGG-19 ImageNet weights not found; perceptual/triplet features come from a fixed "
                           "randomly initialised VGG-19"}


def _load_features(model: VGG19Features, path: Path) -> None:
    """Load the features.* tensors of a torchvision-style VGG-19 state dict; classifier.* keys are ignored.
    Every features key in the file must belong to VGG-19 with the right shape, and every layer the model
    built must be present."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"{path}: expected a VGG-19 state dict, got {type(state).__name__}")
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    wanted = {f"features.{k}" for k in model.features.state_dict()}
    problems = [f"unexpected key {k}" for k in feats if k not in FEATURE_SHAPES]
    problems += [f"{k} has shape {tuple(v.shape)}, expected {FEATURE_SHAPES[k]}"
                 for k, v in feats.items() if k in FEATURE_SHAPES and tuple(v.shape) != FEATURE_SHAPES[k]]
    problems += [f"missing key {k}" for k in sorted(wanted - feats.keys())]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; ... ({len(problems)} problems)" if len(problems) > 5 else "")
        raise ValueError(f"{path} is not a torchvision VGG-19 state dict: {shown}")
    model.features.load_state_dict({k[len("features."):]: feats[k] for k in wanted})
