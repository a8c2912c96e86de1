"""Training the importance-weighted bound late in a run: the recipe's choice, the switch and resuming across it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_helpers import assert_same_weights, planned, tiny_config, trained

from vaekit.train import TrainConfig, train
from vaekit.train.errors import ConfigError
from vaekit.train.objectives import Objective
from vaekit.train.plan import LATE_IWAE_FROM, LATE_IWAE_K


@pytest.mark.parametrize("given, shape, k, share", [
    ({}, (1, 28, 28), LATE_IWAE_K, LATE_IWAE_FROM),  # the 28x28 Bernoulli recipe
    ({"iwae_from": 0.5}, (1, 28, 28), LATE_IWAE_K, 0.5),
    ({"iwae_k": 5}, (1, 28, 28), 5, 0.0),  # the user's bound, over the whole run as before
    ({"iwae_k": 1}, (1, 28, 28), 1, 0.0),  # the ELBO throughout
    ({}, (1, 8, 8), 1, 0.0),  # measured on 28x28 images only
    ({"likelihood": "gaussian"}, (1, 28, 28), 1, 0.0),
    ({"free_bits": 0.5}, (1, 28, 28), 1, 0.0),  # the bound has no free bits
    ({"model": "conv"}, (3, 32, 32), 1, 0.0),
], ids=["recipe", "share given", "k given", "elbo given", "8x8", "gaussian", "free bits", "conv"])
def test_the_28x28_bernoulli_recipe_trains_the_bound_over_the_last_quarter(given: dict, shape: tuple, k: int,
                                                                           share: float) -> None:
    plan = planned(TrainConfig(epochs=10, **given), shape, 1000)
    assert (plan.iwae_k, plan.iwae_from) == (k, share)
    assert ("iwae_k" in plan.why) is ("iwae_k" not in given)  # config.json says why the recipe chose it


def test_iwae_from_must_be_a_share_of_the_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="iwae_from must be a share of the run"):
        train(tiny_config(tmp_path / "run", iwae_k=2, iwae_from=1.0))


def test_a_run_takes_elbo_steps_then_the_bound_from_iwae_from_on(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a budget the schedule's progress is step / steps: of 4 epochs of 7 steps, the first 14 (progress up to
    13/28, below 0.49) train the ELBO and the last 14 the IWAE bound with k samples; each epoch's record says which
    its last step trained."""
    samples = []
    real_forward = Objective.forward
    monkeypatch.setattr(Objective, "forward", lambda self, x, eps, beta: samples.append(len(eps) if eps.dim() == 3 else 1)
                        or real_forward(self, x, eps, beta))
    run = trained(tiny_config(tmp_path / "run", epochs=4, iwae_k=3, iwae_from=0.49))
    assert samples == [1] * 14 + [3] * 14
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iwae_k"] for r in records if r["kind"] == "train"] == [1, 1, 3, 3]


def test_resuming_across_the_switch_gives_the_weights_of_an_uninterrupted_run(tmp_path: Path) -> None:
    """A run stopped after its first step (the ELBO) goes on with the bound from its second, as one that never
    stopped."""
    settings = dict(epochs=4, iwae_k=3, iwae_from=0.01)  # step 0 at progress 0; step 1 at 1/28
    full = trained(tiny_config(tmp_path / "full", **settings))
    train(tiny_config(tmp_path / "part", max_time=1e-9, **settings))  # stops after its first step
    train(TrainConfig(), resume=tmp_path / "part")
    assert_same_weights(full, tmp_path / "part")
