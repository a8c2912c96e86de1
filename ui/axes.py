"""The directions the Explore sliders move a latent along: the main (principal) directions of the
latent codes, or the latent dimensions one by one, the most used first.

The codes are the posterior means of held-out images, whose principal axes `vaekit-export` records in
the manifest (`latent_pca`). A bundle exported before that records none: for it, the codes are those of
images the model itself generates, encoded again (z ~ N(0, I) -> decode -> encoder mean), and the page
says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaekit.runtime import VAE
from vaekit.runtime.bundle import latent_pca
from vaekit.runtime.manifest import LatentPca

BASES = ("main directions", "latent dimensions")
MAX_SLIDERS = 10
N_CODES = 1024
CODES_SEED = 0
UNUSED = 0.01  # a dimension whose codes vary less than this (variance) carries next to no information


@dataclass(frozen=True)
class Axes:
    """A latent z = center + sum(values[i] * vectors[i]); one slider per vector, named by `labels` and
    explained by `notes`."""

    center: np.ndarray  # (D,)
    vectors: np.ndarray  # (k, D), orthonormal rows
    labels: list[str]
    notes: list[str]

    def latent(self, values: np.ndarray) -> np.ndarray:
        """The latent (D,) at these slider values."""
        return (self.center + values.astype(np.float64) @ self.vectors).astype(np.float32)

    def coordinates(self, latent: np.ndarray) -> np.ndarray:
        """The slider values of the point nearest `latent` that the sliders can reach."""
        return (self.vectors @ (latent.astype(np.float64) - self.center)).astype(np.float32)


def reencoded_codes(vae: VAE, n: int = N_CODES, seed: int = CODES_SEED) -> np.ndarray:
    """Encoder means (n, D) of `n` images the model generates from the prior."""
    return vae.encode(vae.sample(n, seed=seed))[0].astype(np.float64)


def codes_pca(vae: VAE) -> tuple[LatentPca, str]:
    """The principal axes of `vae`'s latent codes, as the manifest's `latent_pca` holds them, and a
    sentence saying which codes they are: the held-out images' if the bundle records them, else
    those of images the model generates."""
    recorded = vae.manifest.latent_pca
    if recorded is not None:
        return recorded, f"the latent codes of {recorded.n:,} held-out images, recorded at export"
    return latent_pca(reencoded_codes(vae)), (
        f"the codes of {N_CODES:,} images the model generates, encoded again: this bundle records no "
        "held-out codes (re-export it with this vaekit to get them)")


def explore_axes(vae: VAE) -> tuple[dict[str, Axes], str]:
    """Both bases of `vae`, with at most MAX_SLIDERS directions each, the most used first, and the
    sentence saying which codes they come from."""
    pca, source = codes_pca(vae)
    k = min(vae.latent_dim, MAX_SLIDERS)
    return {"main directions": principal_axes(pca, k), "latent dimensions": dimension_axes(pca, k)}, source


def principal_axes(pca: LatentPca, k: int) -> Axes:
    """The first `k` principal axes of `pca` (a `latent_pca`) about the codes' mean, each noted with its
    share of the codes' variance."""
    variance = np.asarray(pca.variance, dtype=np.float64)
    share = variance[:k] / max(float(variance.sum()), 1e-30)
    labels = [f"direction {i + 1}" for i in range(k)]
    return Axes(np.asarray(pca.mean, dtype=np.float64), np.asarray(pca.axes, dtype=np.float64)[:k], labels,
                [f"{s:.0%} of the codes' variance" for s in share])


def dimension_axes(pca: LatentPca, k: int) -> Axes:
    """The `k` latent dimensions whose codes vary most (variances from `pca`, a `latent_pca` with all D
    axes: the diagonal of axes.T @ diag(variance) @ axes), about the prior's centre (zero)."""
    axes = np.asarray(pca.axes, dtype=np.float64)
    variance = (axes**2 * np.asarray(pca.variance, dtype=np.float64)[:, None]).sum(axis=0)
    d = len(variance)
    dims = np.argsort(-variance, kind="stable")[:k]
    notes = [f"codes vary by {np.sqrt(variance[i]):.2f} (std)" + (": unused" if variance[i] < UNUSED else "")
             for i in dims]
    return Axes(np.zeros(d), np.eye(d)[dims], [f"dimension {i}" for i in dims], notes)
