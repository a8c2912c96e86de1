"""The runtime on CUDA (onnxruntime-gpu and a GPU); skipped with a reason everywhere else."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from bundle_helpers import TinyBundle, random_images

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        "CUDAExecutionProvider" not in ort.get_available_providers(),
        reason="needs onnxruntime-gpu with CUDAExecutionProvider (pip install 'vaekit[gpu]') and an NVIDIA GPU",
    ),
]
ATOL = 1e-3  # GPU kernels (other reduction orders) differ slightly from CPU


def test_cuda_is_really_used(exported: TinyBundle) -> None:
    vae = exported.load(device="cuda")
    assert vae.device == "cuda" and vae.providers[0] == "CUDAExecutionProvider"
    assert exported.load(device="auto").device == "cuda"


def test_cuda_matches_cpu(exported: TinyBundle) -> None:
    gpu, cpu = exported.load(device="cuda", batch_size=4), exported.load(device="cpu", batch_size=4)
    x = random_images(gpu.image_shape, 9)
    z = np.random.default_rng(0).normal(size=(9, gpu.latent_dim)).astype(np.float32)
    for got, want in zip(gpu.encode(x), cpu.encode(x)):
        np.testing.assert_allclose(got, want, atol=ATOL)
    np.testing.assert_allclose(gpu.reconstruct(x), cpu.reconstruct(x), atol=ATOL)  # IO binding chains the graphs
    np.testing.assert_allclose(gpu.decode(z), cpu.decode(z), atol=ATOL)
    for key, value in gpu.decode_params(z).items():
        np.testing.assert_allclose(value, cpu.decode_params(z)[key], atol=ATOL)
    np.testing.assert_allclose(gpu.sample(5, seed=1), cpu.sample(5, seed=1), atol=ATOL)
    np.testing.assert_allclose(gpu.score(x, k=3), cpu.score(x, k=3), rtol=1e-4, atol=0.05)


def test_conformance_vectors_pass_on_cuda(exported: TinyBundle) -> None:
    """The bundle computes on the GPU what torch computed at export, within the same limits as on CPU."""
    result = exported.load(device="cuda").verify()
    assert result.checked and result.device == "cuda" and result.passed, result.summary()


def test_concurrent_cuda_decodes(exported: TinyBundle) -> None:
    vae = exported.load(device="cuda", batch_size=8)
    z = np.random.default_rng(0).normal(size=(6, 20, vae.latent_dim)).astype(np.float32)
    serial = [vae.decode(batch) for batch in z]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: vae.decode(z[i % 6]), range(24)))
    for i, images in enumerate(results):
        np.testing.assert_allclose(images, serial[i % 6], atol=1e-6)
