"""Tiny data and configs for the training tests: seconds each."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    """A small .npz of 8x8 uint8 images with blocky, learnable structure."""
    rng = np.random.default_rng(0)
    x = (rng.random((96, 8, 8)) < 0.2).astype(np.uint8) * 255
    x[:48, 2:6, 2:6] = 255
    path = tmp_path / "tiny.npz"
    np.savez(path, x_train=x[:80], x_test=x[80:])
    return path
