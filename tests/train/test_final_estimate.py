"""The final test NLL estimate is sized to its share of the run, and --max-time covers the whole command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from train_helpers import tiny_config

from vaekit.train import train
from vaekit.train.budget import NLL_SHARE
from vaekit.train.chores import nll_size
from vaekit.train.data import load_data
from vaekit.train.plan import NLL_IMAGES, NLL_K, NLL_MIN_IMAGES


@pytest.mark.parametrize("seconds, available, k, images, expected", [
    (10.0, 10_000, None, None, (NLL_K, NLL_IMAGES)),  # the share holds the most the estimate takes
    (0.5, 10_000, None, None, (NLL_K, 500)),  # fewer images first
    (0.05, 10_000, None, None, (250, NLL_MIN_IMAGES)),  # then fewer samples
    (0.0, 10_000, None, None, (1, NLL_MIN_IMAGES)),  # no time left: the smallest estimate
    (10.0, 180, None, None, (NLL_K, 180)),  # no more images than are held out
    (1.0, 10_000, 5_000, None, (5_000, 200)),  # a k the user gave is kept, the images fitted to it
    (1.0, 10_000, None, 50, (NLL_K, 50)),  # and images the user gave
    (0.0, 10_000, 7, 3_000, (7, 3_000)),  # both given: asked for explicitly, whatever the share
])
def test_the_estimate_keeps_k_before_images_within_its_share(seconds: float, available: int, k: int | None,
                                                             images: int | None, expected: tuple[int, int]) -> None:
    assert nll_size(seconds, 1e-6, available, k, images) == expected


def test_max_time_covers_the_final_estimate(tmp_path: Path) -> None:
    """Training keeps back the estimate's share of the budget and the estimate takes at most what is left: the
    command returns within its budget, and summary.json says what the estimate was."""
    load_data("digits")  # what a fresh process would spend loading is not what this test measures
    budget, started = 6.0, time.perf_counter()
    cfg = tiny_config(tmp_path / "run", epochs=None, max_time=budget, nll_k=None, nll_images=None)
    summary = train(cfg, started=started)
    over = time.perf_counter() - (started + budget)
    assert over < 0.25 * budget, over  # writing summary.json is all that follows the estimate (slack for a loaded machine)
    assert 1 < summary.steps and summary.test_nll_images == 180 and 1 <= summary.test_nll_k <= NLL_K
    assert summary.test_nll_stderr > 0 and summary.test_nll_time_s <= NLL_SHARE * budget + 0.1
    why = json.loads((tmp_path / "run" / "config.json").read_text())["why"]
    assert "final estimate's" in why["epochs"] and f"at most {NLL_SHARE:.0%}" in why["nll_k"]


def test_without_a_budget_the_estimate_takes_a_share_of_the_training_time(tmp_path: Path) -> None:
    summary = train(tiny_config(tmp_path / "run", epochs=3, nll_k=None, nll_images=None))
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["test_nll_k"] == summary.test_nll_k >= 1 and saved["test_nll_stderr"] == summary.test_nll_stderr
    assert summary.test_nll_time_s < NLL_SHARE * summary.wall_time_s + 0.5  # the cost probe on top, a few ms


def test_the_estimate_takes_a_random_subset_of_a_sorted_heldout_set() -> None:
    from vaekit.train.chores import estimate_subset

    picked = estimate_subset(1000, 200, seed=0)
    assert len(set(picked.tolist())) == 200 and torch.equal(picked, picked.sort().values)
    assert picked.max() > 800 and picked.min() < 200  # spread over the set, not its first 200 images
    assert torch.equal(picked, estimate_subset(1000, 200, seed=0))
    assert torch.equal(estimate_subset(50, 80, seed=0), torch.arange(50))
