"""Every VAE method on exported bundles, compared with the torch model on the same inputs."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from bundle_helpers import TinyBundle, random_images, spec_log_prior
from runtime_helpers import torch_encode, torch_params

from vaekit.runtime import VAE
from vaekit.runtime.prior import standard_normal, uniforms
from vaekit.runtime.sessions import Graph

ATOL = 1e-4


def torch_softmax(logits: Any) -> np.ndarray:
    """A mixture prior's weights in float64, as export writes them."""
    import torch

    return torch.softmax(logits.detach().double(), 0).numpy()


def test_attributes(vae: VAE, exported: TinyBundle) -> None:
    cfg = exported.model.config
    assert vae.latent_dim == cfg.latent_dim and vae.image_shape == cfg.image_shape
    assert vae.likelihood == cfg.likelihood and vae.manifest.format_version == (2 if cfg.prior_components else 1)
    assert (vae.prior is None) == (cfg.prior_components == 0)
    assert vae.device == "cpu" and vae.providers == ["CPUExecutionProvider"]
    assert cfg.likelihood in repr(vae)


def test_encode_decode_reconstruct_match_torch(vae: VAE, exported: TinyBundle) -> None:
    x = random_images(vae.image_shape, 12)  # 12 > batch_size 5: three chunks
    mean, logvar = vae.encode(x)
    t_mean, t_logvar = torch_encode(exported.model, x)
    np.testing.assert_allclose(mean, t_mean, atol=ATOL)
    np.testing.assert_allclose(logvar, t_logvar, atol=ATOL)
    z = np.random.default_rng(3).normal(size=(12, vae.latent_dim)).astype(np.float32)
    want = torch_params(exported.model, z)
    np.testing.assert_allclose(vae.decode(z), want["image"], atol=ATOL)
    params = vae.decode_params(z)
    assert sorted(params) == sorted(want)
    for name in want:
        np.testing.assert_allclose(params[name], want[name], atol=ATOL)
    np.testing.assert_allclose(vae.reconstruct(x), torch_params(exported.model, t_mean)["image"], atol=ATOL)


def test_single_inputs_give_batches_of_one(vae: VAE) -> None:
    x = random_images(vae.image_shape, 1)
    assert vae.encode(x[0])[0].shape == (1, vae.latent_dim)
    assert vae.decode(np.zeros(vae.latent_dim)).shape == (1, *vae.image_shape)
    assert vae.reconstruct((x[0] * 255).astype(np.uint8).transpose(1, 2, 0)).shape == (1, *vae.image_shape)


def test_sample_is_seeded_and_matches_torch(vae: VAE, exported: TinyBundle) -> None:
    images = vae.sample(7, seed=11, temperature=0.5)
    np.testing.assert_array_equal(images, vae.sample(7, seed=11, temperature=0.5))
    assert not np.array_equal(images, vae.sample(7, seed=12, temperature=0.5))
    z = standard_normal(11, 0, 7 * vae.latent_dim).reshape(7, vae.latent_dim) * np.float32(0.5)
    prior = exported.model.prior
    if prior is not None:  # each sample's component from the uniform of word 2**63 + i, then its mean and spread
        component = np.searchsorted(np.cumsum(torch_softmax(prior.logits)), uniforms(11, 2**63, 7), side="right")
        means, logvars = prior.means.detach().numpy(), prior.logvars.detach().numpy().astype(np.float64)
        z = means[component] + np.exp(logvars / 2).astype(np.float32)[component] * z
    np.testing.assert_array_equal(vae.prior_latents(7, seed=11, temperature=0.5), z)
    np.testing.assert_allclose(images, torch_params(exported.model, z)["image"], atol=ATOL)
    assert images.dtype == np.float32 and 0.0 <= images.min() and images.max() <= 1.0
    zero = vae.sample(3, seed=1, temperature=0)  # the standard normal's centre, or each sample's component mean
    centres = vae.prior_latents(3, seed=1, temperature=0)
    np.testing.assert_allclose(zero, vae.decode(centres), atol=1e-6)
    if prior is None:
        assert not centres.any()
    assert vae.sample(2).shape == (2, *vae.image_shape)  # seed=None: fresh entropy


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    omega = math.acos(float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))))
    return (math.sin((1 - t) * omega) * a + math.sin(t * omega) * b) / math.sin(omega)


