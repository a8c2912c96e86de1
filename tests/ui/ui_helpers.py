"""Shared helpers of the UI tests (a uniquely named module: test folders share sys.path).

Tests may import torch to build bundles; the app under test never does.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# The bundles of the UI tests, by the names the tests use (bundle_helpers.TINY): grayscale MLP (the digits
# layout) and a 64x64 RGB conv (sigma-VAE variance) with more latent dimensions than the Explore tab has sliders.
BUNDLES = {"gray": "mlp-bernoulli", "rgb": "conv-rgb64"}


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
