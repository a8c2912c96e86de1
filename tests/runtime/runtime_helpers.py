"""Shared helpers of the runtime tests (a uniquely named module: test folders share sys.path): what the torch
model behind a tiny bundle computes, for the runtime to match."""

from __future__ import annotations

import numpy as np
import torch


def torch_encode(model: torch.nn.Module, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The torch encoder's (mean, logvar) for numpy NCHW images in [0, 1]."""
    with torch.no_grad():
        mean, logvar = model.encoder(torch.from_numpy(images))
    return mean.numpy(), logvar.numpy()


def torch_params(model: torch.nn.Module, latents: np.ndarray) -> dict[str, np.ndarray]:
    """The torch decoder's likelihood parameters for numpy latents (N, D)."""
    with torch.no_grad():
        return {k: v.numpy() for k, v in model.decoder.likelihood_params(torch.from_numpy(latents)).items()}
