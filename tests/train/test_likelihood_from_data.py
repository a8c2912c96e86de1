"""Without --likelihood the planner picks it from the data: colour images get the Gaussian, grayscale ones keep
Bernoulli on dynamically binarized pixels; an explicit --likelihood always wins, and config.json says why."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
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
    assert plan.model.variance == ("analytic" if shape[1] >= 32 else "shared") and "recipe-notebook" in plan.why["variance"]


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


def test_analytic_variance_is_the_batch_error_while_training_and_its_running_mean_after() -> None:
    from vaekit.train.models import ANALYTIC_MOMENTUM, ModelConfig, build_model

    model = build_model(ModelConfig(kind="mlp", image_shape=(3, 8, 8), hidden=[16], likelihood="gaussian",
                                    variance="analytic"))
    assert "decoder.logvar" not in dict(model.named_parameters()) and "decoder.logvar" in model.state_dict()
    x = torch.rand(10, 3, 8, 8)
    params = model.decoder.likelihood_params(torch.randn(10, model.config.latent_dim))
    fitted = model.decoder.fit_variance(x, params)
    mse = float((x - params["image"]).detach().pow(2).mean())
    assert torch.allclose(fitted["logvar"], torch.full_like(x, math.log(mse)))
    assert float(model.decoder.logvar) == pytest.approx(ANALYTIC_MOMENTUM * math.log(mse), rel=1e-5)  # from 0
    model.eval()  # inference: the running value, whatever the images
    assert model.decoder.fit_variance(x, params) is params