def test_interpolate_between_latents_and_images(vae: VAE, exported: TinyBundle) -> None:
    a, b = np.random.default_rng(0).normal(size=(2, vae.latent_dim)).astype(np.float32)
    ts = np.linspace(0, 1, 6)
    for method, expected in [("lerp", [(1 - t) * a + t * b for t in ts]), ("slerp", [_slerp(a, b, t) for t in ts])]:
        want = torch_params(exported.model, np.array(expected, np.float32))["image"]
        np.testing.assert_allclose(vae.interpolate(a, b, steps=6, method=method), want, atol=ATOL)
    x = random_images(vae.image_shape, 2)
    means, _ = torch_encode(exported.model, x)
    strip = vae.interpolate(x[0], x[1], steps=3, method="lerp")
    want = torch_params(exported.model, np.array([means[0], means.mean(0), means[1]], np.float32))["image"]
    np.testing.assert_allclose(strip, want, atol=ATOL)
    mixed = vae.interpolate(x[0], b, steps=2)
    np.testing.assert_allclose(mixed[1], vae.decode(b)[0], atol=1e-6)


def test_traverse(vae: VAE, exported: TinyBundle) -> None:
    z = np.random.default_rng(0).normal(size=vae.latent_dim).astype(np.float32)
    values = [-2.0, 0.0, 3.0]
    grid = np.repeat(z[None], 3, axis=0)
    grid[:, 1] = values
    np.testing.assert_allclose(vae.traverse(z, 1, values), torch_params(exported.model, grid)["image"], atol=ATOL)
    with pytest.raises(ValueError, match="below latent_dim"):
        vae.traverse(z, vae.latent_dim, values)


