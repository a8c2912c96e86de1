"""Files that matter, written atomically: a temporary file beside the target, then a rename, so that a
reader sees the old file or the new one, never half of one. New files get the usual mode (0666 less the
umask, e.g. 0644), where `tempfile.mkstemp` would make them private (0600). Whole folders (a bundle, a
static site, a run) are staged beside their target and swapped in the same way (`staged_folder`), which
marks each with the kind of folder it is (MARKER); `check_ours` is the one check, before vaekit replaces a
folder, that the folder is one it wrote, so that `--force` never deletes a folder of the user's.

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

from .errors import TargetError

MARKER = ".vaekit"  # in every folder vaekit writes whole and may replace: its kind, one of KINDS
KINDS = ("run", "bundle", "web")


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


def check_writable(path: str | os.PathLike[str], option: str) -> None:
    """Raise TargetError unless a file can be written at `path` (given as `option`): not a folder, in an existing
    folder that this process may write in. Commands check this before their slow part, not after it."""
    path = Path(path)
    parent = path.absolute().parent
    if path.is_dir():
        raise TargetError(f"{option} {str(path)!r} is a folder; name a file to write")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise TargetError(f"{option} {str(path)!r}: {str(parent)!r} is not a folder this process can write in; "
                          "create it, fix its permissions or choose another path")


def folder_kind(folder: Path) -> str | None:
    """The kind that vaekit's marker in `folder` names, or None when there is no such marker."""
    marker = folder / MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        with open(marker, "rb") as f:
            kind = f.read(64).decode("utf-8", "replace").strip()
    except OSError:
        return None
    return kind if kind in KINDS else None


def mark(folder: Path, kind: str) -> None:
    """Mark `folder` as a `kind` folder that vaekit wrote (see `check_ours`)."""
    write_bytes(folder / MARKER, f"{kind}\n".encode())


def check_ours(out: str | os.PathLike[str], kind: str, expected: tuple[str, ...] = ()) -> None:
    """Raise TargetError unless vaekit may replace `out` with a new `kind` folder: `out` is missing, an empty
    folder, or a real folder (not a link, not the current folder or one above it) whose marker names `kind` and
    which holds every path in `expected`."""
    out = Path(out)
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_symlink() or not out.is_dir():
        raise TargetError(f"{str(out)!r} is not a folder; refusing to replace it, even with --force")
    if not any(out.iterdir()):
        return
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise TargetError(f"{str(out)!r} holds the current folder; refusing to replace it, even with --force: "
                          "choose another --out")
    missing = [name for name in expected if not (out / name).exists()]
    marked = folder_kind(out) == kind
    if not marked or missing:
        lacks = f"no {MARKER} file naming it a {kind}" if not marked else f"no {', '.join(missing)}"
        raise TargetError(f"{str(out)!r} is not a {kind} folder that vaekit wrote ({lacks}); refusing to replace "
                          "it, even with --force: choose another --out, or delete it yourself if it may go")


@contextmanager
def staged_folder(out: str | os.PathLike[str], check: Callable[[Path], None] = lambda out: None,
                  kind: str | None = None) -> Iterator[Path]:
    """Yield a new empty folder beside `out` (holding only the marker of `kind`, when given); when the block
    succeeds, it becomes `out`, so that `out` is either all of the new folder or untouched. A folder already at `out` is renamed aside, replaced, then
    deleted, and put back if the replacement fails; `check(out)` runs just before (it may raise to refuse,
    e.g. when `out` appeared meanwhile). On any failure the staging folder is removed. OSErrors pass through."""
    out = Path(out)
    tmp = _beside(out, "tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()  # not mkdtemp: its 0700 mode would make the folder private; mkdir honours the umask
    try:
        if kind is not None:
            mark(tmp, kind)
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
