"""Shared helpers of the training tests (a uniquely named module: test folders share sys.path)."""

from __future__ import annotations

from pathlib import Path

from vaekit.train import TrainConfig, train


def tiny_config(out: Path, **overrides) -> TrainConfig:
    """A config that trains a minute model on the digits in a second or two; in float32 on every CPU (auto would
    pick bfloat16 on CPUs with native bf16), so that its exact comparisons mean the same everywhere."""
    values = dict(data="digits", out=str(out), model="mlp", hidden=[32], latent_dim=4, epochs=2,
                  batch_size=256, nll_k=8, nll_images=32, progress=False, precision="float32")
    values.update(overrides)
    return TrainConfig(**values)


def trained(config: TrainConfig, **kwargs) -> Path:
    """Train as `train` does and return the run folder."""
    return Path(train(config, **kwargs).run)
