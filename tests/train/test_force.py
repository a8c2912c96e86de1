"""`vaekit-train --force` replaces only a run folder that vaekit wrote, checked before the data loads, by staging a
new folder and swapping it in: never the data, the current folder or any other folder of the user's."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from train_helpers import tiny_config, trained

from vaekit.runtime.files import MARKER, folder_kind
from vaekit.train import train
from vaekit.train.errors import RunError


def _photos(folder: Path) -> dict[str, bytes]:
    """A folder of a user's pictures, and their bytes."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(folder / f"photo{i}.png")
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_force_never_deletes_the_data_folder(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    before = _photos(photos)
    with pytest.raises(RunError, match="not a run folder that vaekit wrote.*refusing to replace it, even with --force"):
        train(tiny_config(photos, data=str(photos), force=True))
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_force_never_deletes_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RunError, match="refusing to replace it"):
        train(tiny_config(Path("."), force=True))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_empty_current_folder_is_used_and_a_run_holding_it_never_replaced(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = trained(tiny_config(Path("."), epochs=1))
    assert folder_kind(run) == "run" and (tmp_path / "checkpoint.pt").is_file()
    with pytest.raises(RunError, match="holds the current folder"):
        train(tiny_config(Path("."), epochs=1, force=True))
    assert (tmp_path / "checkpoint.pt").is_file()


def test_a_refusal_comes_before_the_data_loads(tmp_path: Path) -> None:
    """The data path does not exist: the run folder's refusal is what the user hears, before any slow load."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("keep")
    with pytest.raises(RunError, match="refusing to replace it"):
        train(tiny_config(tmp_path / "mine", data=str(tmp_path / "no-such-data"), force=True))


def test_a_marker_alone_does_not_make_a_file_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    with pytest.raises(RunError, match="is not a folder"):
        train(tiny_config(tmp_path / "file", force=True))
    assert (tmp_path / "file").read_text() == "mine"


def test_force_replaces_a_run_by_swapping_in_a_new_folder(tmp_path: Path) -> None:
    run = trained(tiny_config(tmp_path / "run", epochs=1))
    assert folder_kind(run) == "run"
    (run / "extra.txt").write_text("from the old run")
    inode = os.stat(run).st_ino
    trained(tiny_config(tmp_path / "run", epochs=1, force=True))
    assert folder_kind(run) == "run" and (run / "checkpoint.pt").is_file() and not (run / "extra.txt").exists()
    assert os.stat(run).st_ino != inode, "a new folder swapped in, not the old one emptied"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "no staging folder left behind"


def test_a_marker_of_another_kind_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / MARKER).write_text("bundle\n")
    (tmp_path / "bundle" / "manifest.json").write_text("{}")
    with pytest.raises(RunError, match="no .vaekit file naming it a run"):
        train(tiny_config(tmp_path / "bundle", force=True))
    assert (tmp_path / "bundle" / "manifest.json").exists()
