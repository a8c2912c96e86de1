"""Shared helpers of the export tests (a uniquely named module: test folders share sys.path)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from vaekit.runtime.files import MARKER
from vaekit.train import TrainConfig, train

# One tiny run per model kind and likelihood; "rgb" runs train on a tiny RGB .npz instead of the digits.
RUNS: dict[str, dict[str, Any]] = {
    "mlp-bernoulli": {"model": "mlp"},
    "mlp-gaussian": {"model": "mlp", "likelihood": "gaussian"},
    "conv-bernoulli": {"model": "conv", "conv_channels": [4, 8]},
    "conv-gaussian": {"model": "conv", "likelihood": "gaussian", "conv_channels": [4, 8], "data": "rgb"},
}
# Bundles with reduced precision: every model in each precision (vaekit-check must pass for all of them).
REDUCED = {"float16": tuple(RUNS), "int8": tuple(RUNS)}
TOLERANCES = {"float32": 1e-4, "float16": 1e-2, "int8": 5e-2}  # what the issue states (the manifest must agree)
BATCH_SIZES = (1, 7, 64)
FILES = {"encoder.onnx", "decoder.onnx", "manifest.json", MARKER}  # MARKER: the folder is a bundle vaekit wrote


@dataclass
class Bundle:
    """An exported bundle, the run it came from and the precision it was exported in."""

    run_name: str
    precision: str
    run: Path
    path: Path

    @property
    def id(self) -> str:
        return f"{self.precision}-{self.run_name}"

    def manifest(self) -> dict:
        """The bundle's manifest.json as plain JSON (not through the runtime's reader)."""
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))


def write_rgb_npz(path: Path) -> Path:
    """A tiny .npz of 8x8 RGB uint8 images (x_train 48, x_test 16) with some structure to learn."""
    rng = np.random.default_rng(0)
    x = (rng.random((64, 8, 8, 3)) * 96).astype(np.uint8)
    x[::2, 2:6, 2:6, 0] = 255
    np.savez(path, x_train=x[:48], x_test=x[48:])
    return path


def train_tiny(name: str, out: Path, rgb_npz: Path) -> Path:
    """Train run `name` of RUNS for one epoch (a second or two) and return its folder."""
    values: dict[str, Any] = dict(data="digits", out=str(out), hidden=[16], latent_dim=3, epochs=1, batch_size=256,
                                  nll_k=4, nll_images=16, progress=False)
    values.update(RUNS[name])
    if values["data"] == "rgb":
        values["data"] = str(rgb_npz)
    return Path(train(TrainConfig(**values)).run)


def session(path: Path) -> ort.InferenceSession:
    """A plain onnxruntime CPU session (not vaekit.runtime) for one graph file."""
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def grow(images: np.ndarray, n: int) -> np.ndarray:
    """`n` images: `images` repeated as often as needed."""
    return np.ascontiguousarray(np.resize(images, (n, *images.shape[1:])), dtype=np.float32)


