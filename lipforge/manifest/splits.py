"""Identity-disjoint split assignment (pure)."""
from __future__ import annotations

import hashlib

SPLITS = ("train", "val", "test")


def hashed_split(speaker: str, val_fraction: float, test_fraction: float) -> str:
    """A stable split for a speaker: the same speaker always lands in the same split, on any machine."""
    u = int(hashlib.sha256(speaker.encode()).hexdigest()[:8], 16) / 0x1_0000_0000
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def assign_splits(rows: list[dict], val_fraction: float, test_fraction: float) -> tuple[list[str], list[str]]:
    """Split per row from its `listed_split` (a root's split lists) or its speaker's hash.

    A speaker with clips listed in a split list takes that split for all its clips, so a new unlisted clip of
    a known speaker never leaks it into another split. Returns (splits, conflicts): a speaker listed in two
    different splits is a conflict, and those rows get split "" for the caller to reject.
    """
    listed: dict[str, set[str]] = {}
    for r in rows:
        if r.get("listed_split"):
            listed.setdefault(r["speaker"], set()).add(r["listed_split"])
    splits, conflicts = [], []
    for r in rows:
        s = listed.get(r["speaker"])
        if s and len(s) > 1:
            splits.append("")
            conflicts.append(r["clip_id"])
        elif s:
            splits.append(next(iter(s)))
        else:
            splits.append(hashed_split(r["speaker"], val_fraction, test_fraction))
    return splits, conflicts
