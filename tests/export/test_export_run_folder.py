"""What the clean-up promised: a run folder that exports on its own, files with the umask's mode, one
manifest write, and user errors that are all VaekitErrors keeping their causes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import vaekit.export.api as export_api
from vaekit.export import ExportError, ParityError, export_run
from vaekit.runtime import VAE, save_png
from vaekit.runtime.errors import BundleError, DeviceError, InputError, MissingExtraError, VaekitError
from vaekit.train import ConfigError, DataError, RunError, TrainConfig, TrainingError, load_run, train


def _tiny_run(tmp_path: Path) -> Path:
    """A run trained for one epoch on an .npz of its own, which the test may then delete."""
    rng = np.random.default_rng(0)
    x = (rng.random((48, 8, 8)) < 0.3).astype(np.uint8) * 255
    np.savez(tmp_path / "data.npz", x_train=x[:40], x_test=x[40:])
    summary = train(TrainConfig(data=str(tmp_path / "data.npz"), out=str(tmp_path / "run"), model="mlp", hidden=[16],
                                latent_dim=3, epochs=1, batch_size=64, nll_k=4, nll_images=8, progress=False))
    return Path(summary.run)


def test_a_run_exports_after_its_data_file_is_deleted(tmp_path: Path) -> None:
    run = _tiny_run(tmp_path)
    (tmp_path / "data.npz").unlink()
    bundle = export_run(run, tmp_path / "bundle")
    assert VAE.load(bundle, device="cpu").verify().passed
    assert len(load_run(run).heldout()) == 8  # the run's own heldout.npy


def test_the_run_stores_its_training_images_colours_which_the_bundle_scores_against(tmp_path: Path) -> None:
    run = _tiny_run(tmp_path)
    with np.load(tmp_path / "data.npz") as f:
        train_means = f["x_train"].reshape(40, 1, 64).mean(axis=2) / 255  # every training image, in order
    colours = load_run(run).train_colours()
    assert colours is not None and np.allclose(np.sort(colours, axis=0), np.sort(train_means, axis=0))
    manifest = VAE.load(export_run(run, tmp_path / "bundle"), device="cpu").manifest
    assert manifest.colour_reference is not None and manifest.colour_reference.n == 40
    assert manifest.score_references is not None and "colour" in manifest.score_references["combined"].parts
    (run / "train_colours.npy").write_bytes(b"garbage")
    with pytest.raises(ExportError, match="train_colours.npy: unreadable.*train again"):
        export_run(run, tmp_path / "again")


def test_training_colours_are_computed_in_chunks_of_bounded_memory(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """2,000 large training images would take gigabytes as float32 at once; in chunks the colours are the same."""
    import vaekit.train.run as run_module

    images = np.random.default_rng(0).integers(0, 256, (4100, 3, 4, 4), dtype=np.uint8)
    run_module.write_colours(tmp_path, images)
    whole = np.load(tmp_path / run_module.COLOURS_FILE)
    monkeypatch.setattr(run_module, "DEFAULT_BUDGET_BYTES", 4 * 48 * 7)  # 7 images a chunk
    run_module.write_colours(tmp_path, images)
    assert np.array_equal(np.load(tmp_path / run_module.COLOURS_FILE), whole)
    assert whole.shape == (2000, 3) and np.allclose(whole[1], images[2].mean(axis=(1, 2)) / 255)  # every 2nd image


def test_files_get_the_umasks_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        run = _tiny_run(tmp_path)
        bundle = export_run(run, tmp_path / "bundle")
        png = save_png(np.zeros((4, 4), dtype=np.uint8), tmp_path / "grid.png")
    finally:
        os.umask(old)
    for path in (run / "checkpoint.pt", run / "summary.json", run / "heldout.npy", png, bundle / "manifest.json",
                 bundle / "decoder.onnx"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_the_manifest_is_written_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _tiny_run(tmp_path)
    written: list[Path] = []
    real = export_api.write_json

    def counting(path, data, **kwargs):
        written.append(Path(path).name)
        return real(path, data, **kwargs)

    monkeypatch.setattr(export_api, "write_json", counting)
    export_run(run, tmp_path / "bundle")
    assert written == ["manifest.json"]


def test_user_errors_are_vaekit_errors_and_keep_their_cause(tmp_path: Path) -> None:
    for error in (BundleError, DeviceError, InputError, MissingExtraError, ConfigError, DataError, RunError,
                  TrainingError, ExportError, ParityError):
        assert issubclass(error, VaekitError), error
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError) as info:
        load_run(tmp_path / "run")
    assert info.value.__cause__ is not None  # torch's own error is kept for whoever debugs it
