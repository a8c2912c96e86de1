"""A fresh model starts from its training images' mean: the encoder subtracts it, an mlp decoder's output bias starts at
its log-odds; the recipe turns centring on for the mlp family, and runs from before it resume as they were built."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from train_helpers import planned, tiny_config, trained

from vaekit.train import TrainConfig, train
from vaekit.train.data import load_data, pixel_means
from vaekit.train.models import ModelConfig, build_model
from vaekit.train.train_cli import config_from_args, parser


def test_pixel_means_are_exact_per_pixel() -> None:
    images = np.random.default_rng(0).integers(0, 256, (1000, 3, 2, 2), dtype=np.uint8)
    means = pixel_means(images)
    assert means.shape == (3, 2, 2) and means.dtype == np.float64
    np.testing.assert_allclose(means, images.astype(np.float64).mean(0) / 255, rtol=0, atol=1e-12)
    assert (pixel_means(np.full((70_000, 1, 1, 1), 255, np.uint8)) == 1.0).all()  # int64 sums: no overflow, no rounding


def test_a_fresh_mlp_starts_from_the_mean_image() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=2, hidden=[8], center_inputs=True))
    mean = torch.rand(1, 4, 4)
    mean[0, 0, :2] = torch.tensor([0.0, 1.0])  # pixels that are always off or on get a finite bias
    model.fit_to_data(mean, 99)
    torch.testing.assert_close(model.encoder.input_mean, mean)
    bias = model.decoder.body[0][-1].bias
    torch.testing.assert_close(bias, torch.logit((99 * mean + 0.5) / 100).flatten())
    assert torch.isfinite(bias).all() and bias[0] < -5 < 5 < bias[1]
    # the encoder is the uncentred one applied to x - mean
    x = torch.rand(5, 1, 4, 4)
    plain = build_model(ModelConfig(image_shape=(1, 4, 4), latent_dim=2, hidden=[8]))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if k != "encoder.input_mean"})
    for centred, expected in zip(model.encoder(x), plain.encoder(x - mean), strict=True):
        torch.testing.assert_close(centred, expected)


def test_a_conv_decoder_is_left_as_built() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="conv", image_shape=(1, 8, 8), latent_dim=2, hidden=[], conv_channels=[4]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.fit_to_data(torch.rand(1, 8, 8), 10)  # conv's last layer has one bias per channel, not per pixel
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_the_recipe_centres_mlp_inputs_only_and_says_why() -> None:
    mlp = planned(TrainConfig(epochs=2), (1, 28, 28), 1000)
    assert mlp.model.center_inputs is True and "mean image" in mlp.why["center_inputs"]
    conv = planned(TrainConfig(epochs=2), (3, 32, 32), 1000)
    assert conv.model.center_inputs is False and "mlp family only" in conv.why["center_inputs"]
    asked = planned(TrainConfig(epochs=2, center_inputs=False), (1, 28, 28), 1000)
    assert asked.model.center_inputs is False and "center_inputs" not in asked.why
    flag = lambda *argv: config_from_args(parser().parse_args(list(argv))).center_inputs  # noqa: E731
    assert (flag(), flag("--center-inputs"), flag("--no-center-inputs")) == (None, True, False)
    assert isinstance(parser()._option_string_actions["--center-inputs"], argparse.BooleanOptionalAction)


def test_a_run_saves_its_training_images_mean_and_resumes_with_it(tmp_path: Path) -> None:
    full = trained(tiny_config(tmp_path / "full", epochs=2))
    train(tiny_config(tmp_path / "part", epochs=2, max_time=1e-9))  # stopped at its first step
    saved = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert saved["model_config"]["center_inputs"] is True
    expected = torch.from_numpy(pixel_means(load_data("digits").train)).float()
    torch.testing.assert_close(saved["model"]["encoder.input_mean"], expected)
    train(TrainConfig(), resume=tmp_path / "part")  # the mean comes back with the weights: the same run as unbroken
    weights = [torch.load(run / "checkpoint.pt", weights_only=True)["model"] for run in (full, tmp_path / "part")]
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, rtol=0, atol=0)
