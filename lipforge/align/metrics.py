"""Boundary error between a reference and a predicted phone timeline (pure functions)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipforge.phonemes import SILENCE


@dataclass(frozen=True)
class BoundaryErrors:
    errors_ms: list[float]  # |start_ref - start_pred| of every matched non-edge phone, in reference order
    n_reference: int  # phones in the reference (edge silences excluded)
    n_matched: int

    def summary(self) -> dict:
        return summarize_errors(self.errors_ms)


def summarize_errors(errors_ms: list[float]) -> dict:
    if not errors_ms:
        return {"n": 0, "mean_ms": None, "median_ms": None, "p95_ms": None}
    e = np.asarray(errors_ms, dtype=np.float64)
    return {"n": int(e.size), "mean_ms": round(float(e.mean()), 2), "median_ms": round(float(np.median(e)), 2),
            "p95_ms": round(float(np.percentile(e, 95)), 2)}


def _label(p) -> str:
    return p["phone"] if isinstance(p, dict) else p.phone if hasattr(p, "phone") else p.label


def _start(p) -> float:
    return float(p["start"]) if isinstance(p, dict) else float(p.start)


def align_labels(ref: list[str], hyp: list[str]) -> list[tuple[int, int]]:
    """Levenshtein alignment of two label sequences; returns the (ref_idx, hyp_idx) pairs with equal labels.

    Substitutions cost 1 like insertions/deletions, so an inserted or dropped phone shifts nothing; ties
    prefer the diagonal, so equal runs pair up in order.
    """
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            sub = cost[i - 1, j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1)
            cost[i, j] = min(sub, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs = []
    i, j = n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1):
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _strip_edge_silence(phones: list) -> list:
    lo, hi = 0, len(phones)
    while lo < hi and _label(phones[lo]) == SILENCE:
        lo += 1
    while hi > lo and _label(phones[hi - 1]) == SILENCE:
        hi -= 1
    return phones[lo:hi]


def boundary_errors(reference_phones: list, predicted_phones: list) -> BoundaryErrors:
    """Absolute start-boundary errors (ms) of the phones the two timelines share.

    Phones are dicts {"phone", "start", "end"} or objects with .phone/.label and .start. Leading and
    trailing silences are dropped from both sides first (the utterance-edge SIL boundaries carry no
    information about the aligner, only about how much silence each side chose to label); inner SILs
    take part in the label alignment and their starts count like any phone's when both sides have them.
    """
    ref, hyp = _strip_edge_silence(list(reference_phones)), _strip_edge_silence(list(predicted_phones))
    pairs = align_labels([_label(p) for p in ref], [_label(p) for p in hyp])
    errors = [abs(_start(ref[i]) - _start(hyp[j])) * 1000.0 for i, j in pairs]
    return BoundaryErrors(errors_ms=[round(e, 3) for e in errors], n_reference=len(ref), n_matched=len(pairs))
