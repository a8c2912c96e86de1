"""Loading: corrupt, incomplete or foreign bundles, devices and session options."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from bundle_helpers import TinyBundle, TinyBundles, random_images, repin

from vaekit.runtime import VAE, BundleError, DeviceError
from vaekit.runtime.manifest import check_latent_pca

NO_CUDA = "CUDAExecutionProvider" not in ort.get_available_providers()


@pytest.fixture
def copy(tiny_bundles: TinyBundles, tmp_path: Path) -> Path:
    """A private copy of the Bernoulli bundle that a test may damage."""
    return Path(shutil.copytree(tiny_bundles["mlp-bernoulli"].path, tmp_path / "bundle"))


def _edit_manifest(bundle: Path, drop: tuple[str, ...] = (), **changes: object) -> None:
    path = bundle / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    for key in drop:
        del manifest[key]
    path.write_text(json.dumps(manifest))


def test_missing_folder_and_files(tmp_path: Path, copy: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        VAE.load(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="is a file; pass the bundle folder"):
        VAE.load(copy / "manifest.json")
    (copy / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match=r"decoder\.onnx: missing"):
        VAE.load(copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        VAE.load(copy)


def test_corrupted_graph_fails_its_checksum(copy: Path) -> None:
    data = (copy / "encoder.onnx").read_bytes()
    (copy / "encoder.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"encoder\.onnx: sha256 does not match.*re-export"):
        VAE.load(copy, device="cpu")
    with pytest.raises(BundleError, match=r"encoder\.onnx: not an ONNX model \(.*\); the bundle is corrupt"):
        VAE.load(copy, device="cpu", verify_checksums=False)


def test_checksum_opt_out_loads_an_edited_bundle(copy: Path) -> None:
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(copy / "decoder.onnx")
    graph.doc_string = "edited on purpose"
    onnx.save(graph, copy / "decoder.onnx")
    with pytest.raises(BundleError, match=r"decoder\.onnx: sha256 does not match"):
        VAE.load(copy)
    vae = VAE.load(copy, device="cpu", verify_checksums=False)
    assert vae.decode(np.zeros(vae.latent_dim)).shape == (1, *vae.image_shape)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"format_version": 3}, r"format version 3 is not supported by this runtime \(it reads versions 1, 2\)"),
        ({"format_version": 2}, "format version 2 needs the key 'prior'"),
        ({"format": "something-else"}, "not a vaekit bundle"),
        ({"likelihood": "poisson"}, "likelihood: 'poisson' is not one of 'bernoulli', 'gaussian'"),
        ({"image_shape": [1, 16, 16]}, r"per-item shape \[1, 8, 8\].*\[1, 16, 16\]"),
    ],
)
def test_inconsistent_manifest(copy: Path, changes: dict[str, object], match: str) -> None:
    _edit_manifest(copy, **changes)
    with pytest.raises(BundleError, match=match):
        VAE.load(copy, device="cpu")


@pytest.fixture
def mixture_copy(tiny_bundles: TinyBundles, tmp_path: Path) -> Path:
    """A private copy of the bundle with a learned mixture prior (format version 2)."""
    return Path(shutil.copytree(tiny_bundles["mlp-mixture"].path, tmp_path / "mixture"))


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda prior: {**prior, "kind": "flow"}, "prior.kind: 'flow' is not one of 'mixture'"),
        (lambda prior: {**prior, "weights": []}, r"prior\.weights: has 0 items, expected 1 to 1024"),
        (lambda prior: {**prior, "weights": [0.5] * len(prior["weights"])}, "must be positive and sum to 1"),
        (lambda prior: {**prior, "weights": [1.0] + [0.0] * (len(prior["weights"]) - 1)}, r"weights\[1\]: 0.0 must be above 0"),
        (lambda prior: {**prior, "means": prior["means"][1:]}, r"prior\.means must be 4 rows"),
        (lambda prior: {**prior, "logvars": [row[:2] for row in prior["logvars"]]}, "of latent_dim = 3 finite numbers"),
    ],
)
def test_a_bad_prior_is_named(mixture_copy: Path, edit: Callable[[dict], dict], match: str) -> None:
    manifest = json.loads((mixture_copy / "manifest.json").read_text())
    _edit_manifest(mixture_copy, prior=edit(manifest["prior"]))
    with pytest.raises(BundleError, match=match):
        VAE.load(mixture_copy, device="cpu")


def test_latent_dim_must_match_latent_pca_and_the_graphs(copy: Path) -> None:
    _edit_manifest(copy, latent_dim=5)
    with pytest.raises(BundleError, match=r"latent_pca\.mean must be a list of latent_dim = 5 finite numbers"):
        VAE.load(copy, device="cpu")
    _edit_manifest(copy, drop=("latent_pca",))
    with pytest.raises(BundleError, match=r"per-item shape \[3\].*\[5\]"):
        VAE.load(copy, device="cpu")


def test_a_bundle_exported_before_latent_pca_still_loads(copy: Path) -> None:
    assert check_latent_pca(json.loads((copy / "manifest.json").read_text())["latent_pca"], 3) is None
    assert VAE.load(copy, device="cpu").manifest.latent_pca is not None
    _edit_manifest(copy, drop=("latent_pca",))
    vae = VAE.load(copy, device="cpu")
    assert vae.manifest.latent_pca is None and vae.decode(np.zeros(3)).shape == (1, 1, 8, 8)


def _scaled_first_axis(pca: dict) -> dict:
    return {"axes": [[2 * x for x in pca["axes"][0]], *pca["axes"][1:]]}


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda pca: None, "latent_pca: expected object, got null"),
        (lambda pca: {k: v for k, v in pca.items() if k != "variance"}, "latent_pca: required key 'variance' is missing"),
        (lambda pca: {**pca, "n": 0}, "latent_pca.n: 0 is below the minimum 1"),
        (lambda pca: {**pca, "n": True}, "latent_pca.n: expected integer, got boolean"),
        (lambda pca: {**pca, "mean": pca["mean"][:2]}, "latent_pca.mean must be a list of latent_dim = 3 finite"),
        (lambda pca: {**pca, "mean": [0.0, "1", 0.0]}, r"latent_pca.mean\[1\]: expected number, got string"),
        (lambda pca: {**pca, "axes": pca["axes"][:2]}, "latent_pca.axes must be 3 rows"),
        (lambda pca: {**pca, "axes": [row[:2] for row in pca["axes"]]}, "latent_pca.axes must be 3 rows"),
        (lambda pca: {**pca, **_scaled_first_axis(pca)}, "latent_pca.axes must be orthonormal rows .* off by 3"),
        (lambda pca: {**pca, "variance": [1.0, 2.0, 0.5]}, "latent_pca.variance must be non-negative and in decreasing order"),
        (lambda pca: {**pca, "variance": [1.0, 0.5, -0.1]}, "latent_pca.variance must be non-negative and in decreasing order"),
        (lambda pca: {**pca, "variance": [1.0, 0.5]}, "latent_pca.variance must be a list of 3 finite numbers"),
    ],
    ids=["null", "no-variance", "n-zero", "n-bool", "short-mean", "string-in-mean", "two-axes", "short-axes",
         "not-orthonormal", "increasing-variance", "negative-variance", "short-variance"],
)
def test_malformed_latent_pca_is_refused(copy: Path, edit: Callable[[dict], object], match: str) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    _edit_manifest(copy, latent_pca=edit(manifest["latent_pca"]))
    with pytest.raises(BundleError, match=f"manifest.json: {match}"):
        VAE.load(copy, device="cpu")


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda ref: {k: v for k, v in ref.items() if k != "bandwidth"}, "colour_reference: required key 'bandwidth' is missing"),
        (lambda ref: {**ref, "n": ref["n"] + 1}, "colour_reference.means must be n = 41 rows of 1 numbers"),
        (lambda ref: {**ref, "means": [[-0.1], *ref["means"][1:]]}, r"colour_reference.means\[0\]\[0\]: -0.1 is below the minimum 0"),
        (lambda ref: {**ref, "bandwidth": [0.0]}, r"colour_reference.bandwidth\[0\]: 0.0 must be above 0"),
        (lambda ref: {**ref, "bandwidth": [0.1, 0.1]}, "colour_reference.bandwidth must be a list of 1 numbers"),
    ],
    ids=["no-bandwidth", "n-not-rows", "negative-mean", "zero-bandwidth", "two-bandwidths"],
)
def test_malformed_colour_reference_is_refused(copy: Path, edit: Callable[[dict], object], match: str) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    _edit_manifest(copy, colour_reference=edit(manifest["colour_reference"]))
    with pytest.raises(BundleError, match=f"manifest.json: {match}"):
        VAE.load(copy, device="cpu")


def test_invalid_json(copy: Path) -> None:
    (copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        VAE.load(copy)


def test_swapped_graphs_are_caught(copy: Path) -> None:
    enc, dec = copy / "encoder.onnx", copy / "decoder.onnx"
    enc_bytes = enc.read_bytes()
    enc.write_bytes(dec.read_bytes())
    dec.write_bytes(enc_bytes)
    repin(copy, "encoder.onnx", "decoder.onnx")
    with pytest.raises(BundleError, match="tensors .* differ from the manifest"):
        VAE.load(copy, device="cpu")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"device": "gpu"}, "device must be one of"),
        ({"batch_size": 0}, "batch_size"),
        ({"intra_op_threads": -1}, "intra_op_threads"),
        ({"inter_op_threads": 1.5}, "inter_op_threads"),
        ({"graph_optimization": "max"}, "graph_optimization must be one of"),
    ],
)
def test_bad_load_options(copy: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        VAE.load(copy, **kwargs)


def test_session_options_do_not_change_results(exported: TinyBundle) -> None:
    x = random_images(tuple(exported.model.config.image_shape), 3)
    default = exported.load().reconstruct(x)
    tuned = exported.load(intra_op_threads=1, inter_op_threads=1, graph_optimization="disable")
    np.testing.assert_allclose(tuned.reconstruct(x), default, atol=1e-5)


def test_cpu_is_what_it_says(copy: Path) -> None:
    vae = VAE.load(copy, device="cpu")
    assert vae.device == "cpu" and vae.providers == ["CPUExecutionProvider"]


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has CUDA; the fallback path is not reachable")
def test_auto_without_cuda_runs_on_cpu_and_says_so(copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="vaekit.runtime"):
        vae = VAE.load(copy)
    assert vae.device == "cpu" and vae.providers == ["CPUExecutionProvider"]
    assert "runs on CPU because" in caplog.text and "CUDAExecutionProvider" in caplog.text


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has CUDA; see test_runtime_cuda.py")
def test_cuda_without_cuda_is_an_error_with_a_fix(copy: Path) -> None:
    with pytest.raises(DeviceError) as info:
        VAE.load(copy, device="cuda")
    message = str(info.value)
    assert "device='cuda'" in message and "CUDAExecutionProvider" in message
    assert "vaekit[gpu]" in message and "onnxruntime-gpu" in message and "nvidia-smi" in message


def test_what_onnxruntime_prints_while_probing_is_caught(capfd: pytest.CaptureFixture[str]) -> None:
    """onnxruntime's C++ logger writes to file descriptor 2 directly: while CUDA is tried that output is
    caught (for the debug log) and vaekit's reason quotes its first error."""
    from vaekit.runtime.devices import captured_output, first_error

    red = ("\x1b[1;31m2026-11-25 04:25:00.88 [E:onnxruntime:Default, provider_bridge_ort.cc:2458 operator()] "
           "/src/provider_bridge_ort.cc:2043 [ONNXRuntimeError] : 1 : FAIL : Failed to load library "
           "libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file\x1b[m\n")
    with captured_output() as output:
        os.write(2, red.encode())
        print("a line from Python")
    assert capfd.readouterr() == ("", "")  # nothing reached the terminal
    assert "a line from Python" in output.getvalue() and "libcublasLt.so.13" in output.getvalue()
    assert first_error(output.getvalue()) == ("Failed to load library libonnxruntime_providers_cuda.so with error: "
                                              "libcublasLt.so.13: cannot open shared object file")
    assert first_error("all good\n") is None
