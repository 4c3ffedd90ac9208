"""Threshold-free score of a binary classifier: the area under the ROC curve.

The experts' accuracy uses a fixed threshold (cosine similarity 0.5) that unseen faces can shift; the AUC
says how well the similarities *rank* in-sync above off-sync pairs, whatever the threshold.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def roc_auc(scores, labels) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2 (Mann-Whitney U / (n+ n-)).
    NaN when one class is absent."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in length: {scores.shape} vs {labels.shape}")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks for ties
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))
