"""runtime/files.py `staged_folder`: the one staging of whole folders (vaekit-export's bundles, vaekit-web's
sites). The folder at the target is all old or all new, whatever fails, and nothing is left beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from bundle_helpers import fail_the_swap

from vaekit.runtime.files import staged_folder


def _stage(out: Path, check: Callable[[Path], None] = lambda out: None, error: type[BaseException] | None = None) -> None:
    """Stage a folder holding new.txt for `out`; `error` is raised in the block when given."""
    with staged_folder(out, check) as stage:
        assert stage.parent == out.parent and stage != out
        (stage / "new.txt").write_text("new")
        if error is not None:
            raise error


def _old(out: Path) -> Path:
    """`out` as a folder holding old.txt."""
    out.mkdir()
    (out / "old.txt").write_text("old")
    return out


def _only(out: Path, names: list[str]) -> None:
    """`out` holds just `names`, and nothing but `out` is in its folder: no staging folder, no set-aside old one."""
    assert sorted(p.name for p in out.iterdir()) == names
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_a_new_folder_appears_whole(tmp_path: Path) -> None:
    out = tmp_path / "deeper" / "out"
    _stage(out)
    _only(out, ["new.txt"])


def test_an_old_folder_is_replaced_once_checked(tmp_path: Path) -> None:
    checked: list[Path] = []
    _stage(_old(tmp_path / "out"), checked.append)
    assert checked == [tmp_path / "out"]
    _only(tmp_path / "out", ["new.txt"])


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_failed_block_changes_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    with pytest.raises(error):
        _stage(_old(tmp_path / "out"), error=error)
    _only(tmp_path / "out", ["old.txt"])


def test_a_refusing_check_changes_nothing(tmp_path: Path) -> None:
    def refuse(existing: Path) -> None:
        raise ValueError(f"{existing} is not ours")

    with pytest.raises(ValueError, match="is not ours"):
        _stage(_old(tmp_path / "out"), refuse)
    _only(tmp_path / "out", ["old.txt"])


def test_a_failed_swap_restores_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = _old(tmp_path / "out")
    fail_the_swap(monkeypatch)
    with pytest.raises(OSError, match="No space left on device"):
        _stage(out)
    monkeypatch.undo()
    _only(out, ["old.txt"])
