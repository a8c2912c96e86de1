"""Without --likelihood the planner picks it from the data: colour images get the Gaussian, grayscale ones keep
Bernoulli on dynamically binarized pixels; an explicit --likelihood always wins, and config.json says why."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from train_helpers import planned, tiny_config, trained

from vaekit.train import TrainConfig
from vaekit.train.errors import ConfigError
from vaekit.train.train_cli import config_from_args, parser


def _photo_folder(path: Path, n: int = 12) -> Path:
    """A folder of `n` small colour PNGs with smooth gradients, like photos."""
    path.mkdir()
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 8)[None, :, None]
    for i in range(n):
        image = (255 * ramp * rng.random(3) + rng.integers(0, 40, (8, 8, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(path / f"{i}.png")
    return path


def test_a_colour_folder_trains_a_gaussian_with_no_flag_and_says_why(tmp_path: Path) -> None:
    folder = _photo_folder(tmp_path / "photos")
    asked = config_from_args(parser().parse_args(["--data", str(folder)]))
    assert asked.likelihood is None
    run = trained(tiny_config(tmp_path / "run", data=str(folder), likelihood=asked.likelihood, epochs=1,
                              test_fraction=0.25))
    saved = json.loads((run / "config.json").read_text())
    assert saved["model"]["likelihood"] == "gaussian" and saved["model"]["variance"] == "shared"
    assert saved["train"]["binarize"] == "none"
    assert saved["why"]["likelihood"].startswith("gaussian: colour images")
    assert "recipe-notebook" in saved["why"]["likelihood"] and "\n" not in saved["why"]["likelihood"]


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 64, 64)], ids=["mlp", "conv"])
def test_colour_arrays_get_the_gaussian(shape: tuple[int, int, int]) -> None:
    plan = planned(TrainConfig(epochs=2), shape, 1000)
    assert plan.model.likelihood == "gaussian" and plan.binarize == "none" and plan.iwae_k == 1
    assert plan.model.variance == "shared" and "recipe-notebook" in plan.why["variance"]


def test_grayscale_keeps_bernoulli_on_binarized_pixels() -> None:
    plan = planned(TrainConfig(epochs=2), (1, 28, 28), 1000)
    assert plan.model.likelihood == "bernoulli" and plan.binarize == "dynamic"
    assert "Fashion-MNIST" in plan.why["likelihood"] and "binarized" in plan.why["likelihood"]
    assert plan.iwae_k > 1  # the 28x28 Bernoulli recipe's late bound still applies
    assert "variance" not in plan.why  # the Gaussian's alone


@pytest.mark.parametrize("flags", [["--likelihood", "bernoulli"], ["--binarize", "dynamic"]])
def test_bernoulli_asked_for_on_colour_is_kept(flags: list[str]) -> None:
    asked = config_from_args(parser().parse_args(["--epochs", "2", *flags]))
    plan = planned(asked, (3, 32, 32), 1000)
    assert plan.model.likelihood == "bernoulli" and plan.binarize == "dynamic"
    assert ("likelihood" in plan.why) == ("--binarize" in flags)  # a chosen value says why, an asked one needs not


def test_gaussian_asked_for_on_grayscale_is_kept() -> None:
    plan = planned(TrainConfig(epochs=2, likelihood="gaussian"), (1, 28, 28), 1000)
    assert plan.model.likelihood == "gaussian" and plan.binarize == "none" and "likelihood" not in plan.why


def test_binarizing_a_gaussian_is_still_refused() -> None:
    with pytest.raises(ConfigError, match="--binarize dynamic needs --likelihood bernoulli"):
        planned(TrainConfig(epochs=2, likelihood="gaussian", binarize="dynamic"), (3, 32, 32), 1000)
