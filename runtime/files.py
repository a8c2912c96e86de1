"""Files that matter, written atomically: a temporary file beside the target, then a rename, so that a
reader sees the old file or the new one, never half of one. New files get the usual mode (0666 less the
umask, e.g. 0644), where `tempfile.mkstemp` would make them private (0600).

Standard library only: every part of vaekit (train, export, runtime, ui, benchmarks) writes through here.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
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
