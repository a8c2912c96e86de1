"""Issue 36's findings on the JavaScript reader that need a bundle Python makes: a graph with ONNX external data."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from bundle_helpers import TinyBundles, repin

REPO = Path(__file__).resolve().parents[2]
LOAD = """
const { VAE, BundleError } = await import(process.argv[1]);
try {
  await VAE.load('.');
  console.log(JSON.stringify({ loaded: true }));
} catch (e) {
  console.log(JSON.stringify({ error: e.message, bundleError: e instanceof BundleError }));
}
"""


def test_node_refuses_a_graph_with_external_data(tiny_bundles: TinyBundles, tmp_path: Path) -> None:
    """The weights file sits in the working folder, where onnxruntime-node would read it from: still refused."""
    onnx = pytest.importorskip("onnx")
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    bundle = Path(shutil.copytree(tiny_bundles["mlp-bernoulli"].path, tmp_path / "bundle"))
    onnx.save_model(onnx.load(bundle / "decoder.onnx"), bundle / "decoder.onnx", save_as_external_data=True,
                    all_tensors_to_one_file=True, location="decoder.data", size_threshold=1024)
    repin(bundle, "decoder.onnx")
    done = subprocess.run([node, "--input-type=module", "-e", LOAD, (REPO / "runtime" / "js" / "vaekit.mjs").as_uri()],
                          cwd=bundle, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result.get("bundleError"), result
    assert "decoder.onnx: the graph reads tensor data from a file outside it (ONNX external data)" in result["error"]
