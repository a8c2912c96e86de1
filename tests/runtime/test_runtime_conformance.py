"""Conformance vectors: `VAE.verify` and `vaekit-check` pass on honest bundles and catch changed ones."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TINY, TinyBundle, TinyBundles, random_images, repin, tiny_model

from vaekit.runtime import VAE, BundleError
from vaekit.runtime.check_cli import main


@pytest.fixture
def copy(tiny_bundles: TinyBundles, tmp_path: Path) -> Path:
    """A private copy of the Bernoulli bundle that a test may change."""
    return Path(shutil.copytree(tiny_bundles["mlp-bernoulli"].path, tmp_path / "bundle"))


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_verify_checks_every_output(exported: TinyBundle) -> None:
    vae = exported.load()
    result = vae.verify()
    names = {f"encoder.{n}" for n in ("mean", "logvar")} | {f"decoder.{n}" for n in vae.decode_params(np.zeros(vae.latent_dim))}
    assert result.checked and result.passed and result.device == "cpu"
    assert {o.name for o in result.outputs} == names
    limits = vae.manifest.parity.limit
    for output in result.outputs:  # the limits are those export's parity check met, and they hold here
        assert limits is not None and output.limit == limits[output.name]
        assert 0 <= output.max_abs_diff <= output.limit
    assert result.summary().startswith("checked on this machine (cpu): worst output ")


def test_vaekit_check_prints_the_figures(exported: TinyBundle, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(exported.path), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "decoder.image" in out and "encoder.mean" in out and "limit" in out
    assert out.strip().splitlines()[-1].startswith("checked on this machine (cpu)")


def test_a_decoder_from_another_model_fails(copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vaekit.export import (
        export_model,  # the other model's bundle, exported for real
    )

    other = tiny_model("mlp-bernoulli")
    with __import__("torch").no_grad():
        for p in other.decoder.parameters():
            p.mul_(1.5)
    heldout = random_images(tuple(TINY["mlp-bernoulli"]["image_shape"]), 4, seed=1)
    export_model(other, tmp_path / "other", heldout=heldout, provenance={"data": "other"})
    shutil.copy(tmp_path / "other" / "decoder.onnx", copy / "decoder.onnx")
    repin(copy, "decoder.onnx")  # checksums updated to match: only the vectors can tell
    result = VAE.load(copy, device="cpu").verify()
    assert result.checked and not result.passed
    failed = [o for o in result.outputs if not o.passed]
    assert {o.name for o in failed} <= {"decoder.image", "decoder.logits"} and failed
    assert all(o.name.startswith("decoder.") or o.passed for o in result.outputs)  # the encoder is untouched
    assert main([str(copy), "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "FAILED on this machine (cpu): decoder." in out and "allowed" in out


def test_altered_reference_outputs_fail(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "conformance/decoder.image.npy"
    reference = np.load(copy / name)
    np.save(copy / name, reference + np.float32(0.25))
    with pytest.raises(BundleError, match=r"decoder\.image\.npy: sha256 does not match"):
        VAE.load(copy, device="cpu")
    repin(copy, name)
    result = VAE.load(copy, device="cpu").verify()
    assert [o.name for o in result.outputs if not o.passed] == ["decoder.image"]
    worst = result.worst
    assert worst is not None and worst.name == "decoder.image" and worst.max_abs_diff == pytest.approx(0.25, abs=1e-3)
    assert main([str(copy)]) == 1
    assert "decoder.image differs by 0.25" in capsys.readouterr().out


def test_a_bundle_without_vectors_loads_and_cannot_be_checked(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _manifest(copy)
    del manifest["conformance"]
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("conformance/")}
    _write_manifest(copy, manifest)
    shutil.rmtree(copy / "conformance")
    vae = VAE.load(copy, device="cpu")
    assert vae.sample(2, seed=0).shape == (2, 1, 8, 8)  # an older bundle still works
    result = vae.verify()
    assert not result.checked and not result.passed and result.outputs == ()
    assert result.summary().startswith("cannot be checked on this machine: the bundle has no conformance vectors")
    assert main([str(copy)]) == 1
    assert "cannot be checked" in capsys.readouterr().out


@pytest.mark.parametrize("edit, match", [
    (lambda m: m["conformance"]["decoder"]["outputs"]["image"].update(limit=-1), r"image\.limit: -1 must be above 0"),
    (lambda m: m["conformance"]["decoder"]["outputs"].pop("logits"), "must cover inputs"),
    (lambda m: m["conformance"].pop("encoder"), r"conformance: required key 'encoder' is missing"),
    (lambda m: m["files"].pop("conformance/encoder.mean.npy"), "not among the manifest's files"),
    (lambda m: m["files"].update({"../escape.npy": {"sha256": "0" * 64, "bytes": 1}}), r"files: key '\.\./escape\.npy'.* does not match"),
])
def test_malformed_conformance_entries_are_refused(copy: Path, edit, match: str) -> None:
    manifest = _manifest(copy)
    edit(manifest)
    _write_manifest(copy, manifest)
    with pytest.raises(BundleError, match=match):
        VAE.load(copy, device="cpu")


def test_a_vector_that_is_not_float32_is_refused(copy: Path) -> None:
    name = "conformance/encoder.image.npy"
    np.save(copy / name, np.load(copy / name).astype(np.float64))
    repin(copy, name)
    with pytest.raises(BundleError, match=r"encoder\.image\.npy: holds float64"):
        VAE.load(copy, device="cpu").verify()


def test_vaekit_check_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "vaekit.runtime.check_cli", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("vaekit-check: error: bundle folder") and len(result.stderr.splitlines()) == 1
