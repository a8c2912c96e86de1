"""Uploaded image files -> the uint8 HWC arrays a bundle takes, with a clear message for anything else.

An upload may be any file a visitor drops on the page: not an image, an image of 100 megapixels, an
animated GIF, a transparent PNG. Each either becomes an image of the bundle's size (centre-cropped to
its aspect ratio, then area-averaged down or up) or raises UploadError saying what to do instead.
Transparency is dropped: a transparent pixel takes the colour stored under it (a model has no alpha).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vaekit.runtime.errors import VaekitError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # what the server accepts at all (gradio's max_file_size)
MAX_PIXELS = 40_000_000  # larger images are refused before they are decoded
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # the formats the app reads; Pillow knows far more


class UploadError(VaekitError, ValueError):
    """An uploaded file that cannot be used as an image for this bundle; the message says why."""


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def _open(path: str | os.PathLike[str]) -> Image.Image:
    """The file as a lazily decoded Pillow image, or UploadError when it is not an image."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise UploadError("the uploaded file is gone (it expired); upload it again") from None
    if size > MAX_UPLOAD_BYTES:
        raise UploadError(f"the file is {_mb(size)}; the limit is {_mb(MAX_UPLOAD_BYTES)}: upload a smaller image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below is stricter
            picture = Image.open(path, formats=FORMATS)  # not every format Pillow knows (EPS runs Ghostscript)
    except Image.DecompressionBombError:
        raise UploadError(f"the image is far too large (over {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels); "
                          f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels: downscale it first") from None
    except (UnidentifiedImageError, OSError):
        raise UploadError("this file is not an image this app can read: upload a PNG, JPEG, GIF, BMP or WebP "
                          "picture") from None
    width, height = picture.size
    if width * height > MAX_PIXELS:
        picture.close()
        raise UploadError(f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit "
                          f"is {MAX_PIXELS / 1e6:.0f} megapixels: downscale it first")
    return picture


def read_upload(path: str | os.PathLike[str], image_shape: tuple[int, int, int]) -> np.ndarray:
    """The image file at `path` as uint8 (H, W, C) for a bundle of `image_shape` (C, H, W): its first frame,
    grayscale or RGB, centre-cropped to the bundle's aspect ratio and resized by area averaging."""
    channels, height, width = image_shape
    mode = "L" if channels == 1 else "RGB"
    with _open(path) as picture:
        try:
            picture.draft(mode, (width, height))  # JPEG: decode at a reduced scale, much faster for photos
            picture = ImageOps.exif_transpose(picture).convert(mode)
        except (OSError, ValueError, SyntaxError):
            raise UploadError("this image file is damaged or truncated and cannot be decoded; upload another "
                              "copy") from None
        fitted = ImageOps.fit(picture, (width, height), method=Image.Resampling.BOX)
    return np.asarray(fitted, dtype=np.uint8).reshape(height, width, channels)
