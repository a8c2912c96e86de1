"""Latent vectors: checking what callers pass, and paths between two latents (lerp, slerp)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import numeric_array
from .choices import METHODS
from .errors import InputError


def as_latents(latents: Any, latent_dim: int) -> np.ndarray:
    """(D,) or (N, D) real numbers as a float32 C-contiguous (N, D) batch; else a clear ValueError."""
    arr = numeric_array(latents, "latents")
    if arr.ndim not in (1, 2) or arr.shape[-1] != latent_dim:
        raise InputError(f"latents must be shaped ({latent_dim},) or (N, {latent_dim}) for this bundle, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("latents contain NaN or infinite values; pass finite numbers")
    return np.ascontiguousarray(arr.reshape(-1, latent_dim), dtype=np.float32)


def as_latent(latent: Any, latent_dim: int) -> np.ndarray:
    """Exactly one latent, (D,) or (1, D), as a float32 (D,) vector."""
    batch = as_latents(latent, latent_dim)
    if len(batch) != 1:
        raise InputError(f"expected one latent of size {latent_dim}, got a batch of {len(batch)}")
    return batch[0]


def as_values(values: Any, what: str = "values") -> np.ndarray:
    """A non-empty 1-D sequence of finite numbers as float32."""
    arr = numeric_array(values, what)
    if arr.ndim != 1:
        raise InputError(f"{what} must be a 1-D sequence of numbers, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{what} contain NaN or infinite values; pass finite numbers")
    return arr.astype(np.float32)


def path(a: np.ndarray, b: np.ndarray, steps: int, method: str) -> np.ndarray:
    """`steps` latents from `a` to `b`, both ends included: straight (lerp) or spherical (slerp, which
    falls back to lerp when a and b are parallel, opposite or zero)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    t = np.linspace(0.0, 1.0, steps)[:, None]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    lerp = (1.0 - t) * a64 + t * b64
    norms = np.linalg.norm(a64) * np.linalg.norm(b64)
    if method == "lerp" or norms == 0.0:
        return lerp.astype(np.float32)
    omega = np.arccos(np.clip(a64 @ b64 / norms, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return lerp.astype(np.float32)
    weights_a, weights_b = np.sin((1.0 - t) * omega), np.sin(t * omega)
    return ((weights_a * a64 + weights_b * b64) / np.sin(omega)).astype(np.float32)
