"""runtime/files.py `staged_folder`: the one staging of whole folders (vaekit-export's bundles, vaekit-web's
sites). The folder at the target is all old or all new, whatever fails, and nothing is left beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from bundle_helpers import fail_the_swap

from vaekit.runtime.files import staged_folder


def _folder(path: Path, text: str) -> Path:
    path.mkdir()
    (path / "file.txt").write_text(text)
    return path


def _only(out: Path) -> None:
    """Nothing but `out` in its folder: no staging folder and no set-aside old one."""
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_new_folder_appears_whole(tmp_path: Path) -> None:
    out = tmp_path / "deeper" / "out"
    with staged_folder(out) as stage:
        assert stage.parent == out.parent and not out.exists()
        (stage / "file.txt").write_text("new")
    assert (out / "file.txt").read_text() == "new"
    _only(out)


def test_an_old_folder_is_replaced_once_checked(tmp_path: Path) -> None:
    out = _folder(tmp_path / "out", "old")
    checked = []
    with staged_folder(out, checked.append) as stage:
        (stage / "other.txt").write_text("new")
    assert checked == [out] and [p.name for p in out.iterdir()] == ["other.txt"]
    _only(out)


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_failed_block_changes_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    out = _folder(tmp_path / "out", "old")
    with pytest.raises(error):
        with staged_folder(out) as stage:
            (stage / "file.txt").write_text("half")
            raise error
    assert (out / "file.txt").read_text() == "old"
    _only(out)


def test_a_refusing_check_changes_nothing(tmp_path: Path) -> None:
    out = _folder(tmp_path / "out", "old")

    def refuse(existing: Path) -> None:
        raise ValueError(f"{existing} is not ours")

    with pytest.raises(ValueError, match="is not ours"):
        with staged_folder(out, refuse) as stage:
            (stage / "file.txt").write_text("new")
    assert (out / "file.txt").read_text() == "old"
    _only(out)


def test_a_failed_swap_restores_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _folder(tmp_path / "out", "old")
    fail_the_swap(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        with staged_folder(out) as stage:
            (stage / "file.txt").write_text("new")
    monkeypatch.undo()
    assert (out / "file.txt").read_text() == "old"
    _only(out)
