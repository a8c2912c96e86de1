"""The JavaScript runtime (runtime/js) under `npm test` (node --test with onnxruntime-node): on bundles of every kind
(float32, float16, int8 x mlp, conv x bernoulli, gaussian, and a mixture prior), against what the Python runtime computes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def npm_test(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`npm test` (tests/js/run.mjs: node --test on tests/js/*.test.mjs), or a skip where Node.js is absent."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs npm, or see nodejs.org)")
    if not (REPO / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("node_modules lacks onnxruntime-node: run `make venv` (it runs npm ci)")
    environment = {k: v for k, v in os.environ.items() if k != "VAEKIT_JS_BUNDLES"}
    return subprocess.run([npm, "test"], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**environment, **env})


def node_test(env: dict[str, str], tests: Path) -> subprocess.CompletedProcess:
    """`node --test` on one file of the JavaScript runtime's tests, with `env` (the score twin's expectations), or a
    skip where Node.js is absent."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs, or see nodejs.org)")
    if not (REPO / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("node_modules lacks onnxruntime-node: run `make venv` (it runs npm ci)")
    return subprocess.run([node, "--test", "--test-reporter=spec", str(tests)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_node_unit_tests_pass_without_bundles() -> None:
    done = npm_test({"VAEKIT_JS_BUNDLES": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fail 0" in done.stdout and "pass 0" not in done.stdout  # the unit tests of every file ran
    assert done.stdout.count("VAEKIT_JS_BUNDLES is not set") == 2  # the bundle suites skip


@pytest.mark.slow
def test_npm_test_exports_every_bundle_kind_and_runs_them_like_python() -> None:
    """`npm test` on its own, as in a fresh clone after `make venv`: it exports the bundles it needs with the
    project's Python, then runs every test on them."""
    done = npm_test({"VAEKIT_PYTHON": sys.executable})  # .venv/bin/python when unset, as after `make venv`
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "exported 15 bundles" in done.stdout and "fail 0" in done.stdout and "skipped 0" in done.stdout
    assert all(f"{p}-{k}" in done.stdout for p in ("float32", "float16", "int8")
               for k in ("mlp-bernoulli", "mlp-gaussian", "conv-bernoulli", "conv-gaussian", "mlp-mixture"))
