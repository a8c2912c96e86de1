"""A run folder: making a new one, the held-out images stored in it for export, and reading a finished (or
interrupted) run back, which is what `vaekit-export` starts from."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vaekit.runtime.bundle import colour_sample, sha256_file
from vaekit.runtime.chunks import DEFAULT_BUDGET_BYTES, items_per_chunk
from vaekit.runtime.errors import TargetError
from vaekit.runtime.files import atomic_write, check_ours, mark, staged_folder
from vaekit.runtime.images import to_unit_float32
from vaekit.runtime.run_summary import RunSummary
from vaekit.runtime.scores import image_colours

from .checkpoint import SUMMARY_FILE, load_checkpoint
from .data import load_data
from .errors import DataError, RunError
from .models import ModelConfig, VAEModule, build_model

if TYPE_CHECKING:
    from .config import TrainConfig
    from .distributed import Distributed

HELDOUT_FILE = "heldout.npy"
COLOURS_FILE = "train_colours.npy"  # the average colours of up to 2,000 training images (`colour_sample`)
HELDOUT_IMAGES = 2000  # what export scores and encodes for the manifest (the first 64 also check parity)
HELDOUT_BYTES = 32 << 20  # larger images store fewer: at most 32 MiB of uint8 pixels (682 at 128x128 RGB)


def prepare_run_dir(cfg: TrainConfig, dist: Distributed) -> Path:
    """The run folder: a new one, marked as a run (refusing to overwrite without --force). With --force, only a run
    folder that vaekit wrote is replaced (`check_ours`: never the data, `.` or another folder of the user's), by
    staging a new folder beside it and swapping it in; called before the data loads, so that a refusal comes first."""
    out = Path(cfg.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if dist.is_main:
        empty = out.is_dir() and not any(out.iterdir())  # used as it is
        if (out.exists() or out.is_symlink()) and not empty and not cfg.force:
            raise RunError(f"run folder {str(out)!r} already exists; pass --force to replace it, "
                           f"--resume {out} to continue it, or another --out")
        try:
            check_ours(out, "run")
            if empty:
                mark(out, "run")
            else:
                with staged_folder(out, lambda existing: check_ours(existing, "run"), kind="run"):
                    pass
        except TargetError as e:
            raise RunError(str(e)) from None
    dist.barrier()
    return out


def write_heldout(run_dir: Path, test: np.ndarray) -> int:
    """Store the first held-out images (uint8 N, C, H, W) in the run folder, so that exporting the run never
    needs its data source; returns how many."""
    n = max(1, min(len(test), HELDOUT_IMAGES, HELDOUT_BYTES // test[0].nbytes))
    atomic_write(run_dir / HELDOUT_FILE, lambda f: np.save(f, np.ascontiguousarray(test[:n]), allow_pickle=False))
    return n


def write_colours(run_dir: Path, train: np.ndarray) -> None:
    """Store the average colours (`image_colours`) of a `colour_sample` of the training images (uint8 N, C, H, W) in
    the run folder: what the bundle's `colour` score compares an image's colour with."""
    sample = colour_sample(train)
    per_chunk = items_per_chunk(DEFAULT_BUDGET_BYTES, 4 * sample[0].size)  # each chunk as float32
    colours = np.concatenate([image_colours(to_unit_float32(sample[i : i + per_chunk]))
                              for i in range(0, len(sample), per_chunk)])
    atomic_write(run_dir / COLOURS_FILE, lambda f: np.save(f, colours, allow_pickle=False))


@dataclass
class LoadedRun:
    """A run's model (eval mode, CPU), its configs and, when it finished, its summary."""

    path: Path
    model: VAEModule
    model_config: ModelConfig
    train_config: dict[str, Any]
    summary: RunSummary | None = None

    def heldout(self, n: int | None = None) -> np.ndarray:
        """The run's first `n` held-out images, float32 (N, C, H, W) in [0, 1], from its heldout.npy (a run
        trained before vaekit stored them re-loads its data source)."""
        path = self.path / HELDOUT_FILE
        if not path.is_file():
            return self._reload_heldout(n)
        if self.summary is not None and self.summary.heldout_sha256 not in (None, sha256_file(path)):
            raise RunError(f"{path}: changed since training (its sha256 differs from {SUMMARY_FILE}'s); "
                           "restore it, or train again")
        try:
            images = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise RunError(f"{path}: unreadable ({e}); restore it, or train again") from e
        return images[:n].astype(np.float32) / 255.0

    def train_colours(self) -> np.ndarray | None:
        """The training images' average colours the run stored (`write_colours`), or None for a run trained before
        vaekit stored them (its bundle has no `colour` score)."""
        path = self.path / COLOURS_FILE
        if not path.is_file():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise RunError(f"{path}: unreadable ({e}); delete it to export without the colour score, or train again") from e

    def _reload_heldout(self, n: int | None) -> np.ndarray:
        cfg = self.train_config
        try:
            data = load_data(cfg["data"], image_size=cfg.get("image_size"), channels=cfg.get("channels"),
                             test_fraction=cfg.get("test_fraction", 0.1), seed=cfg.get("seed", 0),
                             skip_bad_images=cfg.get("skip_bad_images", False))
        except DataError as e:
            raise RunError(f"{self.path}: has no {HELDOUT_FILE} (trained by an older vaekit) and cannot re-load "
                           f"its held-out data: {e}") from e
        return data.test[:n].astype(np.float32) / 255.0


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild a run's model from its checkpoint; RunError names what is missing or wrong."""
    path = Path(run_dir)
    state = load_checkpoint(path)
    try:
        model_cfg = ModelConfig.from_dict(state["model_config"])
    except (KeyError, TypeError, ValueError) as e:
        raise RunError(f"{path}: the checkpoint's model cannot be rebuilt ({e}); it may come from a newer vaekit") from e
    model = build_model(model_cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as e:
        raise RunError(f"{path}: the checkpoint's weights do not fit its model config ({str(e)[:300]})") from e
    return LoadedRun(path, model.eval(), model_cfg, dict(state["train_config"]), _read_summary(path / SUMMARY_FILE))


def _read_summary(path: Path) -> RunSummary | None:
    """The run's summary.json, or None when the run never finished."""
    if not path.is_file():
        return None
    try:
        return RunSummary.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise RunError(f"{path}: not a valid run summary ({e}); delete it to export the run as unfinished, "
                       "or train it again") from e
