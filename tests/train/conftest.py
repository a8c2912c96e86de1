"""Tiny data and configs for the training tests: seconds each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vaekit.train import TrainConfig


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    """A small .npz of 8x8 uint8 images with blocky, learnable structure."""
    rng = np.random.default_rng(0)
    x = (rng.random((96, 8, 8)) < 0.2).astype(np.uint8) * 255
    x[:48, 2:6, 2:6] = 255
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x[:80], x_test=x[80:])
    return path


def tiny_config(out: Path, **overrides) -> TrainConfig:
    """A config that trains a minute model on the digits in a second or two."""
    values = dict(data="digits", out=str(out), model="mlp", hidden=[32], latent_dim=4, epochs=2,
                  batch_size=256, nll_k=8, nll_images=32, progress=False)
    values.update(overrides)
    return TrainConfig(**values)
