"""What a hostile or broken bundle cannot do to the Python reader (issue 36): name files off the bundle folder,
ask for unbounded work, crash the parser, or run weights its checksums do not cover."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from bundle_helpers import TinyBundles, repin

from vaekit.runtime import VAE, BundleError
from vaekit.runtime import bundle as bundle_module
from vaekit.runtime import model as model_module
from vaekit.runtime.bundle import read_bundle, read_manifest
from vaekit.runtime.external_data import uses_external_data


@pytest.fixture
def copy(tiny_bundles: TinyBundles, tmp_path: Path) -> Path:
    """A private copy of the Bernoulli bundle that a test may change."""
    return Path(shutil.copytree(tiny_bundles["mlp-bernoulli"].path, tmp_path / "bundle"))


def _edit(bundle: Path, change: Any) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("name", ["https:evil.example/c.npy", "%2e%2e", "conformance/%2e%2e"])
def test_file_names_that_resolve_off_the_bundle_in_a_browser_are_refused(copy: Path, name: str) -> None:
    """Such a file may even exist in the folder and match its checksum: the name itself is refused."""
    (copy / name).parent.mkdir(parents=True, exist_ok=True)
    (copy / name).write_bytes(b"x")
    _edit(copy, lambda m: m["files"].update({name: {"sha256": hashlib.sha256(b"x").hexdigest(), "bytes": 1}}))
    with pytest.raises(BundleError, match=r"manifest\.json: files: key .* does not match"):
        read_manifest(copy)


@pytest.mark.parametrize("change, match", [
    (lambda m: m["score_quantiles"].update(k=10**9), r"score_quantiles\.k: 1000000000 is above the maximum 1000"),
    (lambda m: m["score_quantiles"]["q"].pop("0.5"), r"score_quantiles\.q: required key '0\.5' is missing"),
    (lambda m: m["score_quantiles"].update(n="many"), r"score_quantiles\.n: expected integer, got string"),
    (lambda m: m.update(image_shape=[1, 100_000, 8]), r"image_shape\[1\]: 100000 is above the maximum 4096"),
    (lambda m: m.update(latent_dim=5000), r"latent_dim: 5000 is above the maximum 4096"),
], ids=["huge-k", "missing-level", "n-text", "huge-image", "huge-latent"])
def test_reference_scores_and_sizes_are_bounded(copy: Path, change: Any, match: str) -> None:
    _edit(copy, change)
    with pytest.raises(BundleError, match=match):
        read_manifest(copy)


@pytest.mark.parametrize("text", [
    "[" * 100_000,  # nesting too deep for the parser: RecursionError
    '{"latent_dim": 1' + "0" * 5000 + "}",  # more digits than Python converts: ValueError
    '{"latent_dim": 1e400}',  # a float too large: read as infinity
    '{"latent_dim": NaN}',  # not JSON
    b"\xff\xfe{}",  # not UTF-8
], ids=["deep", "digits", "overflow", "nan", "utf8"])
def test_malformed_json_is_one_line_bundle_error(copy: Path, text: str | bytes) -> None:
    (copy / "manifest.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON \(.*\); the bundle is corrupt") as info:
        VAE.load(copy, device="cpu")
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


def with_external_data(bundle: Path) -> Path:
    """`bundle` with its decoder's weight matrices moved to decoder.data, a file the manifest does not list (the
    decoder's new checksum recorded, as an attacker would); onnxruntime runs such a graph when it loads it by path."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(bundle / "decoder.onnx")
    onnx.save_model(graph, bundle / "decoder.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="decoder.data", size_threshold=1024)
    repin(bundle, "decoder.onnx")
    return bundle


def test_a_graph_with_external_data_is_refused(copy: Path) -> None:
    with_external_data(copy)
    assert uses_external_data((copy / "decoder.onnx").read_bytes())
    assert not uses_external_data((copy / "encoder.onnx").read_bytes())
    for verify in (True, False):
        with pytest.raises(BundleError, match=r"decoder\.onnx: the graph reads tensor data from a file outside it"):
            VAE.load(copy, device="cpu", verify_checksums=verify)


def test_each_graph_is_read_once_and_run_from_the_bytes_that_were_hashed(copy: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    hashed_files, opened = [], []
    real_hash, real_open = bundle_module.sha256_file, model_module.open_sessions

    def sha256_file(path: Any) -> str:
        hashed_files.append(Path(path).name)
        return real_hash(path)

    def open_sessions(sources: list, *args: Any) -> Any:
        opened.extend(sources)
        return real_open(sources, *args)

    monkeypatch.setattr(bundle_module, "sha256_file", sha256_file)
    monkeypatch.setattr(model_module, "open_sessions", open_sessions)
    VAE.load(copy, device="cpu")
    manifest, graphs = read_bundle(copy)
    assert not any(name.endswith(".onnx") for name in hashed_files)  # graphs are hashed as the bytes read, once
    assert [hashlib.sha256(s).hexdigest() for s in opened] == [manifest.files[n].sha256 for n in ("encoder.onnx", "decoder.onnx")]
    assert opened == [graphs["encoder.onnx"], graphs["decoder.onnx"]]
