"""vaekit's portable seeded generator and the model's prior: the numbers behind `VAE.sample` and `VAE.score`,
specified in docs/bundle-format.md ("Seeded noise", "The prior") so that every runtime (Python, Node.js, the
browser) draws the same.

Counter-based: normal number i of seed s depends only on (s, i), so any slice of the stream is cheap and
results never depend on how a call is chunked. Word j is splitmix64's output for state s + (j + 1) * GOLDEN
(mod 2**64); a word's top 53 bits give a uniform in (0, 1); normal i is Box-Muller's cosine branch on the
uniforms of words 2i and 2i + 1, in float64, rounded to float32.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .checks import integer
from .likelihood import LOG_2PI, log_mean_exp

if TYPE_CHECKING:
    from .manifest import Prior

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MAX_SEED = 2**64 - 1
COMPONENT_WORDS = 2**63  # a mixture's component of sample i is chosen by the uniform of word 2**63 + i


def seed_or_fresh(seed: object) -> int:
    """`seed` checked (an integer from 0 to 2**64 - 1), or a fresh random one for None."""
    if seed is None:
        return secrets.randbits(64)
    value = integer("seed", seed, minimum=0)
    if value > MAX_SEED:
        raise ValueError(f"seed must be an integer from 0 to 2**64 - 1, got {value}")
    return value


def words(seed: int, start: int, count: int) -> np.ndarray:
    """Words start .. start + count - 1 of `seed`'s stream, uint64 (numpy's uint64 arithmetic wraps mod 2**64)."""
    z = np.arange(start + 1, start + count + 1, dtype=np.uint64) * np.uint64(GOLDEN) + np.uint64(seed)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


def uniforms(seed: int, start: int, count: int) -> np.ndarray:
    """Uniforms in (0, 1), float64: ((word >> 11) + 0.5) / 2**53, exact."""
    return ((words(seed, start, count) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def standard_normal(seed: int, start: int, count: int) -> np.ndarray:
    """Normal numbers start .. start + count - 1 of `seed`, float32: sqrt(-2 ln u1) * cos(2 pi u2) in float64
    with u1, u2 the uniforms of words 2i and 2i + 1."""
    u = uniforms(seed, 2 * start, 2 * count)
    return (np.sqrt(-2.0 * np.log(u[0::2])) * np.cos(2.0 * math.pi * u[1::2])).astype(np.float32)


@dataclass(frozen=True)
class Mixture:
    """A learned prior p(z) = sum_c weights[c] N(z; means[c], diag(exp(logvars[c]))), from the manifest's
    `prior` (format version 2); bundles without one have the standard normal prior."""

    weights: np.ndarray  # (K,) float64, summing to 1
    means: np.ndarray  # (K, D) float32
    logvars: np.ndarray  # (K, D) float32

    @classmethod
    def from_manifest(cls, prior: Prior) -> Mixture:
        return cls(np.asarray(prior.weights, dtype=np.float64), np.asarray(prior.means, dtype=np.float32),
                   np.asarray(prior.logvars, dtype=np.float32))

    def components(self, seed: int, n: int) -> np.ndarray:
        """The component of each of `n` samples: the first whose cumulative weight exceeds the uniform of word
        2**63 + i (the last one if rounding leaves the uniform above them all)."""
        u = uniforms(seed, COMPONENT_WORDS, n)
        return np.minimum(np.searchsorted(np.cumsum(self.weights), u, side="right"), len(self.weights) - 1)

    def log_prob(self, z: np.ndarray) -> np.ndarray:
        """log p(z) in float64, over the last axis of z (..., D)."""
        z = z.astype(np.float64)[..., None, :]  # (..., 1, D) against (K, D)
        logvars, means = self.logvars.astype(np.float64), self.means.astype(np.float64)
        per_component = -0.5 * (LOG_2PI * z.shape[-1] + (logvars + (z - means) ** 2 * np.exp(-logvars)).sum(-1))
        # log sum_c w_c N_c(z), as the log of the mean over the K components plus log K
        return log_mean_exp(per_component + np.log(self.weights), axis=-1) + math.log(len(self.weights))


def prior_latents(n: int, latent_dim: int, seed: object, temperature: float, mixture: Mixture | None = None) -> np.ndarray:
    """Latents (n, latent_dim) float32: normals 0 .. n * latent_dim - 1 of `seed`, row by row, times
    float32(temperature) in float32; with a mixture prior, each row then scaled by its component's standard
    deviation float32(exp(logvar / 2)) and shifted by its mean, in float32."""
    seed = seed_or_fresh(seed)
    z = standard_normal(seed, 0, n * latent_dim).reshape(n, latent_dim) * np.float32(temperature)
    if mixture is None:
        return z
    c = mixture.components(seed, n)
    std = np.exp(mixture.logvars.astype(np.float64) / 2).astype(np.float32)
    return mixture.means[c] + std[c] * z
