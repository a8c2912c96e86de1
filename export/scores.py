"""What the held-out images look like to the runtime on the bundle itself: their figures on every anomaly score
(`runtime.scores`), so that apps can tell a typical image (score near the median) from an unusual one (below the
0.01 quantile), and the principal axes of their latent codes, the main directions apps move a latent along."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from vaekit.runtime import VAE
from vaekit.runtime.bundle import SCORE_QUANTILE_LEVELS, latent_pca
from vaekit.runtime.manifest import LatentPca, ScoreQuantiles
from vaekit.runtime.scores import (
    COLOUR,
    COMBINED,
    COMBINED_PARTS,
    LATENT,
    LIKELIHOOD,
    combined,
    latent_log_density,
)

from .errors import ExportError

SCORE_K = 1  # the ELBO: what `VAE.score(images)` returns by default, so apps compare like with like
SCORE_SEED = 0
LATENT_FOLDS = 10


def reference(scores: np.ndarray, name: str, k: int = SCORE_K) -> ScoreQuantiles:
    """The held-out images' figures on one score; ExportError when any is not finite."""
    if not np.all(np.isfinite(scores)):
        raise ExportError(f"{int(np.sum(~np.isfinite(scores)))} held-out images score NaN or infinity on {name!r}; "
                          "the model is broken (a diverged run?), nothing was written")
    return ScoreQuantiles(k=k, seed=SCORE_SEED, n=len(scores), mean=float(scores.mean()), std=float(scores.std()),
                     q={level: float(np.quantile(scores, float(level))) for level in SCORE_QUANTILE_LEVELS})


def unseen_latent_scores(codes: np.ndarray) -> np.ndarray:
    """The `latent` score of each held-out code against the principal axes of the other codes (in LATENT_FOLDS
    folds): what a new image's code scores against the recorded `latent_pca`. Scored against axes that include
    them, as the manifest's do, the held-out codes would look more typical than any new image's."""
    scores = np.empty(len(codes))
    if len(codes) == 1:
        return latent_log_density(codes, latent_pca(codes))
    for fold in np.array_split(np.arange(len(codes)), min(LATENT_FOLDS, len(codes))):
        scores[fold] = latent_log_density(codes[fold], latent_pca(np.delete(codes, fold, axis=0)))
    return scores


@dataclass(frozen=True)
class HeldoutFigures:
    """What the manifest records of the held-out images: the likelihood's quantiles (`score_quantiles`, as
    before the other scores), every score's (`score_references`) and their codes' principal axes."""

    score_quantiles: ScoreQuantiles
    score_references: dict[str, ScoreQuantiles]
    latent_pca: LatentPca


def heldout_figures(vae: VAE, images: np.ndarray) -> HeldoutFigures:
    """The manifest's `score_quantiles` (the likelihood's, as before), `score_references` (every score's) and
    `latent_pca` (principal axes of the posterior means) of the held-out `images`, computed by the runtime on
    the graphs that will be written. `colour` is scored, and averaged in `combined`, where the manifest has a
    `colour_reference` (a run trained before vaekit recorded the training images' colours has none)."""
    has_colour = vae.manifest.colour_reference is not None
    wanted = tuple(name for name in COMBINED_PARTS if name != COLOUR or has_colour)
    parts = vae.normalities(images, wanted, k=SCORE_K, seed=SCORE_SEED)
    refs = {name: reference(values, name) for name, values in parts.items()}  # first: refuses non-finite models
    codes = vae.encode(images)[0]
    pca = latent_pca(codes)
    parts[LATENT] = unseen_latent_scores(codes)
    refs[LATENT] = reference(parts[LATENT], LATENT)
    refs[COMBINED] = replace(reference(combined(parts, refs, wanted), COMBINED), parts=wanted)
    return HeldoutFigures(refs[LIKELIHOOD], refs, pca)
