"""Where a bundle goes: checked before the work starts, staged in a temporary folder beside it and
renamed into place, so an interrupted export never leaves half a bundle."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vaekit.runtime.bundle import MANIFEST_FILE

from .errors import ExportError


def check_target(out: Path, force: bool) -> None:
    """Raise ExportError when a bundle cannot (or must not) be written at `out`."""
    if out.exists() or out.is_symlink():
        if not force:
            raise ExportError(f"{str(out)!r} already exists; pass --force (force=True) to replace it, or choose another --out")
        if not out.is_dir() or out.is_symlink():
            raise ExportError(f"{str(out)!r} is not a folder; refusing to replace it, even with --force")
        if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
            raise ExportError(f"{str(out)!r} is a folder but not a vaekit bundle (no {MANIFEST_FILE}); refusing to "
                              "replace it, even with --force; choose another --out")
    parent = _existing_ancestor(out.parent)
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write the bundle {str(out)!r}: {str(parent)!r} is not a writable folder; "
                          "choose another --out or fix its permissions")


def _existing_ancestor(path: Path) -> Path:
    """`path` or its nearest existing parent (the folder that new folders would be created in)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _beside(out: Path, role: str) -> Path:
    """A fresh hidden name in `out`'s folder, so that renames stay on one file system."""
    return out.parent / f".{out.name}.{role}-{uuid.uuid4().hex[:12]}"


@contextmanager
def staged(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; when the block succeeds, it becomes `out`
    (an old bundle there is swapped out, then deleted); when it fails, it is removed. The caller has
    checked the target with `check_target` before its work; it is checked again only if it appeared since."""
    tmp = _beside(out, "tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()  # not mkdtemp: its 0700 mode would make the bundle private; mkdir honours the umask
    except OSError as e:
        raise ExportError(f"cannot write the bundle {str(out)!r} ({e}); choose another --out") from e
    try:
        yield tmp
        _move_into_place(tmp, out, force)
    except OSError as e:  # a full disk, a folder made read-only meanwhile, ...
        raise ExportError(f"writing the bundle {str(out)!r} failed ({e}); nothing was changed there") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, out: Path, force: bool) -> None:
    """Rename `tmp` to `out`; with `force`, an existing bundle is renamed aside first and restored on failure."""
    if not out.exists():
        os.rename(tmp, out)
        return
    check_target(out, force)  # it appeared meanwhile: same rules
    old = _beside(out, "old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
