"""How unusual a score is: where it falls among the scores of the bundle's own reference (held-out)
images, whose quantiles `vaekit-export` records in the manifest (`score_references`, one entry per score). One rule, shared
by `vaekit-score` and the app's Reconstruct tab."""

from __future__ import annotations

import numpy as np

UNUSUAL, VERY_UNUSUAL = 0.05, 0.01  # share of reference images scoring lower
VERDICTS = ("typical", "unusual", "very unusual")


def share_below(score: float, quantiles: dict[str, float]) -> float:
    """The share of reference images scoring below `score`, interpolated between recorded quantiles
    (clamped to the lowest and highest quantile levels)."""
    levels = sorted(quantiles, key=float)
    return float(np.interp(score, [quantiles[q] for q in levels], [float(q) for q in levels]))


def verdict(below: float) -> str:
    """"typical", "unusual" (fewer than 5% of reference images score lower) or "very unusual" (fewer than 1%)."""
    if below < VERY_UNUSUAL:
        return "very unusual"
    return "unusual" if below < UNUSUAL else "typical"
