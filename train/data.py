"""Image data sources, held in memory as uint8 arrays shaped (N, C, H, W).

Sources: the built-in `digits` (scikit-learn's bundled 8x8 handwritten digits), `emoji` (colour
images rendered from Debian's emoji font, see `emoji.py`), `.npz` files, MNIST-format IDX files
(plain or gzipped) and folders of PNG/JPEG/WebP images (read into one preallocated uint8 array). Each load returns
a training split and a held-out split: the file's own test split where it has one, else a seeded
fraction of the images.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from vaekit.runtime.images import ImageFileError, load_image
from vaekit.runtime.sources import NPZ_ERRORS

from . import emoji
from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
IDX_DTYPES = {0x08: np.uint8}


@dataclass
class Data:
    """Training and held-out images, uint8 (N, C, H, W), and where they came from."""

    train: np.ndarray
    test: np.ndarray
    source: str
    skipped: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])  # type: ignore[return-value]


def load_data(
    source: str | Path = "digits",
    *,
    image_size: int | None = None,
    channels: int | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
    skip_bad_images: bool = False,
    progress: bool = False,
) -> Data:
    """Load `source` ('digits', 'emoji', an .npz, an IDX file or an image folder) with its held-out split;
    `progress` shows a bar while a folder is read or the emoji are drawn."""
    if str(source) == "digits":
        return _split(_to_nchw(_digits(), "digits"), None, "digits (scikit-learn)", test_fraction, seed)
    if str(source) == "emoji":
        size = image_size or emoji.DEFAULT_SIZE
        try:
            images = emoji.emoji_images(size, channels or 3, progress=progress)
        except emoji.FontMissing as e:
            raise DataError(str(e)) from None
        return _split(images, None, f"emoji (Noto Color Emoji, {size}x{size})", test_fraction, seed)
    path = Path(source)
    if not path.exists():
        raise DataError(f"data path {str(path)!r} does not exist; pass an .npz, an IDX file, an image folder or 'digits'")
    if path.is_dir():
        images, skipped = _read_folder(path, image_size, channels, skip_bad_images, progress)
        data = _split(images, None, f"image folder {path}", test_fraction, seed)
        data.skipped = skipped
        return data
    name = path.name.lower()
    if name.endswith(".npz"):
        train, test = _read_npz(path)
    elif "idx" in name or name.endswith("-ubyte") or name.endswith("-ubyte.gz"):
        train, test = _read_idx(path), None
    else:
        raise DataError(f"{path}: unknown data file type; use an .npz, an IDX file (e.g. train-images-idx3-ubyte[.gz]) or a folder of images")
    return _split(_to_nchw(train, path.name), None if test is None else _to_nchw(test, path.name), path.name,
                  test_fraction, seed)


def pixel_means(images: np.ndarray) -> np.ndarray:
    """Each pixel's mean over uint8 images (N, C, H, W), in [0, 1], shaped (C, H, W): summed exactly in int64, which
    numpy casts to in small buffers (no float copy of the data is made)."""
    return images.sum(0, dtype=np.int64) / (255.0 * len(images))


def _digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    x = load_digits().images  # float 0..16, (1797, 8, 8)
    return np.round(x * (255.0 / 16.0)).astype(np.uint8)


def _split(train: np.ndarray, test: np.ndarray | None, source: str, fraction: float, seed: int) -> Data:
    """Use the given test split, or hold out a seeded `fraction` of `train` (both uint8 (N, C, H, W))."""
    if test is not None:
        if test.shape[1:] != train.shape[1:]:
            raise DataError(f"{source}: test images are {test.shape[1:]} but training images are {train.shape[1:]}")
        return Data(train, test, source)
    if not 0 < fraction < 1:
        raise DataError(f"test fraction must be between 0 and 1, got {fraction}")
    n_test = max(1, int(round(len(train) * fraction)))
    if len(train) - n_test < 1:
        raise DataError(f"{source}: only {len(train)} image(s); need at least 2 to hold some out for evaluation")
    order = np.random.default_rng(seed).permutation(len(train))
    return Data(train[order[n_test:]], train[order[:n_test]], source)


def _to_nchw(x: np.ndarray, source: str) -> np.ndarray:
    """uint8 (N, H, W) or (N, H, W, C) -> (N, C, H, W); anything else is refused."""
    if x.dtype != np.uint8:
        raise DataError(f"{source}: images must be uint8 (0..255), got {x.dtype}; convert with "
                        "(x * 255).astype(np.uint8) if they are floats in [0, 1]")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: expected images shaped (N, H, W) or (N, H, W, C) with C 1 or 3, got {x.shape}")
    if len(x) == 0:
        raise DataError(f"{source}: holds no images")
    return np.ascontiguousarray(x)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            if "x_train" in keys:
                return f["x_train"], f["x_test"] if "x_test" in keys else None
            if "x" in keys:
                return f["x"], None
    except (*NPZ_ERRORS, RuntimeError) as e:  # RuntimeError: an encrypted member
        raise DataError(f"{path}: not a readable .npz file ({type(e).__name__}: {e}); save the arrays with np.savez or "
                        "np.savez_compressed") from e
    raise DataError(f"{path}: has arrays {sorted(keys)}; expected 'x_train' (and optionally 'x_test') or a single 'x'")


def _read_idx(path: Path) -> np.ndarray:
    """An MNIST-format IDX file of unsigned bytes, (N, H, W) or (N, H, W, C)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = raw[2], raw[3]
    if dtype not in IDX_DTYPES:
        raise DataError(f"{path}: IDX element type 0x{dtype:02x} is not supported; images must be unsigned bytes (0x08)")
    if ndim not in (3, 4):
        raise DataError(f"{path}: IDX file has {ndim} dimensions; image files have 3 (N, H, W) — is this a label file?")
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path}: truncated IDX file: header says {shape} ({expected} bytes), found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_folder(
    root: Path, image_size: int | None, channels: int | None, skip_bad: bool, progress: bool = False
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Every image under `root`, resized by `_load_image`, into one uint8 (N, C, H, W) array allocated
    at the first image's shape; unreadable ones raise or are skipped."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root}: no images found (searched recursively for {', '.join(IMAGE_SUFFIXES)})")
    images: np.ndarray | None = None
    skipped: list[str] = []
    first = files[0]
    n = 0
    for p in tqdm(files, desc="reading images", unit="image", disable=not progress):
        try:
            image = _load_image(p, image_size, channels).transpose(2, 0, 1)
        except DataError:
            if not skip_bad:
                raise
            skipped.append(str(p))
            continue
        if images is None:
            images, first = np.empty((len(files), *image.shape), dtype=np.uint8), p
        elif image.shape != images.shape[1:]:
            raise DataError(f"{root}: images have mixed shapes ({first} is {images.shape[1:]}, {p} is {image.shape}, "
                            "as C, H, W); pass --image-size N (and --channels 1 or 3) to make them uniform")
        images[n] = image
        n += 1
    if images is None:
        raise DataError(f"{root}: none of the {len(files)} images could be read")
    return images[:n], tuple(skipped)


def _load_image(path: Path, size: int | None, channels: int | None) -> np.ndarray:
    """One image as uint8 (H, W, C), read as the runtime reads it (`load_image`: the same opener, checks and
    resize rule, so a model trains on what it is later shown): centre-cropped to a square, area-averaged to `size`."""
    try:
        return load_image(path, channels, None if size is None else (size, size))
    except ImageFileError as e:
        raise DataError(f"{path}: {e}; fix or remove it, or pass --skip-bad-images") from e
