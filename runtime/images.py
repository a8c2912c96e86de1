"""Images in and out of the runtime.

In: uint8 (0-255) or float ([0, 1]) arrays laid out HW, CHW, HWC (one image) or NHW, NCHW, NHWC
(a batch), converted to the float32 NCHW batch in [0, 1] that a bundle's encoder takes; a layout
that fits two ways (square images with as many rows as channels) is read channels-first.
Out: float32 NCHW in [0, 1]; helpers turn them into uint8, Pillow images, grids and PNG files.
Files: `open_image` is the one opener of image files (regular files, a few formats, a pixel cap);
`load_image` and `fit_image` (a bundle's image: centre-cropped, area-averaged) read through it, with a
clear ImageFileError for anything that is not a usable picture.
Pillow is imported only by the helpers that need it.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .checks import numeric_array
from .errors import InputError, MissingExtraError, VaekitError
from .extras import RUNTIME
from .files import atomic_write

if TYPE_CHECKING:
    from PIL import Image as PILImage

Shape = tuple[int, int, int]
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")  # the formats read; Pillow knows far more (EPS runs Ghostscript)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
MAX_PIXELS = 40_000_000  # larger images are refused before they are decoded
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")  # pictures kept grayscale when no channels are asked


class ImageFileError(InputError):
    """A file that cannot be used as an image for a bundle; the message says why."""


def _layouts(shape: Shape) -> list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]]:
    """(name, shape with -1 for any batch size, to-NCHW transform) for every accepted layout."""
    c, h, w = shape
    forms: list[tuple[str, tuple[int, ...], Callable[[np.ndarray], np.ndarray]]] = [
        ("CHW", (c, h, w), lambda x: x[None]),
        ("HWC", (h, w, c), lambda x: x.transpose(2, 0, 1)[None]),
        ("NCHW", (-1, c, h, w), lambda x: x),
        ("NHWC", (-1, h, w, c), lambda x: x.transpose(0, 3, 1, 2)),
    ]
    if c == 1:
        forms[:0] = [("HW", (h, w), lambda x: x[None, None])]
        forms.append(("NHW", (-1, h, w), lambda x: x[:, None]))
    return forms


def _fits(actual: tuple[int, ...], pattern: tuple[int, ...]) -> bool:
    return len(actual) == len(pattern) and all(p in (-1, a) for a, p in zip(actual, pattern))


def _expected(shape: Shape) -> str:
    forms = ", ".join(
        f"{name} ({', '.join('N' if s == -1 else str(s) for s in pat)})" for name, pat, _ in _layouts(shape)
    )
    c, h, w = shape
    kind = "1 channel (grayscale)" if c == 1 else f"{c} channels (RGB)"
    return f"this bundle takes {h}x{w} images with {kind}, shaped as one of: {forms}"


def nchw_view(images: Any, image_shape: Shape) -> np.ndarray:
    """Any accepted image array as an (N, C, H, W) view of the caller's uint8 or float data, no copy:
    dtype and layout are checked here, pixel values chunk by chunk in `to_unit_float32`."""
    arr = numeric_array(images, "images")
    if arr.dtype != np.uint8 and arr.dtype.kind != "f":
        raise InputError(
            f"images must be uint8 (0-255) or float (0-1), got {arr.dtype}; convert with .astype(np.uint8) "
            "for 0-255 values or divide by 255 for floats"
        )
    layout = next((f for name, pat, f in _layouts(image_shape) if _fits(arr.shape, pat)), None)
    if layout is None:
        raise InputError(f"images have shape {arr.shape}, but {_expected(image_shape)}")
    return layout(arr)


def to_unit_float32(batch: np.ndarray) -> np.ndarray:
    """Part of a `nchw_view` as the float32 C-contiguous values in [0, 1] that encoders take."""
    if batch.dtype == np.uint8:
        out = np.ascontiguousarray(batch, dtype=np.float32)
        out /= 255.0
        return out
    if not np.isfinite(batch).all():
        raise InputError("images contain NaN or infinite values; pass finite pixel values in [0, 1]")
    lo, hi = float(batch.min()), float(batch.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(
            f"float images must lie in [0, 1], got values in [{lo:g}, {hi:g}]; divide 0-255 values by 255 "
            "(or pass them as uint8)"
        )
    return np.ascontiguousarray(batch, dtype=np.float32)


def as_image_batch(images: Any, image_shape: Shape) -> np.ndarray:
    """Any accepted image array as one float32 C-contiguous (N, C, H, W) batch in [0, 1]."""
    return to_unit_float32(nchw_view(images, image_shape))


def to_uint8(images: Any) -> np.ndarray:
    """Float images in [0, 1] (any layout) as uint8 0-255, rounded; uint8 input comes back as is."""
    arr = numeric_array(images, "images")
    if arr.dtype == np.uint8:
        return arr
    if not np.isfinite(arr).all():
        raise InputError("images contain NaN or infinite values; cannot convert them to uint8")
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def _hwc(image: Any) -> np.ndarray:
    """One image, HW, CHW or HWC (channels first when the first axis has 1 or 3 entries), as HWC uint8."""
    arr = to_uint8(image)
    if arr.ndim == 2:
        return arr[:, :, None]
    if arr.ndim == 3 and arr.shape[0] in (1, 3):
        return arr.transpose(1, 2, 0)
    if arr.ndim == 3 and arr.shape[2] in (1, 3):
        return arr
    raise InputError(f"expected one image shaped HW, CHW or HWC with 1 or 3 channels, got shape {arr.shape}")


def make_grid(images: Any, nrow: int = 8, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """A batch (N, C, H, W) (float [0, 1] or uint8) tiled `nrow` per row as one HWC uint8 image."""
    arr = to_uint8(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise InputError(f"make_grid expects images shaped (N, C, H, W) with C in (1, 3), got {arr.shape}")
    if nrow < 1 or padding < 0 or not 0 <= pad_value <= 255:
        raise InputError(f"make_grid needs nrow >= 1, padding >= 0, pad_value in 0-255; got {nrow}, {padding}, {pad_value}")
    n, c, h, w = arr.shape
    cols, rows = min(nrow, n), -(-n // nrow)
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), pad_value, np.uint8)
    for i, img in enumerate(arr):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[top : top + h, left : left + w] = img.transpose(1, 2, 0)
    return grid


def upscale(image: Any, factor: int) -> np.ndarray:
    """One image (HW, CHW or HWC) as HWC uint8, `factor` times larger by nearest-neighbour repetition."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise InputError(f"the upscaling factor must be an integer >= 1, got {factor!r}")
    return _hwc(image).repeat(factor, axis=0).repeat(factor, axis=1)


