"""What goes wrong: bad runs, bad output paths, parity failures, interruptions and corrupted bundles."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from bundle_helpers import fail_the_swap
from export_helpers import Bundle

import vaekit.export.api
from vaekit.export import ExportError, export_run
from vaekit.export.export_cli import main
from vaekit.export.target import staged
from vaekit.runtime import VAE, BundleError
from vaekit.runtime.files import MARKER
from vaekit.train import load_run
from vaekit.train.checkpoint import CHECKPOINT_FILE, save_checkpoint


def _export(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str]:
    """`vaekit-export ARGV` in this process: its exit status and its stderr."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def _no_staging_left(out: Path) -> None:
    """No temporary folder of an export to `out` remains beside it."""
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def _left_nothing(out: Path) -> None:
    """Nothing at `out`, and no staging folder beside it."""
    assert not out.exists() and not out.is_symlink()
    _no_staging_left(out)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def run_copy(runs: dict[str, Path], tmp_path: Path) -> Path:
    """A private copy of the mlp-bernoulli run that a test may change."""
    return Path(shutil.copytree(runs["mlp-bernoulli"], tmp_path / "run"))


def _rewrite_checkpoint(run: Path, change) -> None:
    """Load the run's checkpoint, let `change(state)` edit it, and save it back the way vaekit-train does."""
    state = torch.load(run / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    change(state)
    save_checkpoint(run, state)


def test_missing_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _export(capsys, tmp_path / "nowhere", "--out", tmp_path / "bundle")
    assert code == 1 and "run folder" in err and "does not exist; pass the --out folder of a `vaekit-train` run" in err
    _left_nothing(tmp_path / "bundle")


def test_run_without_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    code, err = _export(capsys, tmp_path / "run", "--out", tmp_path / "bundle")
    assert code == 1 and "checkpoint.pt: no checkpoint in this run folder; train first" in err
    _left_nothing(tmp_path / "bundle")


def test_checkpoint_of_an_unknown_model_kind(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _rewrite_checkpoint(run_copy, lambda state: state["model_config"].update(kind="transformer"))
    code, err = _export(capsys, run_copy, "--out", tmp_path / "bundle")
    assert code == 1 and "unknown model kind 'transformer'; choose one of ('mlp', 'conv')" in err
    assert "it may come from a newer vaekit" in err
    _left_nothing(tmp_path / "bundle")


def test_unreadable_checkpoint(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_copy / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    code, err = _export(capsys, run_copy, "--out", tmp_path / "bundle")
    assert code == 1 and "unreadable checkpoint" in err
    _left_nothing(tmp_path / "bundle")


def test_unwritable_output_path(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("x")
    code, err = _export(capsys, run_copy, "--out", tmp_path / "a-file" / "bundle")
    assert code == 1 and "is not a writable folder; choose another --out" in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = _export(capsys, run_copy, "--out", locked / "bundle")
        assert code == 1 and "is not a writable folder" in err


def test_existing_output_needs_force(bundles: dict[str, Bundle], run_copy: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    bundle = Path(shutil.copytree(bundles["float32-mlp-bernoulli"].path, tmp_path / "bundle"))
    before = _snapshot(bundle)
    code, err = _export(capsys, run_copy, "--out", bundle)
    assert code == 1 and "already exists; pass --force (force=True) to replace it" in err
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    code, err = _export(capsys, run_copy, "--out", tmp_path / "notes", "--force")
    assert code == 1 and "is not a bundle folder that vaekit wrote (no .vaekit file naming it a bundle); refusing" in err
    (tmp_path / "webapp").mkdir()  # a web app of the user's holds a manifest.json too: not a bundle vaekit wrote
    (tmp_path / "webapp" / "manifest.json").write_text('{"name": "my app"}')
    code, err = _export(capsys, run_copy, "--out", tmp_path / "webapp", "--force")
    assert code == 1 and "refusing to replace it, even with --force" in err
    assert (tmp_path / "webapp" / "manifest.json").read_text() == '{"name": "my app"}'
    code, err = _export(capsys, run_copy, "--out", tmp_path / "notes" / "todo.txt", "--force")
    assert code == 1 and "is not a folder; refusing to replace it, even with --force" in err
    assert _snapshot(bundle) == before and (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_float16_and_int8_do_not_combine(run_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _export(capsys, run_copy, "--out", tmp_path / "bundle", "--dtype", "float16", "--quantize", "int8")
    assert code == 1 and "--quantize int8 works on float32 graphs" in err
    with pytest.raises(ExportError, match=r"dtype must be one of \('float32', 'float16'\), got 'bfloat16'"):
        export_run(run_copy, tmp_path / "bundle", dtype="bfloat16")


def test_parity_failure_writes_nothing_and_shows_the_figures(run_copy: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A decoder whose logits exceed float16's range (65504): its float16 graphs really differ from torch."""
    model = load_run(run_copy).model
    last = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(1e5)
        last.bias.mul_(1e5)
    _rewrite_checkpoint(run_copy, lambda state: state.update(model=model.state_dict()))
    code, err = _export(capsys, run_copy, "--out", tmp_path / "bundle", "--dtype", "float16")
    assert code == 1
    assert "float16 ONNX graphs do not match torch (" in err and "decoder.logits: max abs diff inf >" in err
    assert "nothing was written" in err and "tolerance 0.01" in err
    for key in ("encoder.mean", "encoder.logvar", "decoder.image", "decoder.logits"):
        assert f"  {key}: max abs diff " in err  # every output's figures, not just the failing one
    _left_nothing(tmp_path / "bundle")


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt  # as if Ctrl-C arrived while the bundle was being staged


@pytest.mark.parametrize("existing", [False, True], ids=["fresh", "replacing"])
def test_interrupted_export_leaves_no_half_bundle(existing: bool, bundles: dict[str, Bundle], run_copy: Path,
                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bundle"
    if existing:
        shutil.copytree(bundles["float32-mlp-bernoulli"].path, out)
        before = _snapshot(out)
    monkeypatch.setattr(vaekit.export.api, "heldout_figures", _interrupt)  # runs inside the staging step
    with pytest.raises(KeyboardInterrupt):
        export_run(run_copy, out, force=existing)
    if existing:
        assert _snapshot(out) == before
        VAE.load(out, device="cpu")  # still a valid bundle
        _no_staging_left(out)
    else:
        _left_nothing(out)


def test_failed_swap_restores_the_old_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the final rename fails, the bundle that was there comes back and the error says so."""
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("old")
    (out / MARKER).write_text("bundle\n")  # one that vaekit wrote
    fail_the_swap(monkeypatch)
    with pytest.raises(ExportError, match="No space left on device.*nothing was changed there") as e:
        with staged(out, force=True) as tmp:
            (tmp / "manifest.json").write_text("new")
    monkeypatch.undo()
    assert isinstance(e.value.__cause__, OSError)
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"] and (out / "manifest.json").read_text() == "old"


def test_corrupted_bundle_is_refused_by_the_runtime(bundles: dict[str, Bundle], tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(bundles["float32-conv-gaussian"].path, tmp_path / "bundle"))
    VAE.load(bundle, device="cpu")
    data = bytearray((bundle / "encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, in the weights
    (bundle / "encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"encoder\.onnx: sha256 does not match the manifest.*re-export the bundle"):
        VAE.load(bundle, device="cpu")
    (bundle / "manifest.json").write_text('{"format": "vaekit-bundle", "format_versi')
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON .*the bundle is corrupt, re-export it"):
        VAE.load(bundle, device="cpu")
