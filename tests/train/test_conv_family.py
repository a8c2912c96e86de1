"""The conv family at several sizes: it trains, exports with parity, loads in the runtime and scores;
its sizes follow the image, a size that does not fit is a clear error, and memory is planned in bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import planned, tiny_config

from vaekit.runtime import VAE
from vaekit.runtime.chunks import DEFAULT_BUDGET_BYTES, items_per_chunk, runtime_batch_size
from vaekit.train import load_run, train
from vaekit.train.config import TrainConfig
from vaekit.train.models import ModelConfig, build_model
from vaekit.train.objectives import EVAL_BUDGET_BYTES, bits_per_dim, eval_bytes_per_item, eval_chunk


def _npz(path: Path, shape: tuple[int, int, int], n: int = 24) -> Path:
    """`n` uint8 images shaped (C, H, W), saved NHWC as x_train/x_test (3/4 and 1/4)."""
    c, h, w = shape
    rng = np.random.default_rng(0)
    x = (rng.random((n, h, w, c)) * 64).astype(np.uint8)
    x[::2, h // 4 : h // 2, w // 4 : w // 2] = 220
    cut = n * 3 // 4
    np.savez(path, x_train=x[:cut], x_test=x[cut:])
    return path


# (C, H, W): RGB and grayscale, square and not, at three sizes.
SHAPES = [(3, 16, 16), (1, 32, 32), (3, 16, 32)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_train_export_load_and_score(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    from vaekit.export import export_run

    data = _npz(tmp_path / "data.npz", shape)
    cfg = tiny_config(tmp_path / "run", data=str(data), model="conv", likelihood="gaussian", conv_channels=[4, 8],
                      hidden=[], epochs=1, batch_size=8)
    run = Path(train(cfg).run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_bits_per_dim"] == pytest.approx(bits_per_dim(summary["test_nll"], shape))
    bundle = export_run(run, tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["image_shape"] == list(shape) and manifest["parity"]["passed"]
    assert manifest["model"]["conv_channels"] == [4, 8] and manifest["model"]["variance"] == "analytic"
    assert len(manifest["prior"]["weights"]) == 1  # fitted after training: one component for 18 training images
    assert manifest["provenance"]["test_bits_per_dim"] == summary["test_bits_per_dim"]
    assert set(manifest["score_quantiles"]["q"]) >= {"0.01", "0.5"}
    vae = VAE.load(bundle, device="cpu")
    images = load_run(run).heldout()
    scores = vae.score(images)
    assert scores.shape == (len(images),) and np.all(np.isfinite(scores))
    assert vae.sample(2, seed=0).shape == (2, *shape)


def test_sizes_follow_the_image_and_parameters_grow_with_channels() -> None:
    small = ModelConfig(kind="conv", image_shape=(3, 32, 32), likelihood="gaussian", hidden=[])
    big = ModelConfig(kind="conv", image_shape=(3, 128, 128), hidden=[])
    assert small.conv_channels == [16, 32, 64] and small.grid == (4, 4)
    assert big.conv_channels == [16, 32, 64, 128, 256] and big.grid == (4, 4)
    assert ModelConfig(kind="conv", image_shape=(1, 32, 64), hidden=[]).grid == (4, 8)
    count = {s: sum(p.numel() for p in build_model(ModelConfig(kind="conv", image_shape=(3, s, s), hidden=[],
                                                                likelihood="gaussian", latent_dim=64)).parameters())
             for s in (64, 128)}
    assert count[128] <= 10_000_000 and count[128] < 4 * count[64]  # less than the 4x pixels: one more level


def test_recipe_picks_conv_from_the_image_shape() -> None:
    plan = planned(TrainConfig(likelihood="gaussian"), (3, 64, 64), 1000)
    assert plan.model.kind == "conv" and plan.model.grid == (4, 4) and plan.model.variance == "analytic"
    assert plan.batch_size < 128
    plan = planned(TrainConfig(likelihood="gaussian", conv_channels=[8], batch_size=4), (3, 64, 64), 1000)
    assert plan.model.conv_channels == [8] and plan.batch_size == 4  # flags stay overridable
    assert planned(TrainConfig(), (1, 28, 28), 1000).model.kind == "mlp"


@pytest.mark.parametrize("shape, channels, message", [
    ((3, 30, 30), [4, 8], r"divisible by 4, got 30x30; nearest sizes that fit: 28x28 or 32x32"),
    ((1, 24, 36), [4, 8, 8], r"divisible by 8, got 24x36; nearest sizes that fit: 24x32 or 24x40"),
    ((3, 7, 9), None, r"cannot downsample 7x9 images.*--image-size"),
])
def test_a_size_that_does_not_fit_names_the_nearest_that_do(shape: tuple, channels: list | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(kind="conv", image_shape=shape, conv_channels=channels, hidden=[])


def test_the_chunk_planner_keeps_one_decoded_chunk_under_its_budget() -> None:
    cfg = ModelConfig(kind="conv", image_shape=(3, 64, 64), likelihood="gaussian", hidden=[], conv_channels=[4, 8])
    model = build_model(cfg).eval()
    budget = 8 * 2**20
    n = eval_chunk(cfg, budget)
    assert n * eval_bytes_per_item(cfg) <= budget < (n + 1) * eval_bytes_per_item(cfg)
    with torch.no_grad():
        params = model.decoder.likelihood_params(torch.randn(n, cfg.latent_dim))
    decoded = sum(p.numel() * p.element_size() for p in params.values())
    widest = n * cfg.activation_floats() * 4  # the decoder's largest activation of the chunk
    assert decoded + widest <= budget
    assert items_per_chunk(100, 1000) == 1 and items_per_chunk(1000, 10) == 100
    for budget in (1, 10**6, 8 * 2**20, DEFAULT_BUDGET_BYTES):  # train's copy of the rule (it imports no runtime)
        assert eval_chunk(cfg, budget) == items_per_chunk(budget, eval_bytes_per_item(cfg))
    assert EVAL_BUDGET_BYTES == DEFAULT_BUDGET_BYTES
    assert runtime_batch_size((3, 128, 128)) < runtime_batch_size((1, 28, 28)) < runtime_batch_size((1, 8, 8))
    with pytest.raises(ValueError, match="bytes_per_item"):
        items_per_chunk(100, 0)
