"""A small reader for Praat TextGrid files (long "ooTextFile" format, as MFA writes; short format too).

Only interval tiers are read; point tiers are skipped. No dependency beyond the standard library.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


class TextGridError(ValueError):
    """Not a TextGrid this reader understands."""


@dataclass(frozen=True)
class Interval:
    start: float
    end: float
    text: str


_TOKEN = re.compile(r'"((?:[^"]|"")*)"|([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(<exists>|<absent>)')


_INDEX_LINE = re.compile(r"^\s*\w+\s*\[\d*\]\s*:?\s*$")


def _tokens(text: str) -> list[str | float]:
    """Strings and numbers in file order; `key = value` labels and comments are ignored."""
    out: list[str | float] = []
    for line in text.splitlines():
        if _INDEX_LINE.match(line):  # "item [1]:", "intervals [2]:" carry indexes, not values
            continue
        line = line.split("!", 1)[0] if not line.lstrip().startswith('"') and "!" in line else line
        value = line.split("=", 1)[1] if "=" in line and not line.lstrip().startswith('"') else line
        for m in _TOKEN.finditer(value):
            if m.group(1) is not None:
                out.append(m.group(1).replace('""', '"'))
            elif m.group(2) is not None:
                out.append(float(m.group(2)))
    return out


def parse_textgrid(text: str) -> dict[str, list[Interval]]:
    """Tier name -> intervals, for every IntervalTier in the file."""
    tokens = _tokens(text.lstrip("\ufeff"))
    if len(tokens) < 2 or tokens[0] != "ooTextFile" or tokens[1] != "TextGrid":
        raise TextGridError("not a TextGrid: the header must be File type = \"ooTextFile\" / Object class = \"TextGrid\"")
    pos = 2 + 2  # xmin, xmax of the grid
    try:
        n_tiers = int(tokens[pos])
        pos += 1
        tiers: dict[str, list[Interval]] = {}
        for _ in range(n_tiers):
            kind, name = tokens[pos], tokens[pos + 1]
            n_items = int(tokens[pos + 4])
            pos += 5
            if kind == "IntervalTier":
                items = [Interval(float(tokens[pos + 3 * k]), float(tokens[pos + 3 * k + 1]), str(tokens[pos + 3 * k + 2]))
                         for k in range(n_items)]
                pos += 3 * n_items
                tiers[str(name)] = items
            elif kind == "TextTier":
                pos += 2 * n_items
            else:
                raise TextGridError(f"unknown tier class {kind!r}")
    except (IndexError, ValueError, TypeError) as err:
        raise TextGridError(f"truncated or malformed TextGrid ({err})") from err
    return tiers


def read_textgrid(path: str | Path) -> dict[str, list[Interval]]:
    return parse_textgrid(Path(path).read_text(encoding="utf-8"))
