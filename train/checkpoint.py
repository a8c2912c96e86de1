"""Checkpoints and run folders: written atomically, read back with `weights_only=True`."""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import torch

from vaekit.runtime.files import atomic_write

from .errors import RunError

CHECKPOINT_FILE = "checkpoint.pt"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
FORMAT = "vaekit-checkpoint"
VERSION = 1


def save_checkpoint(run: Path, state: dict[str, Any]) -> None:
    """Write `state` as the run's checkpoint; a crash mid-write leaves the previous one intact."""
    atomic_write(run / CHECKPOINT_FILE, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))


class CheckpointWriter:
    """Writes checkpoints on a background thread, one at a time, so the training loop does not wait for the disk.
    Each is a copy of the state taken at a step boundary, so what lands on disk is exact; `wait()` returns when
    the last one is written (and raises its error, if writing failed)."""

    def __init__(self, run: Path) -> None:
        self.run = run
        self.seconds = 0.0  # how long the last checkpoint took to copy and write
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def save(self, state: dict[str, Any], background: bool = True) -> None:
        self.wait()
        began = time.perf_counter()
        snapshot = copy.deepcopy(state)  # tensors copied: training may go on while this one is written
        if not background:
            self._write(snapshot, began)
            self.wait()
            return
        self._thread = threading.Thread(target=self._write, args=(snapshot, began), name="vaekit-checkpoint", daemon=False)
        self._thread.start()

    def _write(self, snapshot: dict[str, Any], began: float) -> None:
        try:
            save_checkpoint(self.run, snapshot)
        except BaseException as e:  # re-raised in the training thread by wait()
            self._error = e
        self.seconds = time.perf_counter() - began

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise RunError(f"could not write the checkpoint in {self.run}: {error}") from error


def load_checkpoint(run: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's checkpoint, loaded safely (`weights_only=True`); RunError says what is wrong."""
    run = Path(run)
    if not run.is_dir():
        raise RunError(f"run folder {str(run)!r} does not exist; pass the --out folder of a `vaekit-train` run")
    path = run / CHECKPOINT_FILE
    if not path.is_file():
        raise RunError(f"{path}: no checkpoint in this run folder; train first, or it stopped before its first epoch")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt or foreign file
        raise RunError(f"{path}: unreadable checkpoint ({type(e).__name__}: {str(e)[:200]}); resume from a backup or retrain") from e
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunError(f"{path}: not a vaekit checkpoint")
    if state.get("version") != VERSION:
        raise RunError(f"{path}: checkpoint version {state.get('version')!r} is not supported (expected {VERSION})")
    return state


def append_metrics(run: Path, record: dict[str, Any]) -> None:
    """One JSON line per record; flushed at once so a killed run keeps what it measured."""
    with open(run / METRICS_FILE, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(run: Path) -> list[dict[str, Any]]:
    path = run / METRICS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
