"""Helpers for tests of every stage that change bundles on purpose (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
from pathlib import Path

from vaekit.runtime.bundle import sha256_file


def repin(bundle: Path, *names: str) -> None:
    """Record the current sha256 of the bundle files `names` in its manifest, as someone who changed them on
    purpose would, so that only checks other than the checksums can catch the change."""
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    for name in names:
        manifest["files"][name] = {"sha256": sha256_file(bundle / name), "bytes": (bundle / name).stat().st_size}
    path.write_text(json.dumps(manifest))
