"""The bundle's conformance vectors (format: `vaekit.runtime.conformance`): a few held-out images and
latents with the float32 torch model's outputs, each output bounded by the limit its parity check met."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import torch

from vaekit.runtime.bundle import DECODER_OUTPUTS
from vaekit.runtime.conformance import RULE, vector_path
from vaekit.train.models import VAEModule

from .parity import LATENT_SEED

MAX_VECTORS = 8  # images (and twice as many latents) per bundle
VECTOR_BYTES = 1 << 20  # larger images store fewer vectors: at most about 1 MiB of float32 pixels per file


def vector_count(image_shape: tuple[int, int, int], available: int) -> int:
    """How many images to store: up to MAX_VECTORS, fewer when they are large, at least one."""
    per_image = 4 * math.prod(image_shape)
    return max(1, min(MAX_VECTORS, available, VECTOR_BYTES // per_image))


def npy_bytes(array: np.ndarray) -> bytes:
    """`array` as a little-endian float32 .npy file (format version 1.0, no pickle)."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array, dtype="<f4"), version=(1, 0), allow_pickle=False)
    return buffer.getvalue()


def conformance_vectors(model: VAEModule, heldout: np.ndarray, parity: dict[str, Any]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The vector files ({bundle path: .npy bytes}) and the manifest's `conformance` entry: the encoder on the
    first held-out images, the decoder on as many seeded N(0, I) latents and on those images' posterior means."""
    cfg = model.config
    images = heldout[: vector_count(cfg.image_shape, len(heldout))]
    noise = np.random.default_rng(LATENT_SEED).standard_normal((len(images), cfg.latent_dim), dtype=np.float32)
    with torch.no_grad():
        mean, logvar = model.encoder(torch.from_numpy(images))
        latents = torch.cat([torch.from_numpy(noise), mean])
        params = model.decoder.likelihood_params(latents)
    tensors = {
        "encoder": ({"image": images}, {"mean": mean, "logvar": logvar}),
        "decoder": ({"latent": latents}, {name: params[name] for name in DECODER_OUTPUTS[cfg.likelihood]}),
    }
    files: dict[str, bytes] = {}
    entry: dict[str, Any] = {"reference": parity["reference"], "rule": RULE}
    for graph, (inputs, outputs) in tensors.items():
        spec: dict[str, Any] = {"inputs": {}, "outputs": {}}
        for name, value in {**inputs, **outputs}.items():
            path = vector_path(graph, name)
            files[path] = npy_bytes(np.asarray(value))
            if name in inputs:
                spec["inputs"][name] = path
            else:
                spec["outputs"][name] = {"file": path, "limit": parity["limit"][f"{graph}.{name}"]}
        entry[graph] = spec
    return files, entry