def _numpy_score(exported: TinyBundle, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The score computed independently: torch for the networks, plain numpy formulas for the densities."""
    n, d = len(x), exported.model.config.latent_dim
    mean, logvar = torch_encode(exported.model, x)
    sd = np.exp(0.5 * logvar)
    eps = standard_normal(seed, 0, n * k * d).reshape(n, k, d)
    z = mean[:, None] + sd[:, None] * eps
    params = {key: v.astype(np.float64).reshape(n, k, *x.shape[1:])
              for key, v in torch_params(exported.model, z.reshape(n * k, d)).items()}
    xs = x[:, None].astype(np.float64)
    if "logits" in params:
        p = 1.0 / (1.0 + np.exp(-params["logits"]))
        log_px = (xs * np.log(p) + (1 - xs) * np.log1p(-p)).sum(axis=(2, 3, 4))
    else:
        s = np.exp(0.5 * params["logvar"])
        log_px = (-0.5 * ((xs - params["image"]) / s) ** 2 - np.log(s * math.sqrt(2 * math.pi))).sum(axis=(2, 3, 4))
    prior = exported.model.prior
    if k == 1 and prior is None:
        kl = 0.5 * (sd.astype(np.float64) ** 2 + mean.astype(np.float64) ** 2 - 1 - logvar).sum(-1)
        return log_px[:, 0] - kl
    z64, m64, s64 = z.astype(np.float64), mean[:, None].astype(np.float64), sd[:, None].astype(np.float64)
    if prior is None:
        log_pz = (-0.5 * z64**2 - 0.5 * math.log(2 * math.pi)).sum(-1)
    else:
        log_pz = spec_log_prior(exported.load().manifest.prior, z64)
    log_qz = (-0.5 * ((z64 - m64) / s64) ** 2 - np.log(s64) - 0.5 * math.log(2 * math.pi)).sum(-1)
    return np.logaddexp.reduce(log_px + log_pz - log_qz, axis=1) - math.log(k)


@pytest.mark.parametrize("k", [1, 7])
def test_score_matches_independent_numpy(vae: VAE, exported: TinyBundle, k: int) -> None:
    x = random_images(vae.image_shape, 6, seed=2)
    got = vae.score(x, k=k, seed=4)
    assert got.shape == (6,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _numpy_score(exported, x, k, seed=4), rtol=1e-5, atol=1e-3)


def test_score_is_seeded_and_independent_of_batch_size(exported: TinyBundle) -> None:
    x = random_images(tuple(exported.model.config.image_shape), 5, seed=3)
    small, big = exported.load(batch_size=2), exported.load(batch_size=256)
    for k in (1, 3, 7):  # k=7 > batch_size=2: one image's samples span several decoder calls
        np.testing.assert_allclose(small.score(x, k=k, seed=9), big.score(x, k=k, seed=9), rtol=1e-6)
    assert not np.allclose(big.score(x, k=3, seed=9), big.score(x, k=3, seed=10))


def test_score_bounds_are_sensible(vae: VAE) -> None:
    x = random_images(vae.image_shape, 16, seed=5)
    elbo = np.mean([vae.score(x, k=1, seed=s) for s in range(4)], axis=0)
    iwae = vae.score(x, k=64, seed=0)
    assert np.isfinite(elbo).all() and np.isfinite(iwae).all()
    assert iwae.mean() >= elbo.mean()
    if vae.likelihood == "bernoulli":
        assert iwae.max() <= 0.0  # a probability of at most 1 per pixel


def test_manifest_quantiles_come_from_score(exported: TinyBundle) -> None:
    """Export records quantiles of `score` on the held-out images: the runtime reproduces them."""
    vae = exported.load()
    recorded = vae.manifest.score_quantiles
    assert recorded is not None
    levels = sorted(recorded.q, key=float)
    assert recorded.n == len(exported.heldout) and levels
    scores = vae.score(exported.heldout[: recorded.n], k=recorded.k, seed=recorded.seed)
    want = np.quantile(scores, [float(level) for level in levels])
    np.testing.assert_allclose([recorded.q[level] for level in levels], want, rtol=1e-6)


def test_concurrent_calls_match_serial_ones(exported: TinyBundle) -> None:
    vae = exported.load(batch_size=4, intra_op_threads=1)
    z = np.random.default_rng(0).normal(size=(8, 10, vae.latent_dim)).astype(np.float32)
    x = random_images(vae.image_shape, 6)
    serial = [vae.decode(batch) for batch in z]
    serial_scores = vae.score(x, k=3, seed=1)

    def work(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return vae.decode(z[i % 8]), vae.score(x, k=3, seed=1), vae.reconstruct(x)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(32)))
    for i, (images, scores, recon) in enumerate(results):
        np.testing.assert_allclose(images, serial[i % 8], atol=1e-6)
        np.testing.assert_allclose(scores, serial_scores, rtol=1e-6)
        assert recon.shape == x.shape


def test_bad_pixels_in_a_later_chunk_are_caught(vae: VAE) -> None:
    x = random_images(vae.image_shape, 12)  # batch_size is 5: the bad image is in the third chunk
    x[11, 0, 0, 0] = np.nan
    for call in (vae.encode, vae.reconstruct, vae.score):
        with pytest.raises(ValueError, match="NaN"):
            call(x)
    x[11, 0, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        vae.encode(x)


def test_io_binding_path_matches_plain_runs(exported: TinyBundle) -> None:
    """The per-call IO binding used on CUDA, exercised here with CPU buffers so it runs everywhere."""
    plain = exported.load(batch_size=4)
    graphs = [Graph(ort.InferenceSession(str(plain.path / name), providers=["CPUExecutionProvider"]), "cpu")
              for name in ("encoder.onnx", "decoder.onnx")]
    bound = VAE(plain.path, plain.manifest, *graphs, device="cpu", batch_size=4)
    x = random_images(plain.image_shape, 9)
    np.testing.assert_array_equal(bound.reconstruct(x), plain.reconstruct(x))
    np.testing.assert_array_equal(bound.score(x, k=3), plain.score(x, k=3))
    for got, want in zip(bound.encode(x), plain.encode(x)):
        np.testing.assert_array_equal(got, want)


def test_default_batch_comes_from_a_byte_budget_and_the_image_size(exported: TinyBundle) -> None:
    from vaekit.runtime.chunks import DEFAULT_BUDGET_BYTES, RUNTIME_BYTES_PER_PIXEL, runtime_batch_size

    vae = exported.load()
    _, h, w = vae.image_shape
    assert vae.batch_size == runtime_batch_size(vae.image_shape)
    assert vae.batch_size * h * w * RUNTIME_BYTES_PER_PIXEL <= DEFAULT_BUDGET_BYTES
    assert exported.load(batch_size=3).batch_size == 3  # an explicit batch still wins
