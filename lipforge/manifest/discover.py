"""Find candidate clips in a corpus root, one function per layout. No file is opened here beyond listing.

A candidate names its video, its audio (when separate), its transcript and, for the embedded sample corpus,
its ground-truth sidecars. Files that cannot become a clip (a transcript without its video) come back as
rejects, so nothing under a root silently disappears.
"""
from __future__ import annotations

import re
from pathlib import Path

VIDEO_EXTS = {".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".webm"}
SPLIT_LISTS = {"pretrain.txt": "train", "train.txt": "train", "val.txt": "val", "test.txt": "test"}


def _split_lists(root: Path) -> dict[str, str]:
    """LRS2-style lists at the root: lines '<spk>/<clip>' (test.txt may add tokens after a space)."""
    listed: dict[str, str] = {}
    for name, split in SPLIT_LISTS.items():
        f = root / name
        if f.is_file():
            for line in f.read_text().splitlines():
                if line.strip():
                    listed[line.split()[0]] = split
    return listed


def _candidate(root: Path, speaker: str, clip: str, video: Path, transcript: Path, transcript_kind: str,
               listed: dict[str, str], audio: Path | None = None) -> dict:
    clip_id = f"{speaker}/{clip}"
    gt = video.with_name(f"{clip}.gt.json")
    gt_lm = video.with_name(f"{clip}.landmarks.npy")
    return {
        "clip_id": clip_id, "speaker": speaker, "clip": clip, "video_path": str(video),
        "audio_path": str(audio) if audio else "", "transcript_path": str(transcript),
        "transcript_kind": transcript_kind, "gt_path": str(gt) if gt.is_file() else "",
        "gt_landmarks_path": str(gt_lm) if gt_lm.is_file() else "", "listed_split": listed.get(clip_id, ""),
    }


def _reject(path: Path, reason: str, detail: str, clip_id: str = "") -> dict:
    return {"clip_id": clip_id, "path": str(path), "reason": reason, "detail": detail}


def discover_lrs2(root: Path) -> tuple[list[dict], list[dict]]:
    listed = _split_lists(root)
    cands, rejects = [], []
    for spk_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(spk_dir.iterdir()):
            if f.suffix == ".mp4":
                cands.append(_candidate(root, spk_dir.name, f.stem, f, f.with_suffix(".txt"), "lrs", listed))
            elif f.suffix == ".txt" and not f.with_suffix(".mp4").exists():
                rejects.append(_reject(f, "missing_video", "transcript without a .mp4 of the same name",
                                       f"{spk_dir.name}/{f.stem}"))
            elif f.suffix in VIDEO_EXTS:
                rejects.append(_reject(f, "unsupported_layout", f"LRS2 layout expects .mp4 videos, got {f.suffix}",
                                       f"{spk_dir.name}/{f.stem}"))
    return cands, rejects


_GRID_SPEAKER = re.compile(r"^s\d+$")


def _grid_align_path(root: Path, speaker: str, clip: str) -> Path:
    options = [root / speaker / "align" / f"{clip}.align", root / "align" / speaker / f"{clip}.align",
               root / "alignments" / speaker / f"{clip}.align"]
    return next((p for p in options if p.is_file()), options[0])


def _grid_audio_path(root: Path, speaker: str, clip: str) -> Path | None:
    options = [root / speaker / f"{clip}.wav", root / "audio" / speaker / f"{clip}.wav"]
    return next((p for p in options if p.is_file()), None)


def discover_grid(root: Path) -> tuple[list[dict], list[dict]]:
    listed = _split_lists(root)
    cands = []
    for spk_dir in sorted(p for p in root.iterdir() if p.is_dir() and _GRID_SPEAKER.match(p.name)):
        for f in sorted(spk_dir.iterdir()):
            if f.suffix in (".mpg", ".mp4"):
                spk, clip = spk_dir.name, f.stem
                cands.append(_candidate(root, spk, clip, f, _grid_align_path(root, spk, clip), "grid_align",
                                        listed, _grid_audio_path(root, spk, clip)))
    return cands, []


def discover_folder(root: Path) -> tuple[list[dict], list[dict]]:
    listed = _split_lists(root)
    cands, rejects = [], []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel_parent = f.parent.relative_to(root)
        speaker = "_".join(rel_parent.parts) if rel_parent.parts else root.name
        if f.suffix.lower() in VIDEO_EXTS:
            cands.append(_candidate(root, speaker, f.stem, f, f.with_suffix(".txt"), "plain", listed))
        elif f.suffix == ".txt" and f.name not in SPLIT_LISTS and not any(
                f.with_suffix(e).exists() for e in VIDEO_EXTS):
            rejects.append(_reject(f, "missing_video", "transcript without a video of the same name",
                                   f"{speaker}/{f.stem}"))
    return cands, rejects


DISCOVER = {"lrs2": discover_lrs2, "grid": discover_grid, "folder": discover_folder}


def discover(root: Path, layout: str) -> tuple[list[dict], list[dict]]:
    if not root.is_dir():
        raise FileNotFoundError(f"corpus root {root} does not exist or is not a folder "
                                f"(params.yaml manifest.roots); fix the path or remove the root")
    return DISCOVER[layout](root)
