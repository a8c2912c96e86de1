"""The JavaScript runtime (runtime/js) under `node --test` with onnxruntime-node: on bundles of every kind
(float32, float16, int8 x mlp, conv x bernoulli, gaussian, and a mixture prior), against what the Python runtime computes."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from js_helpers import write_bundles

REPO = Path(__file__).resolve().parents[2]
NODE_TESTS = REPO / "tests" / "js" / "runtime.test.mjs"


def node_test(env: dict[str, str], tests: Path = NODE_TESTS) -> subprocess.CompletedProcess:
    """`node --test` on the JavaScript runtime's tests (`tests`), or a skip where Node.js is absent."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (apt-get install nodejs, or see nodejs.org)")
    if not (REPO / "node_modules" / "onnxruntime-node").is_dir():
        pytest.fail("node_modules lacks onnxruntime-node: run `make venv` (it runs npm ci)")
    return subprocess.run([node, "--test", "--test-reporter=spec", str(tests)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_node_unit_tests_pass_without_bundles() -> None:
    done = node_test({"VAEKIT_JS_BUNDLES": ""})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pass 3" in done.stdout and done.stdout.count("VAEKIT_JS_BUNDLES is not set") == 2  # bundle suites skip


@pytest.mark.slow
def test_node_runs_every_bundle_kind_like_python(tmp_path: Path) -> None:
    names = write_bundles(tmp_path)
    assert len(names) == 15  # float32, float16, int8 x mlp, conv x bernoulli, gaussian, and mlp with a mixture prior
    done = node_test({"VAEKIT_JS_BUNDLES": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert "fail 0" in done.stdout and all(name in done.stdout for name in names)
