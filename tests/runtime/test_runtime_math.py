"""Latent paths and the likelihood helpers, against direct formulas (no bundle needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vaekit.runtime.latents import as_latents, path
from vaekit.runtime.likelihood import (
    kl_to_prior,
    log_likelihood,
    log_mean_exp,
    log_posterior,
    log_standard_normal,
)


def test_lerp_and_slerp_paths() -> None:
    a, b = np.array([1.0, 0.0], np.float32), np.array([0.0, 2.0], np.float32)
    lerp = path(a, b, 5, "lerp")
    np.testing.assert_allclose(lerp[2], [0.5, 1.0])
    slerp = path(a, b, 3, "slerp")
    np.testing.assert_allclose(slerp[[0, -1]], [a, b], atol=1e-6)
    np.testing.assert_allclose(slerp[1], [math.sqrt(0.5), 2 * math.sqrt(0.5)], rtol=1e-6)  # 45 degrees
    np.testing.assert_allclose(path(a, 3 * a, 4, "slerp"), path(a, 3 * a, 4, "lerp"))  # parallel: falls back
    np.testing.assert_allclose(path(a, np.zeros(2, np.float32), 3, "slerp")[1], [0.5, 0.0])
    with pytest.raises(ValueError, match="slerp"):
        path(a, b, 3, "cubic")


def test_latents_are_checked() -> None:
    assert as_latents([1, 2, 3], 3).shape == (1, 3)
    for bad, match in [(np.zeros((2, 4)), r"\(3,\) or \(N, 3\)"), ([np.nan, 0, 0], "NaN"), ([], "empty"),
                       (np.zeros((1, 1, 3)), "shaped")]:
        with pytest.raises(ValueError, match=match):
            as_latents(bad, 3)


def test_bernoulli_log_likelihood_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    x, logits = rng.random((2, 1, 3, 3)), rng.normal(0, 3, (2, 1, 3, 3))
    p = 1 / (1 + np.exp(-logits))
    want = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(log_likelihood(x, {"logits": logits}, "bernoulli"), want, rtol=1e-10)
    huge = log_likelihood(np.ones((1, 1, 1, 1)), {"logits": np.full((1, 1, 1, 1), -1e4)}, "bernoulli")
    assert np.isfinite(huge).all() and huge[0] == pytest.approx(-1e4)


def test_gaussian_log_likelihood_matches_direct_formula() -> None:
    rng = np.random.default_rng(0)
    x, mean, logvar = rng.random((2, 3, 2, 2)), rng.random((2, 3, 2, 2)), rng.uniform(-3, 2, (2, 3, 2, 2))
    sd = np.exp(0.5 * logvar)
    want = (-((x - mean) ** 2) / (2 * sd**2) - np.log(sd * math.sqrt(2 * math.pi))).sum(axis=(1, 2, 3))
    got = log_likelihood(x, {"image": mean, "logvar": logvar}, "gaussian")
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_gaussian_densities_and_kl() -> None:
    rng = np.random.default_rng(0)
    mean, logvar, eps = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    z = mean + np.exp(0.5 * logvar) * eps
    sd = np.exp(0.5 * logvar)
    direct_q = (-((z - mean) ** 2) / (2 * sd**2) - np.log(sd) - 0.5 * math.log(2 * math.pi)).sum(-1)
    np.testing.assert_allclose(log_posterior(eps, logvar), direct_q, rtol=1e-10)
    np.testing.assert_allclose(log_standard_normal(z), (-(z**2) / 2 - 0.5 * math.log(2 * math.pi)).sum(-1))
    # KL = E_q[log q - log p], checked by Monte Carlo
    many = rng.normal(size=(200_000, 3))
    zs = mean[0] + sd[0] * many
    mc = np.mean(log_posterior(many, logvar[0]) - log_standard_normal(zs))
    assert kl_to_prior(mean, logvar)[0] == pytest.approx(mc, abs=0.02)


def test_log_mean_exp_is_stable() -> None:
    a = np.array([[1000.0, 1000.0], [-1000.0, -1001.0], [-np.inf, 0.0]])
    got = log_mean_exp(a, axis=1)
    np.testing.assert_allclose(got, [1000.0, -1000.0 + math.log((1 + math.exp(-1)) / 2), math.log(0.5)])
    assert log_mean_exp(np.array([[-np.inf, -np.inf]]), axis=1)[0] == -np.inf
