"""Transcript readers: LRS2/LRS3 .txt, GRID .align, plain text. All return normalised uppercase words."""
from __future__ import annotations

import re
from pathlib import Path

_NON_WORD = re.compile(r"[^A-Z0-9' ]+")
GRID_SILENCES = {"sil", "sp"}


def normalize_text(text: str) -> str:
    """Uppercase words separated by single spaces; punctuation dropped, apostrophes kept ("DON'T")."""
    return " ".join(_NON_WORD.sub(" ", text.upper()).split())


def read_lrs_transcript(path: Path) -> str:
    """LRS2/LRS3: the line starting 'Text:'; a file without one is read as plain text."""
    raw = path.read_text(errors="replace")
    for line in raw.splitlines():
        if line.startswith("Text:"):
            return normalize_text(line[len("Text:"):])
    return normalize_text(raw)


def read_grid_align(path: Path) -> str:
    """GRID .align: lines '<start> <end> <word>' in 1/25000 s units; silences are dropped."""
    words = []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].lower() not in GRID_SILENCES:
            words.append(parts[2])
    return normalize_text(" ".join(words))
