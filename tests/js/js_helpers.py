"""Shared helpers of the JavaScript runtime tests (a uniquely named module: test folders share sys.path):
tiny untrained bundles of every kind, and what the Python runtime computes on them, for `node --test`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bundle_helpers import varied

from vaekit.runtime import VAE
from vaekit.runtime.scores import image_colours
from vaekit.train.models import build_model

# Every model kind, likelihood and prior, tiny; colour for conv-gaussian so RGB goes through every path.
CONFIGS: dict[str, dict[str, Any]] = {
    "mlp-bernoulli": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16]},
    "mlp-gaussian": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "gaussian", "hidden": [16]},
    "conv-bernoulli": {"kind": "conv", "image_shape": [1, 8, 8], "latent_dim": 4, "likelihood": "bernoulli",
                       "hidden": [16], "conv_channels": [4, 8]},
    "conv-gaussian": {"kind": "conv", "image_shape": [3, 8, 8], "latent_dim": 4, "likelihood": "gaussian",
                      "hidden": [16], "conv_channels": [4, 8]},
    "mlp-mixture": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16],
                    "prior_components": 4},  # a learned mixture prior: format version 2
}
PRECISIONS = {"float32": {}, "float16": {"dtype": "float16"}, "int8": {"quantize": "int8"}}
SEED, N_SAMPLES, TEMPERATURE = 3, 16, 0.8
SCORE_KS = (1, 5)
EXPECTED_FILE = "expected.json"


def export_bundle(name: str, precision: str, out: Path) -> Path:
    """A seeded untrained model of CONFIGS[name] exported in `precision` to `out`."""
    from vaekit.export import export_model

    torch.manual_seed(0)
    model = varied(build_model(CONFIGS[name]).eval())
    heldout = np.random.default_rng(1).random((16, *CONFIGS[name]["image_shape"]), dtype=np.float32)
    colours = image_colours(np.random.default_rng(2).random((40, *CONFIGS[name]["image_shape"]), dtype=np.float32))
    provenance = {"data": "random test images", "epochs": 0, "metrics": {}}
    return Path(export_model(model, out, heldout=heldout, provenance=provenance, colours=colours,
                             **PRECISIONS[precision]))


def expectations(bundle: Path) -> dict[str, Any]:
    """What the Python runtime computes on `bundle`, as JSON-ready lists, for the JavaScript runtime to match."""
    vae = VAE.load(bundle, device="cpu")
    images = np.load(bundle / vae.manifest.conformance.encoder.inputs["image"])
    a, b = vae.prior_latents(2, seed=SEED)
    return {
        "prior_latents": vae.prior_latents(N_SAMPLES, seed=SEED, temperature=TEMPERATURE).tolist(),
        "sample": vae.sample(N_SAMPLES, seed=SEED, temperature=TEMPERATURE).ravel().tolist(),
        "slerp": vae.interpolate(a, b, steps=5, method="slerp").ravel().tolist(),
        "lerp": vae.interpolate(a, b, steps=5, method="lerp").ravel().tolist(),
        "traverse": vae.traverse(a, 1, [-2.0, 0.0, 2.0]).ravel().tolist(),
        "scores": {str(k): vae.score(images, k=k, seed=SEED).tolist() for k in SCORE_KS},
    }


def write_bundles(root: Path) -> list[str]:
    """Every kind of bundle exported under `root` (float32, float16, int8 x CONFIGS), and root/expected.json
    mapping each bundle's folder name to `expectations`; returns the folder names."""
    names = [f"{precision}-{name}" for precision in PRECISIONS for name in CONFIGS]
    expected = {}
    for folder in names:
        precision, name = folder.split("-", 1)
        expected[folder] = expectations(export_bundle(name, precision, root / folder))
    (root / EXPECTED_FILE).write_text(json.dumps({"seed": SEED, "n": N_SAMPLES, "temperature": TEMPERATURE,
                                                  "score_ks": SCORE_KS, "bundles": expected}))
    return names
