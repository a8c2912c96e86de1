"""Helpers for the tests that install vaekit with pip (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import subprocess

import pytest

# What pip says when the package index cannot be reached (or lacks a wheel for this machine)
UNREACHABLE = ("No matching distribution", "Could not find a version")


def pip(command: list[str], what: str, timeout: int) -> subprocess.CompletedProcess:
    """Run the pip `command` and require success; skip the test, naming `what`, when the index is unreachable."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 and any(message in result.stderr + result.stdout for message in UNREACHABLE):
        pytest.skip(f"the package index is unreachable, cannot {what}: {result.stderr[-500:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    return result
