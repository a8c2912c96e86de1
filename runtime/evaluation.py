"""How well scores separate anomalous images from normal ones, in numpy only (the runtime has no
scikit-learn): AUROC, average precision and the threshold for a chosen false-positive rate.

Convention: `scores` are vaekit scores (log-likelihoods in nats, higher = more typical) and `anomalous`
is a boolean per image; an image is flagged when its score is below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Evaluation:
    """Separation of normal and anomalous images by score, and the operating point at a chosen FPR."""

    normal: int
    anomalous: int
    auroc: float
    auprc: float  # average precision, with "anomalous" as the positive class
    fpr: float  # the false-positive rate asked for
    threshold: float  # flag images scoring below this (nats)
    fpr_at_threshold: float  # the normal images' share below it (<= fpr)
    tpr_at_threshold: float  # the anomalous images' share below it

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict (an infinite threshold, when every image may be flagged, as null)."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}


def _labelled(scores: Any, anomalous: Any) -> tuple[np.ndarray, np.ndarray]:
    """Finite float64 scores and boolean labels of the same length, both classes present; else ValueError."""
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(anomalous, dtype=bool)
    if s.ndim != 1 or s.shape != y.shape:
        raise ValueError(f"scores and labels must be 1-D and of equal length, got shapes {s.shape} and {y.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; leave out the images that could not be scored")
    if y.all() or not y.any():
        raise ValueError(f"need both normal and anomalous images to evaluate, got {int((~y).sum())} normal and "
                         f"{int(y.sum())} anomalous")
    return s, y


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` in increasing order, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    group = np.repeat(np.arange(len(starts)), ends - starts)
    ranks = np.empty(len(values))
    ranks[order] = ((starts + 1 + ends) / 2.0)[group]
    return ranks


def auroc(scores: Any, anomalous: Any) -> float:
    """Area under the ROC curve: the chance that a random anomalous image scores lower than a random normal
    one, ties counting half (the Mann-Whitney U statistic over the product of the class sizes)."""
    s, y = _labelled(scores, anomalous)
    ranks = average_ranks(-s)  # rank by anomaly: the lowest score ranks highest
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: Any, anomalous: Any) -> float:
    """Average precision (area under the precision-recall curve as a step function, no interpolation), with
    one point per distinct score, lowest score first: sum over points of (recall gain) x precision."""
    s, y = _labelled(scores, anomalous)
    order = np.argsort(s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    true_pos = np.cumsum(y)[last_of_tie]
    flagged = (np.arange(1, len(s) + 1))[last_of_tie]
    recall = true_pos / true_pos[-1]
    precision = true_pos / flagged
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def threshold_at_fpr(scores: Any, anomalous: Any, fpr: float) -> tuple[float, float, float]:
    """(threshold, its FPR, its TPR): the highest threshold that flags (score < threshold) at most `fpr` of
    the normal images."""
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"the false-positive rate must be from 0 to 1, got {fpr}")
    s, y = _labelled(scores, anomalous)
    normal = np.sort(s[~y])
    m = int(np.floor(fpr * len(normal) + 1e-9))
    threshold = float(normal[m]) if m < len(normal) else float("inf")
    return threshold, float(np.mean(s[~y] < threshold)), float(np.mean(s[y] < threshold))


def evaluate(scores: Any, anomalous: Any, fpr: float = 0.05) -> Evaluation:
    """AUROC, average precision and the threshold at `fpr` of `scores` against the labels `anomalous`."""
    s, y = _labelled(scores, anomalous)
    threshold, at_fpr, at_tpr = threshold_at_fpr(s, y, fpr)
    return Evaluation(int((~y).sum()), int(y.sum()), auroc(s, y), average_precision(s, y), fpr, threshold,
                      at_fpr, at_tpr)
