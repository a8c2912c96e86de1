"""An anomaly score in plain words: where it falls among the scores of the bundle's own reference
(held-out) images, whose quantiles `vaekit-export` records in the manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

UNUSUAL, VERY_UNUSUAL = 0.05, 0.01  # share of reference images scoring lower


@dataclass(frozen=True)
class Reading:
    """A score (nats, higher is more typical), the estimated share of reference images scoring lower,
    a one-word verdict and a sentence for people."""

    score: float
    below: float
    verdict: str
    text: str


def share_below(score: float, quantiles: dict[str, float]) -> float:
    """The share of reference images scoring below `score`, interpolated between recorded quantiles
    (clamped to the lowest and highest quantile levels)."""
    levels = sorted(quantiles, key=float)
    return float(np.interp(score, [quantiles[q] for q in levels], [float(q) for q in levels]))


def _percent(share: float) -> str:
    return f"{share:.1%}" if share < 0.01 or share > 0.99 else f"{share:.0%}"


def read_score(score: float, score_quantiles: dict[str, Any]) -> Reading:
    """A Reading of `score` against the manifest's `score_quantiles` ({"k", "n", "q": {level: value}})."""
    below = share_below(score, score_quantiles["q"])
    if below < UNUSUAL:
        verdict = "very unusual" if below < VERY_UNUSUAL else "unusual"
        comparison = f"lower than {_percent(1 - below)} of"
    else:
        verdict, comparison = "typical", f"higher than about {_percent(below)} of"
    advice = {
        "very unusual": "The model has rarely seen anything like it.",
        "unusual": "It is unlike most of what the model was trained on.",
        "typical": "It looks like the images the model was trained on.",
    }[verdict]
    sentence = (f"**{verdict.capitalize()}.** Its score, {score:.1f} nats, is {comparison} the "
                f"{score_quantiles['n']} reference images scored when the bundle was exported. {advice}")
    return Reading(score, below, verdict, sentence)
