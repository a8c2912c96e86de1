"""The JavaScript twin of the anomaly scores (runtime/js/scores.mjs, complexity.mjs) under `node --test`: the
code length equal to the bit and every score equal to the Python runtime's, for the same images and seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from bundle_helpers import TinyBundles
from test_js_runtime import REPO, node_test

from vaekit.runtime import VAE
from vaekit.runtime.complexity import code_length
from vaekit.runtime.scores import SCORES

NODE_TESTS = REPO / "tests" / "js" / "scores.test.mjs"
BUNDLES = ("mlp-bernoulli", "conv-gaussian", "mlp-mixture")  # both likelihoods, colour, a mixture prior
SEED = 5


def code_length_cases() -> list[dict]:
    """Float32 images in [0, 1] of several sizes and kinds (noise, flat, smooth, edges, odd levels) with their
    code lengths in bits as the Python runtime computes them."""
    rng = np.random.default_rng(3)
    images = [rng.random((1, 28, 28)), np.zeros((1, 28, 28)), np.ones((3, 64, 64)),
              np.linspace(0, 1, 3 * 16 * 16).reshape(3, 16, 16),
              (rng.random((3, 64, 64)) > 0.7).astype(float), rng.integers(0, 256, (3, 9, 7)) / 255.0,
              np.clip(np.add.outer(np.arange(28), np.arange(28)) * 4.7 / 255, 0, 1)[None]]
    cases = []
    for image in images:
        x = image.astype(np.float32)
        cases.append({"dims": list(x.shape), "data": x.ravel().tolist(), "bits": int(code_length(x[None])[0])})
    return cases


def expectations(bundle: Path) -> dict:
    """Every score of a few uint8 images on `bundle`, as the Python runtime computes them."""
    vae = VAE.load(bundle, device="cpu")
    images = np.random.default_rng(9).integers(0, 256, (7, *vae.image_shape), dtype=np.uint8)
    scores = vae.normalities(images, SCORES, k=1, seed=SEED)
    return {"images": images.ravel().tolist(), "dims": list(images.shape),
            "scores": {name: values.tolist() for name, values in scores.items()}}


def test_node_twin_computes_the_python_scores(tiny_bundles: TinyBundles, tmp_path: Path) -> None:
    expected = {"seed": SEED, "code_lengths": code_length_cases(), "bundles": {}}
    for name in BUNDLES:
        shutil.copytree(tiny_bundles[name].path, tmp_path / name)
        expected["bundles"][name] = expectations(tmp_path / name)
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    done = node_test({"VAEKIT_JS_SCORES": str(tmp_path)}, NODE_TESTS)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "fail 0" in done.stdout and all(name in done.stdout for name in BUNDLES)


def test_node_score_unit_tests_pass_without_bundles() -> None:
    done = node_test({"VAEKIT_JS_SCORES": ""}, NODE_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pass 2" in done.stdout and "VAEKIT_JS_SCORES is not set" in done.stdout
