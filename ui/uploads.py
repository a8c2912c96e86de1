"""Uploaded image files -> the uint8 HWC arrays a bundle takes, with a clear message for anything else.

A file argument comes from a client as a path. `UploadFolder.path_of` is the one check that such a path
names a file the server made (gradio's upload of it, inside this app's upload folder): a client naming any
other file on the server (a bare `{"path": ...}` skips gradio's own check) is refused with one message that
tells nothing about that file. An upload may then be any file a visitor drops on the page: not an image,
an image of 100 megapixels, an animated GIF, a transparent PNG. Each either becomes an image of the bundle's
size (the runtime's `fit_image`: centre-cropped to its aspect ratio, then area-averaged down or up) or
raises UploadError saying what to do instead. On top of `fit_image`, uploads are capped in bytes.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.runtime.images import ImageFileError, fit_image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # what the server accepts at all (gradio's max_file_size)
UPLOAD_DIR = re.compile(r"[0-9a-f]{32,128}")  # gradio stores each upload as <folder>/<content hash>/<name>
NOT_AN_UPLOAD = ("this file was not uploaded to this app; upload the image (the page does it, and "
                 "gradio_client's handle_file) instead of naming a path on the server")
EXPIRED = "the uploaded file is gone (it expired); upload it again"


class UploadError(ImageFileError):
    """An uploaded file that cannot be used as an image for this bundle; the message says why."""


@dataclass(frozen=True)
class UploadFolder:
    """Where gradio keeps this app's uploads (`root`), and the folders in it that hold no uploads (`blocked`:
    the bundle, when it lies there)."""

    root: Path
    blocked: tuple[Path, ...] = ()

    def path_of(self, payload: Any) -> str | None:
        """The server path of a file argument as gradio passes it unprocessed (a FileData dict or a path), or
        None when there is none; UploadError unless it is a regular file that gradio's upload route wrote."""
        path = payload.get("path") if isinstance(payload, dict) else payload
        if path is None or path == "":
            return None
        if not isinstance(path, str):
            raise UploadError(NOT_AN_UPLOAD)
        try:
            where = Path(path).resolve()
        except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
            raise UploadError(NOT_AN_UPLOAD) from None
        root = self.root.resolve()
        if (where.parent.parent != root or not UPLOAD_DIR.fullmatch(where.parent.name)
                or any(where.is_relative_to(b.resolve()) for b in self.blocked)):
            raise UploadError(NOT_AN_UPLOAD)
        try:
            mode = os.lstat(where).st_mode
        except OSError:
            raise UploadError(EXPIRED) from None
        if not stat.S_ISREG(mode):
            raise UploadError(NOT_AN_UPLOAD)
        return str(where)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def read_upload(path: str | os.PathLike[str], image_shape: tuple[int, int, int]) -> np.ndarray:
    """The uploaded file at `path` as uint8 (H, W, C) for a bundle of `image_shape` (C, H, W), see `fit_image`."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UploadError(EXPIRED) from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is {_mb(size)}; the limit is {_mb(MAX_UPLOAD_BYTES)}: upload a smaller image")
    try:
        return fit_image(path, image_shape)
    except ImageFileError as e:
        raise UploadError(str(e)) from None
