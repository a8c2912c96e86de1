"""Log-densities in nats (float64, summed per image) behind `VAE.score`: the decoder's likelihood,
the Gaussian posterior and prior, and a stable log-mean-exp for the importance-weighted bound."""

from __future__ import annotations

import math

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)
# The decoder outputs each likelihood needs, besides the images.
PARAMS = {"bernoulli": ["logits"], "gaussian": ["image", "logvar"]}


def log_likelihood(x: np.ndarray, params: dict[str, np.ndarray], likelihood: str) -> np.ndarray:
    """log p(x | z) per image, summed over the last three axes (C, H, W); x broadcasts to the params."""
    x = x.astype(np.float64)
    if likelihood == "bernoulli":
        logits = params["logits"].astype(np.float64)
        # x*log_sigmoid(l) + (1-x)*log_sigmoid(-l) == x*l - softplus(l), without overflow
        per_pixel = x * logits - np.logaddexp(0.0, logits)
    else:
        logvar = params["logvar"].astype(np.float64)
        per_pixel = -0.5 * (LOG_2PI + logvar + (x - params["image"]) ** 2 * np.exp(-logvar))
    return per_pixel.sum(axis=(-3, -2, -1))


def best_log_likelihood(x: np.ndarray, params: dict[str, np.ndarray], likelihood: str) -> np.ndarray:
    """log p(x | x): the likelihood of the image under a decoder whose mean is the image itself (with the
    params' variance, gaussian), summed per image; log p(x | z) minus it is how far the decoder is from perfect,
    free of the part every decoder pays for grey pixels."""
    x = x.astype(np.float64)
    if likelihood == "bernoulli":
        with np.errstate(divide="ignore", invalid="ignore"):
            per_pixel = np.where(x > 0, x * np.log(x), 0.0) + np.where(x < 1, (1 - x) * np.log1p(-x), 0.0)
    else:
        logvar = params["logvar"].astype(np.float64)
        per_pixel = np.broadcast_to(-0.5 * (LOG_2PI + logvar), np.broadcast_shapes(x.shape, logvar.shape))
    return per_pixel.sum(axis=(-3, -2, -1))


def log_standard_normal(z: np.ndarray) -> np.ndarray:
    """log N(z; 0, I), summed over the last axis."""
    z = z.astype(np.float64)
    return -0.5 * (LOG_2PI * z.shape[-1] + (z**2).sum(axis=-1))


def log_posterior(eps: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log q(z | x) at z = mean + exp(logvar / 2) * eps, summed over the last axis."""
    eps, logvar = eps.astype(np.float64), logvar.astype(np.float64)
    return -0.5 * (LOG_2PI * eps.shape[-1] + (logvar + eps**2).sum(axis=-1))


def kl_to_prior(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(q(z | x) || N(0, I)) in closed form, summed over the last axis."""
    mean, logvar = mean.astype(np.float64), logvar.astype(np.float64)
    return 0.5 * (np.exp(logvar) + mean**2 - 1.0 - logvar).sum(axis=-1)


def log_mean_exp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(mean(exp(a))) along `axis`, shifted by the maximum so nothing overflows."""
    top = np.max(a, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # all weights zero: the answer is -inf, not a warning
        return np.log(np.mean(np.exp(a - top), axis=axis)) + np.squeeze(top, axis=axis)
