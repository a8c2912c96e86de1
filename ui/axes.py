"""The directions the Explore sliders move a latent along: the latent dimensions one by one, or the main
(principal) directions of the latent codes.

A bundle carries no training data, so the codes are those of images the model itself generates,
encoded again: z ~ N(0, I) -> decode -> encoder mean. They follow the codes of real data closely for
a trained model, and show which dimensions it really uses (unused ones stay near zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaekit.runtime import VAE

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


def explore_axes(vae: VAE) -> dict[str, Axes]:
    """Both bases of `vae`, with at most MAX_SLIDERS directions each, the most used first."""
    codes = reencoded_codes(vae)
    k = min(vae.latent_dim, MAX_SLIDERS)
    return {"main directions": principal_axes(codes, k), "latent dimensions": dimension_axes(codes, k)}


def principal_axes(codes: np.ndarray, k: int) -> Axes:
    """The `k` principal axes of `codes` (N, D) about their mean, by decreasing variance; each axis's
    sign is fixed so that its largest entry is positive, so the same codes give the same sliders."""
    center = codes.mean(axis=0)
    _, singular, vt = np.linalg.svd(codes - center, full_matrices=False)
    vectors = vt[:k] * np.sign(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(axis=1)])[:, None]
    share = singular[:k] ** 2 / max(float((singular**2).sum()), 1e-30)
    labels = [f"direction {i + 1}" for i in range(k)]
    return Axes(center, vectors, labels, [f"{s:.0%} of the codes' variance" for s in share])


def dimension_axes(codes: np.ndarray, k: int) -> Axes:
    """The `k` latent dimensions whose codes vary most, about the prior's centre (zero)."""
    variance = codes.var(axis=0)
    dims = np.argsort(-variance, kind="stable")[:k]
    notes = [f"codes vary by {np.sqrt(variance[d]):.2f} (std)" + (": unused" if variance[d] < UNUSED else "")
             for d in dims]
    return Axes(np.zeros(codes.shape[1]), np.eye(codes.shape[1])[dims], [f"dimension {d}" for d in dims], notes)
