"""Files that matter, written atomically: a temporary file beside the target, then a rename, so that a
reader sees the old file or the new one, never half of one. New files get the usual mode (0666 less the
umask, e.g. 0644), where `tempfile.mkstemp` would make them private (0600). Whole folders (a bundle, a
static site) are staged beside their target and swapped in the same way (`staged_folder`).

Standard library only: every part of vaekit (train, export, runtime, ui, benchmarks) writes through here.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any]) -> Path:
    """Call `write(file)` on a new temporary file beside `path`, flush it to disk, then rename it to `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the kernel applies the umask
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """`data` as the file `path`, atomically."""
    return atomic_write(path, lambda f: f.write(data))


def write_json(path: str | os.PathLike[str], data: Any, *, strict: bool = True) -> Path:
    """`data` as indented JSON with sorted keys, atomically; `strict` refuses NaN and infinity (which other
    languages' parsers reject) with a ValueError."""
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=not strict) + "\n"
    return write_bytes(path, text.encode("utf-8"))


def _beside(path: Path, role: str) -> Path:
    """A fresh hidden name in `path`'s folder, so that renames stay on one file system."""
    return path.parent / f".{path.name}.{role}-{uuid.uuid4().hex[:12]}"


@contextmanager
def staged_folder(out: str | os.PathLike[str], check: Callable[[Path], None] = lambda out: None) -> Iterator[Path]:
    """Yield a new empty folder beside `out`; when the block succeeds, it becomes `out`, so that `out` is
    either all of the new folder or untouched. A folder already at `out` is renamed aside, replaced, then
    deleted, and put back if the replacement fails; `check(out)` runs just before (it may raise to refuse,
    e.g. when `out` appeared meanwhile). On any failure the staging folder is removed. OSErrors pass through."""
    out = Path(out)
    tmp = _beside(out, "tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()  # not mkdtemp: its 0700 mode would make the folder private; mkdir honours the umask
    try:
        yield tmp
        _move_into_place(tmp, out, check)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, out: Path, check: Callable[[Path], None]) -> None:
    """Rename `tmp` to `out`; an existing `out` (once `check` passes) is renamed aside first and restored on failure."""
    if not (out.exists() or out.is_symlink()):
        os.rename(tmp, out)
        return
    check(out)
    old = _beside(out, "old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
