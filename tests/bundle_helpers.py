"""Helpers for tests of every stage that use tiny bundles, change them on purpose, or make writing them fail
(tests/ is on pytest's pythonpath). The tiny bundles themselves come from the `tiny_bundles` fixture
(tests/conftest.py), each exported once per session, on first use."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vaekit.runtime import VAE
from vaekit.runtime.bundle import sha256_file
from vaekit.runtime.manifest import Prior

# Tiny untrained models, small enough for hundreds of calls. The runtime suite covers both likelihoods and kinds
# (mlp-bernoulli, conv-gaussian with a variance per pixel) and the recipe's learned mixture prior and centred inputs
# (mlp-mixture); the UI suite uses mlp-bernoulli (the digits layout)
# and a 64x64 RGB conv (sigma-VAE variance) with more latent dimensions than the Explore tab has sliders.
TINY: dict[str, dict[str, Any]] = {
    "mlp-bernoulli": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16]},
    "conv-gaussian": {"kind": "conv", "image_shape": [3, 8, 8], "latent_dim": 4, "likelihood": "gaussian",
                      "hidden": [16], "conv_channels": [4, 8]},
    "mlp-mixture": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16],
                    "prior_components": 4, "center_inputs": True},
    "conv-rgb64": {"kind": "conv", "image_shape": [3, 64, 64], "latent_dim": 12, "likelihood": "gaussian", "hidden": [],
                   "conv_channels": [4, 4, 8, 8], "variance": "shared"},
}
N_HELDOUT = 32  # held-out images given to export (the Explore axes and the reference scores come from them)
PROVENANCE = {"data": "random test images", "epochs": 1, "steps": 3, "metrics": {"test_elbo": -40.5},
              "test_nll": 39.25, "test_nll_k": 10, "test_nll_images": N_HELDOUT, "test_bits_per_dim": 0.125}


@dataclass
class TinyBundle:
    """A bundle on disk, the torch model it came from, and the held-out images given to export."""

    name: str
    path: Path
    model: Any  # a torch.nn.Module (torch is imported only where a bundle is made)
    heldout: np.ndarray

    def load(self, **kwargs: Any) -> VAE:
        return VAE.load(self.path, device=kwargs.pop("device", "cpu"), **kwargs)


def spec_log_prior(prior: Prior | None, z: np.ndarray) -> np.ndarray:
    """log p(z) of latents (..., D) under a manifest's mixture prior, as docs/bundle-format.md ("The prior") states it,
    with plain numpy: the log of the weighted sum of the components' densities, each a product of 1-d normals."""
    assert prior is not None
    means, sds = np.array(prior.means), np.exp(0.5 * np.array(prior.logvars))
    density = np.exp(-0.5 * ((z.astype(np.float64)[..., None, :] - means) / sds) ** 2) / (sds * np.sqrt(2 * np.pi))
    return np.log((np.array(prior.weights) * density.prod(-1)).sum(-1))


def random_images(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    """`n` float32 images in [0, 1], shaped (n, *shape)."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def tiny_model(name: str) -> Any:
    """The untrained model TINY[name] with seeded weights, `varied`."""
    import torch

    from vaekit.train.models import build_model

    torch.manual_seed(0)
    return varied(build_model(TINY[name]).eval())


def varied(model: Any) -> Any:
    """`model` with the parameters that start uniform made varied, so tests can tell their entries apart: a Gaussian
    decoder's logvar, a mixture prior's weights and spreads, and the mean image a centred encoder subtracts."""
    import torch

    with torch.no_grad():
        if model.encoder.input_mean is not None:
            model.encoder.input_mean.uniform_(0.0, 1.0)
        if model.decoder.logvar is not None:
            model.decoder.logvar.uniform_(-2.0, 1.0)
        if model.prior is not None:
            model.prior.logits.uniform_(-1.5, 1.5)
            model.prior.logvars.uniform_(-2.0, 0.5)
    return model


def export_tiny(name: str, out: Path) -> TinyBundle:
    """`tiny_model(name)` exported to out/name."""
    from vaekit.export import export_model
    from vaekit.runtime.scores import image_colours

    model = tiny_model(name)
    heldout = random_images(tuple(TINY[name]["image_shape"]), N_HELDOUT, seed=1)
    colours = image_colours(random_images(tuple(TINY[name]["image_shape"]), 40, seed=2))  # as of training images
    path = export_model(model, out / name, heldout=heldout, provenance=PROVENANCE, colours=colours)
    return TinyBundle(name, Path(path), model, heldout)


class TinyBundles:
    """The bundles of TINY under `root`, each exported on first use (export is the slow part)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: dict[str, TinyBundle] = {}

    def __getitem__(self, name: str) -> TinyBundle:
        if name not in self.made:
            self.made[name] = export_tiny(name, self.root)
        return self.made[name]


def repin(bundle: Path, *names: str) -> None:
    """Record the current sha256 of the bundle files `names` in its manifest, as someone who changed them on
    purpose would, so that only checks other than the checksums can catch the change."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for name in names:
        manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    path.write_text(json.dumps(manifest))


def fail_the_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second `os.rename` fail with a full disk: the one that moves a staged folder in, once the folder
    it replaces has been renamed aside (see runtime/files.py `staged_folder`)."""
    real_rename, calls = os.rename, []

    def rename(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
