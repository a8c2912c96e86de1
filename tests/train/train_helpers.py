"""Shared helpers of the training tests (a uniquely named module: test folders share sys.path)."""

from __future__ import annotations

from pathlib import Path

import torch

from vaekit.train import TrainConfig, train
from vaekit.train.plan import Plan, Probe, make_plan


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


def weights(run: Path) -> dict[str, torch.Tensor]:
    """The model weights of a run's checkpoint."""
    return torch.load(run / "checkpoint.pt", weights_only=True)["model"]


def assert_same_weights(a: Path, b: Path) -> None:
    """The two runs' checkpoints hold the same weights, to the bit."""
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=0, msg=f"{key} differs")


def planned(config: TrainConfig, image_shape: tuple[int, int, int], n_train: int) -> Plan:
    """The plan for `config` (with --epochs or the recipe's: nothing to time) on data of this shape and size."""
    def untimed(draft: Plan) -> Probe:
        raise AssertionError("a plan without --max-time times no steps")

    return make_plan(config, image_shape, n_train, torch.device("cpu"), untimed)
