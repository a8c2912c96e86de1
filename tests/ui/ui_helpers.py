"""Shared helpers of the UI tests (a uniquely named module: test folders share sys.path).

Tests may import torch to build bundles; the app under test never does.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Two tiny untrained models: grayscale MLP (the digits layout) and a 64x64 RGB conv (sigma-VAE variance)
# with more latent dimensions than the Explore tab has sliders.
CONFIGS: dict[str, dict[str, Any]] = {
    "gray": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16]},
    "rgb": {"kind": "conv", "image_shape": [3, 64, 64], "latent_dim": 12, "likelihood": "gaussian", "hidden": [],
            "conv_channels": [4, 4, 8, 8], "variance": "shared"},
}
N_HELDOUT = 32


def export_tiny(name: str, out: Path) -> Path:
    """Export the untrained model `name` of CONFIGS (seeded weights) to a bundle under `out`."""
    import torch

    from vaekit.export import export_model
    from vaekit.train.models import build_model

    torch.manual_seed(0)
    model = build_model(CONFIGS[name]).eval()
    heldout = np.random.default_rng(1).random((N_HELDOUT, *CONFIGS[name]["image_shape"]), dtype=np.float32)
    provenance = {"data": f"random {name} test images", "epochs": 1, "steps": 3, "metrics": {"test_elbo": -40.5},
                  "test_nll": 39.25, "test_nll_k": 10, "test_nll_images": N_HELDOUT, "test_bits_per_dim": 0.125}
    return export_model(model, out / name, heldout=heldout, provenance=provenance)


def write_image(path: Path, size: tuple[int, int] = (24, 32), mode: str = "L", seed: int = 0) -> Path:
    """A random picture of `size` (width, height) saved at `path` (format from its suffix)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pixels(image: Any) -> np.ndarray:
    """An image (Pillow object or file path) as a numpy array."""
    if isinstance(image, (str, Path)):
        with Image.open(image) as picture:
            return np.asarray(picture.convert("RGB") if picture.mode not in ("L", "RGB") else picture)
    return np.asarray(image)
