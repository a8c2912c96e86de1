"""Uploaded image files -> the uint8 HWC arrays a bundle takes, with a clear message for anything else.

An upload may be any file a visitor drops on the page: not an image, an image of 100 megapixels, an
animated GIF, a transparent PNG. Each either becomes an image of the bundle's size (the runtime's
`fit_image`: centre-cropped to its aspect ratio, then area-averaged down or up) or raises UploadError
saying what to do instead. On top of `fit_image`, uploads are capped in bytes.
"""

from __future__ import annotations

import os

import numpy as np

from vaekit.runtime.images import ImageFileError, fit_image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # what the server accepts at all (gradio's max_file_size)


class UploadError(ImageFileError):
    """An uploaded file that cannot be used as an image for this bundle; the message says why."""


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def read_upload(path: str | os.PathLike[str], image_shape: tuple[int, int, int]) -> np.ndarray:
    """The uploaded file at `path` as uint8 (H, W, C) for a bundle of `image_shape` (C, H, W), see `fit_image`."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UploadError("the uploaded file is gone (it expired); upload it again") from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is {_mb(size)}; the limit is {_mb(MAX_UPLOAD_BYTES)}: upload a smaller image")
    try:
        return fit_image(path, image_shape)
    except ImageFileError as e:
        raise UploadError(str(e)) from None
