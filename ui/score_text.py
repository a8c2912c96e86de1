"""An anomaly score in plain words for the page. The rule (where a score falls among the bundle's
reference scores, and which verdict that is) lives in `vaekit.runtime.reading`, shared with `vaekit-score`."""

from __future__ import annotations

from dataclasses import dataclass

from vaekit.runtime.manifest import ScoreQuantiles
from vaekit.runtime.reading import share_below, verdict
from vaekit.runtime.scores import LIKELIHOOD, UNITS


@dataclass(frozen=True)
class Reading:
    """A score (higher is more typical), the estimated share of reference images scoring lower,
    a one-word verdict and a sentence for people."""

    score: float
    below: float
    verdict: str
    text: str


def _percent(share: float) -> str:
    return f"{share:.1%}" if share < 0.01 or share > 0.99 else f"{share:.0%}"


def read_score(score: float, reference: ScoreQuantiles, name: str = LIKELIHOOD, note: str | None = None) -> Reading:
    """A Reading of score `name`'s value `score` against its reference figures; `note` (why another score than
    the default is read) ends the sentence."""
    below = share_below(score, reference.q)
    word = verdict(below)
    if word == "typical":
        comparison = f"higher than about {_percent(below)} of"
    else:
        comparison = f"lower than {_percent(1 - below)} of"
    advice = {
        "very unusual": "The model has rarely seen anything like it.",
        "unusual": "It is unlike most of what the model was trained on.",
        "typical": "It looks like the images the model was trained on.",
    }[word]
    sentence = (f"**{word.capitalize()}.** Its {name} score, {score:.1f} {UNITS[name]}, is {comparison} the "
                f"{reference.n} reference images scored when the bundle was exported. {advice}"
                + (f" (Note: {note}.)" if note else ""))
    return Reading(score, below, word, sentence)
