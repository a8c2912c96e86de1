"""Checkpoints and run folders: written atomically, read back with `weights_only=True`."""

from __future__ import annotations

import json
import os
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
