"""Nothing assigns to the config or the plan once the plan is made: both are frozen, so any assignment during a run
(or its resume) would stop it with FrozenInstanceError."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from train_helpers import assert_same_weights, tiny_config, trained

from vaekit.train import TrainConfig, train
from vaekit.train import plan as plan_module
from vaekit.train.plan import Plan


def test_config_and_plan_are_frozen() -> None:
    cfg = TrainConfig(hidden=[8, 4])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1e-3  # type: ignore[misc]
    assert cfg.hidden == (8, 4)  # a tuple: not even an item can change
    assert Plan.__dataclass_params__.frozen


def test_a_whole_run_and_its_resume_follow_one_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stopped by its budget after one step, then resumed: every plan made or read is frozen (an assignment
    anywhere would stop the run), it ends as an uninterrupted run does, and config.json, the checkpoint and the
    resume hold one plan."""
    plans: list[Plan] = []
    real_build, real_read = plan_module._build, Plan.from_dict
    monkeypatch.setattr(plan_module, "_build", lambda *a, **kw: plans.append(real_build(*a, **kw)) or plans[-1])
    monkeypatch.setattr(Plan, "from_dict", classmethod(lambda cls, d: plans.append(real_read(d)) or plans[-1]))
    full = trained(tiny_config(tmp_path / "full", epochs=3))
    train(tiny_config(tmp_path / "part", epochs=3, max_time=1e-9))
    train(TrainConfig(), resume=tmp_path / "part")
    assert_same_weights(full, tmp_path / "part")
    assert len(plans) == 3 and all(dataclasses.is_dataclass(p) and Plan.__dataclass_params__.frozen for p in plans)
    written, resumed = json.loads((tmp_path / "part" / "config.json").read_text()), plans[-1].to_dict()
    assert resumed == plans[1].to_dict()
    assert {k: written[k] for k in ("model", "train", "why")} == json.loads(json.dumps(resumed))
    saved = torch.load(tmp_path / "part" / "checkpoint.pt", weights_only=True)
    assert saved["plan"] == resumed
    with pytest.raises(dataclasses.FrozenInstanceError):
        plans[-1].epochs = 10  # type: ignore[misc]