def _pil() -> Any:
    """The PIL.Image module, or an ImportError saying how to get it."""
    try:
        from PIL import Image
    except ImportError:
        raise MissingExtraError(f"this needs Pillow, which is not installed: {RUNTIME}") from None
    return Image


def to_pil(image: Any) -> PILImage.Image:
    """One image (HW, CHW or HWC; float [0, 1] or uint8) as a Pillow image, mode L or RGB."""
    hwc = _hwc(image)
    return _pil().fromarray(hwc[:, :, 0] if hwc.shape[2] == 1 else hwc)


def save_png(image: Any, path: str | os.PathLike[str]) -> Path:
    """Write one image (see `to_pil`) as a PNG, atomically (temporary file, then rename)."""
    picture = to_pil(image)
    try:
        return atomic_write(path, lambda f: picture.save(f, format="PNG"))
    except OSError as e:
        raise VaekitError(f"cannot write {path}: {e.strerror or e}; choose another path") from e


def _regular_file(path: str | os.PathLike[str]) -> IO[bytes]:
    """`path` opened for reading if it is a regular file. Opened without blocking and checked on the open file
    itself, so that a FIFO or a device named like an image is refused rather than hanging the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as e:
        raise ImageFileError(f"cannot open the file: {e.strerror or e}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageFileError("not a regular file (a folder, pipe or device); pass an image file")
    return os.fdopen(fd, "rb")


@contextmanager
def open_image(path: str | os.PathLike[str]) -> Iterator[PILImage.Image]:
    """The image file at `path` as a lazily decoded Pillow image: the one opener that the runtime, the app and
    training use. Refused with ImageFileError: anything but a regular file, a format outside IMAGE_FORMATS
    (Pillow knows far more, EPS runs Ghostscript), and images over MAX_PIXELS, before they are decoded."""
    image = _pil()
    with _regular_file(path) as file:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", image.DecompressionBombWarning)  # the size check below is stricter
                picture = image.open(file, formats=IMAGE_FORMATS)
        except image.DecompressionBombError:
            raise ImageFileError(f"the image is far too large (over {2 * image.MAX_IMAGE_PIXELS / 1e6:.0f} "
                                 f"megapixels); the limit is {MAX_PIXELS / 1e6:.0f} megapixels: downscale it "
                                 "first") from None
        except (OSError, ValueError, SyntaxError, EOFError):  # UnidentifiedImageError is an OSError
            raise ImageFileError("this file is not an image vaekit can read: use a PNG, JPEG, GIF, BMP or WebP "
                                 "picture") from None
        with picture:
            width, height = picture.size
            if width * height > MAX_PIXELS:
                raise ImageFileError(f"the image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
                                     f"the limit is {MAX_PIXELS / 1e6:.0f} megapixels: downscale it first")
            if width * height == 0:
                raise ImageFileError("the image has no pixels (its width or height is 0); pass a real picture")
            yield picture


def _eight_bit(picture: PILImage.Image) -> PILImage.Image:
    """A 16- or 32-bit integer grayscale picture scaled to 8-bit L (Pillow's own conversion clips at 255)."""
    if picture.mode != "I" and not picture.mode.startswith("I;16"):
        return picture
    values = np.asarray(picture).astype(np.int64)
    return _pil().fromarray(np.clip((values * 255 + 32767) // 65535, 0, 255).astype(np.uint8), mode="L")


def load_image(path: str | os.PathLike[str], channels: int | None = None,
               size: tuple[int, int] | None = None) -> np.ndarray:
    """The image file at `path` (through `open_image`) as uint8 (H, W, C): its first frame, turned as its EXIF
    says, 16-bit grayscale scaled to 8 bits, with `channels` channels (1: grayscale, 3: RGB, None: grayscale
    pictures stay grayscale, others become RGB), and when `size` (H, W) is given centre-cropped to that aspect
    ratio and resized by area averaging. Transparency is dropped (a pixel keeps the colour stored under it).
    Anything unusable is an ImageFileError saying why."""
    from PIL import Image, ImageOps

    with open_image(path) as picture:
        mode = {1: "L", 3: "RGB"}.get(channels or 0, "L" if picture.mode in GRAY_MODES else "RGB")
        try:
            if size is not None:
                picture.draft(mode, size[::-1])  # JPEG: decode at a reduced scale, much faster for photos
            picture = _eight_bit(ImageOps.exif_transpose(picture)).convert(mode)
            if size is not None:
                picture = ImageOps.fit(picture, size[::-1], method=Image.Resampling.BOX)
            pixels = np.asarray(picture, dtype=np.uint8)
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError):
            raise ImageFileError("this image file is damaged or truncated and cannot be decoded") from None
    return pixels.reshape(*pixels.shape[:2], 1 if mode == "L" else 3)


def fit_image(path: str | os.PathLike[str], image_shape: Shape) -> np.ndarray:
    """The image file at `path` as uint8 (H, W, C) for a bundle of `image_shape` (C, H, W), see `load_image`."""
    channels, height, width = image_shape
    return load_image(path, channels, (height, width))
