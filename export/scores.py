"""What the held-out images look like to the runtime on the bundle itself: quantiles of their scores, so
that apps can tell a typical image (score near the median) from an unusual one (below the 0.01 quantile),
and the principal axes of their latent codes, the main directions apps move a latent along."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaekit.runtime import VAE
from vaekit.runtime.bundle import SCORE_QUANTILE_LEVELS, latent_pca

from .errors import ExportError

SCORE_K = 1  # the ELBO: what `VAE.score(images)` returns by default, so apps compare like with like
SCORE_SEED = 0


def score_quantiles(vae: VAE, images: np.ndarray, k: int = SCORE_K) -> dict[str, Any]:
    """{"k", "n", "seed", "mean", "q": {level: value}} of `vae.score(images, k, seed)`, in nats."""
    scores = vae.score(images, k=k, seed=SCORE_SEED)
    if not np.all(np.isfinite(scores)):
        raise ExportError(f"{int(np.sum(~np.isfinite(scores)))} held-out images score NaN or infinity; the model "
                          "is broken (a diverged run?), nothing was written")
    return {
        "k": k,
        "n": len(images),
        "seed": SCORE_SEED,
        "mean": float(scores.mean()),
        "q": {level: float(np.quantile(scores, float(level))) for level in SCORE_QUANTILE_LEVELS},
    }


def heldout_figures(vae: VAE, images: np.ndarray) -> dict[str, Any]:
    """The manifest's `score_quantiles` and `latent_pca` (principal axes of the posterior means) of the
    held-out `images`, computed by the runtime on the graphs that will be written."""
    quantiles = score_quantiles(vae, images)  # first: it refuses a model whose codes are not finite
    return {"score_quantiles": quantiles, "latent_pca": latent_pca(vae.encode(images)[0])}
