"""What the held-out images look like to the runtime on the bundle itself: their figures on every anomaly score
(`runtime.scores`), so that apps can tell a typical image (score near the median) from an unusual one (below the
0.01 quantile), and the principal axes of their latent codes, the main directions apps move a latent along."""

from __future__ import annotations

from typing import Any

import numpy as np

from vaekit.runtime import VAE
from vaekit.runtime.bundle import SCORE_QUANTILE_LEVELS, latent_pca
from vaekit.runtime.scores import COMBINED, COMPLEXITY, LATENT, LIKELIHOOD, RECONSTRUCTION, REFERENCES_KEY, Reference, combined, latent_log_density

from .errors import ExportError

SCORE_K = 1  # the ELBO: what `VAE.score(images)` returns by default, so apps compare like with like
SCORE_SEED = 0


def reference(scores: np.ndarray, name: str, k: int = SCORE_K) -> Reference:
    """The held-out images' figures on one score; ExportError when any is not finite."""
    if not np.all(np.isfinite(scores)):
        raise ExportError(f"{int(np.sum(~np.isfinite(scores)))} held-out images score NaN or infinity on {name!r}; "
                          "the model is broken (a diverged run?), nothing was written")
    return Reference(k=k, seed=SCORE_SEED, n=len(scores), mean=float(scores.mean()), std=float(scores.std()),
                     q={level: float(np.quantile(scores, float(level))) for level in SCORE_QUANTILE_LEVELS})


def heldout_figures(vae: VAE, images: np.ndarray) -> dict[str, Any]:
    """The manifest's `score_quantiles` (the likelihood's, as before), `score_references` (every score's) and
    `latent_pca` (principal axes of the posterior means) of the held-out `images`, computed by the runtime on
    the graphs that will be written."""
    parts = vae.normalities(images, (LIKELIHOOD, COMPLEXITY, RECONSTRUCTION), k=SCORE_K, seed=SCORE_SEED)
    refs = {name: reference(values, name) for name, values in parts.items()}  # first: refuses non-finite models
    codes = vae.encode(images)[0]
    pca = latent_pca(codes)
    parts[LATENT] = latent_log_density(codes, pca)
    refs[LATENT] = reference(parts[LATENT], LATENT)
    refs[COMBINED] = reference(combined(parts, refs), COMBINED)
    quantiles = refs[LIKELIHOOD].to_manifest()
    del quantiles["std"]
    return {"score_quantiles": quantiles, REFERENCES_KEY: {name: r.to_manifest() for name, r in refs.items()},
            "latent_pca": pca}
