"""Helpers for tests of every stage that change bundles on purpose, or make writing them fail (tests/ is on
pytest's pythonpath)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vaekit.runtime.bundle import sha256_file


def repin(bundle: Path, *names: str) -> None:
    """Record the current sha256 of the bundle files `names` in its manifest, as someone who changed them on
    purpose would, so that only checks other than the checksums can catch the change."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for name in names:
        manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    path.write_text(json.dumps(manifest))


def fail_the_swap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second `os.rename` fail with a full disk: the one that moves a staged folder in, once the folder
    it replaces has been renamed aside (see runtime/files.py `staged_folder`)."""
    real_rename, calls = os.rename, []

    def rename(src: object, dst: object) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
