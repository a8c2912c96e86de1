"""Reading a finished (or interrupted) run folder back: what `vaekit-export` starts from."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import SUMMARY_FILE, RunError, load_checkpoint
from .data import load_data
from .models import VAE, ModelConfig, build_model


@dataclass
class LoadedRun:
    """A run's model (eval mode, CPU), its configs and its final figures."""

    path: Path
    model: VAE
    model_config: ModelConfig
    train_config: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)

    def heldout_images(self, n: int | None = None) -> np.ndarray:
        """The run's held-out images, float32 (n, C, H, W) in [0, 1], re-loaded from its data source."""
        cfg = self.train_config
        try:
            data = load_data(cfg["data"], image_size=cfg.get("image_size"), channels=cfg.get("channels"),
                             test_fraction=cfg.get("test_fraction", 0.1), seed=cfg.get("seed", 0),
                             skip_bad_images=cfg.get("skip_bad_images", False))
        except ValueError as e:
            raise RunError(f"{self.path}: cannot re-load the run's held-out data: {e}") from None
        test = data.test[:n] if n is not None else data.test
        return test.astype(np.float32) / 255.0


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild a run's model from its checkpoint; RunError names what is missing or wrong."""
    path = Path(run_dir)
    state = load_checkpoint(path)
    try:
        model_cfg = ModelConfig.from_dict(state["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}: the checkpoint's model cannot be rebuilt ({e}); it may come from a newer vaekit") from None
    model = build_model(model_cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise RunError(f"{path}: the checkpoint's weights do not fit its model config ({str(e)[:300]})") from None
    summary_path = path / SUMMARY_FILE
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{summary_path}: not valid JSON ({e}); delete it to export the run as unfinished, "
                       "or train it again") from None
    return LoadedRun(path, model.eval(), model_cfg, dict(state["train_config"]), summary)
