"""Trained-model files: what a training stage writes and the next stage loads (weights + how to rebuild them)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from lipforge.hashing import file_sha256
from lipforge.stage import StageError


def save_model(path: str | Path, kind: str, build: dict, state_dict: dict, info: dict,
               mouth_heads: dict | None = None) -> str:
    """Write {kind, build kwargs, weights, info} (and an expert's `mouth_heads` weights, when it trained with them);
    returns the file's sha256 (recorded in reports)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"kind": kind, "build": build, "state_dict": state_dict, "info": info}
    if mouth_heads is not None:
        blob["mouth_heads"] = mouth_heads
    torch.save(blob, path)
    return file_sha256(path)


def load_model_file(path: str | Path, kind: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} not found; run the stage that trains it first (`dvc repro`)")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if blob.get("kind") != kind:
        raise StageError(f"{path} holds a {blob.get('kind')!r} model, expected {kind!r}")
    blob["sha256"] = file_sha256(path)
    blob["path"] = str(path)
    return blob


def load_expert(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """A trained lip-sync expert in eval mode with requires_grad off, and its provenance."""
    from models.experts import build_expert

    blob = load_model_file(path, "expert")
    model = build_expert(blob["build"]["arch"], **blob["build"]["kwargs"])
    model.load_state_dict(blob["state_dict"])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, {"file": blob["path"], "sha256": blob["sha256"], **blob["build"], **blob["info"]}


def load_mouth_reader(path: str | Path, expert: torch.nn.Module):
    """The mouth reader (models.experts.MouthReader) of the expert file at `path`: `expert`'s face encoder (the
    loaded, frozen expert of that file) and the face mouth-shape head it trained with, frozen too."""
    from models.experts import MouthReader

    blob = load_model_file(path, "expert")
    if "mouth_heads" not in blob:
        raise StageError(f"{path} has no mouth-shape heads, which the generator's `mouth_shape` term reads mouths "
                         "with: set train_expert.mouth_shape_weight > 0 and re-run `dvc repro train_expert`, or switch "
                         "the term off (train_generator.losses.mouth_shape: false)")
    reader = MouthReader.from_heads(expert.face_encoder, blob["mouth_heads"])
    reader.eval()
    for p in reader.parameters():
        p.requires_grad_(False)
    return reader


def latest_metrics(history: list[dict]) -> dict:
    """The latest logged value of every metric in a training history (rows log different subsets)."""
    return {k: v for row in history for k, v in row.items()}


def write_curve(path: str | Path, history: list[dict]) -> None:
    """Per-step training metrics as CSV (declared as dvc plots)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for row in history for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(history)


def write_json(path: str | Path, obj: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
