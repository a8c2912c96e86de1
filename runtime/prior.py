"""vaekit's portable seeded generator: the N(0, I) numbers behind `VAE.sample` and `VAE.score`, specified in
docs/bundle-format.md ("Seeded noise") so that every runtime (Python, Node.js, the browser) draws the same.

Counter-based: normal number i of seed s depends only on (s, i), so any slice of the stream is cheap and
results never depend on how a call is chunked. Word j is splitmix64's output for state s + (j + 1) * GOLDEN
(mod 2**64); a word's top 53 bits give a uniform in (0, 1); normal i is Box-Muller's cosine branch on the
uniforms of words 2i and 2i + 1, in float64, rounded to float32.
"""

from __future__ import annotations

import math
import secrets

import numpy as np

from .checks import integer

GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
MAX_SEED = 2**64 - 1


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


def prior_latents(n: int, latent_dim: int, seed: object, temperature: float) -> np.ndarray:
    """Latents (n, latent_dim) float32: normals 0 .. n * latent_dim - 1 of `seed`, row by row, times
    float32(temperature) in float32."""
    z = standard_normal(seed_or_fresh(seed), 0, n * latent_dim).reshape(n, latent_dim)
    return z * np.float32(temperature)
