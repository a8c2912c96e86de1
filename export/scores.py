"""Quantiles of the held-out images' scores, computed by the runtime on the bundle itself, so that apps
can tell a typical image (score near the median) from an unusual one (below the 0.01 quantile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vaekit.runtime import VAE
from vaekit.runtime.bundle import SCORE_QUANTILE_LEVELS

from .errors import ExportError

SCORE_K = 1  # the ELBO: what `VAE.score(images)` returns by default, so apps compare like with like
SCORE_SEED = 0


def score_quantiles(bundle: Path, images: np.ndarray, k: int = SCORE_K) -> dict[str, Any]:
    """{"k", "n", "seed", "mean", "q": {level: value}} of `VAE.score(images, k, seed)` on CPU, in nats."""
    scores = VAE.load(bundle, device="cpu").score(images, k=k, seed=SCORE_SEED)
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
