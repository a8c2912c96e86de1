"""Shared helpers of the runtime tests (a uniquely named module: test folders share sys.path)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.runtime import VAE
from vaekit.train.models import build_model

# One tiny model per kind, covering both likelihoods; images small enough for hundreds of calls.
CONFIGS: dict[str, dict[str, Any]] = {
    "mlp-bernoulli": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli",
                      "hidden": [16]},
    "conv-gaussian": {"kind": "conv", "image_shape": [3, 8, 8], "latent_dim": 4, "likelihood": "gaussian",
                      "hidden": [16], "conv_channels": [4, 8]},
}


@dataclass
class Exported:
    """A bundle on disk, the torch model it came from, and the held-out images given to export."""

    name: str
    path: Path
    model: torch.nn.Module
    heldout: np.ndarray

    def load(self, **kwargs: Any) -> VAE:
        return VAE.load(self.path, device=kwargs.pop("device", "cpu"), **kwargs)


def tiny_model(name: str) -> torch.nn.Module:
    """An untrained model with seeded weights; a Gaussian decoder gets a varied per-pixel logvar."""
    torch.manual_seed(0)
    model = build_model(CONFIGS[name]).eval()
    if model.decoder.logvar is not None:
        with torch.no_grad():
            model.decoder.logvar.uniform_(-2.0, 1.0)
    return model


def random_images(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    """`n` float32 images in [0, 1], shaped (n, *shape)."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def torch_encode(model: torch.nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch encoder's (mean, logvar) for numpy NCHW images in [0, 1]."""
    with torch.no_grad():
        mean, logvar = model.encoder(torch.from_numpy(images))
    return mean.numpy(), logvar.numpy()


def torch_params(model: torch.nn.Module, latents: np.ndarray) -> dict[str, np.ndarray]:
    """The torch decoder's likelihood parameters for numpy latents (N, D)."""
    with torch.no_grad():
        return {k: v.numpy() for k, v in model.decoder.likelihood_params(torch.from_numpy(latents)).items()}
