"""Where a bundle goes: checked before the work starts (with --force, only a bundle that vaekit wrote is
replaced: `check_ours`), staged in a temporary folder beside it and renamed into place, so an interrupted
export never leaves half a bundle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vaekit.runtime.bundle import MANIFEST_FILE
from vaekit.runtime.errors import TargetError
from vaekit.runtime.files import check_ours, staged_folder

from .errors import ExportError


def check_target(out: Path, force: bool) -> None:
    """Raise ExportError when a bundle cannot (or must not) be written at `out`."""
    if out.exists() or out.is_symlink():
        if not force:
            raise ExportError(f"{str(out)!r} already exists; pass --force (force=True) to replace it, or choose another --out")
        try:
            check_ours(out, "bundle", (MANIFEST_FILE,))
        except TargetError as e:
            raise ExportError(str(e)) from None
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


@contextmanager
def staged(out: Path, force: bool) -> Iterator[Path]:
    """Yield an empty temporary folder beside `out`; when the block succeeds, it becomes `out` (see
    `staged_folder`: an old bundle there is swapped out, restored if the swap fails, else deleted). The caller
    has checked the target with `check_target` before its work; it is checked again before a bundle is replaced."""
    try:
        with staged_folder(out, lambda existing: check_target(existing, force), kind="bundle") as tmp:
            yield tmp
    except OSError as e:  # a full disk, a folder made read-only meanwhile, ...
        raise ExportError(f"writing the bundle {str(out)!r} failed ({e}); nothing was changed there; "
                          "choose another --out") from e
