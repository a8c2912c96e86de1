"""Images as the page shows them: tiled, enlarged by whole factors with nearest-neighbour pixels (an 8x8
digit stays sharp squares, never a blur), and interpolations as looping GIFs."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from vaekit.runtime import make_grid, to_pil, upscale
from vaekit.runtime.files import write_bytes

SINGLE_PX = 320  # about how wide one enlarged image is drawn
GRID_PX = 560  # about how wide a grid is drawn
STRIP_PX = 800  # about how wide an interpolation strip is drawn
PADDING, PAD_VALUE = 1, 128  # grey lines between tiles, visible on black and on white backgrounds
GIF_FRAME_MS = 120
# zlib level of the PNGs gradio writes for the page: level 1 encodes faster than Pillow's default for slightly larger
# files (docs/app.md). Set on each image as its `encoderinfo`, which Pillow's save reads.
PNG_LEVEL = 1
RESULTS_BYTES = 64 * 1024 * 1024  # the GIFs kept for the page at most; the oldest go first


def factor_for(size: int, target: int) -> int:
    """The whole enlargement factor that brings `size` pixels closest to `target` (at least 1)."""
    return max(1, round(target / size))


def enlarge(image: Any, target: int = SINGLE_PX) -> PILImage.Image:
    """One image (HW, CHW or HWC) as a Pillow image (L or RGB), enlarged by a whole factor to about
    `target` pixels wide."""
    hwc = upscale(image, 1)  # any accepted layout as HWC uint8
    picture = to_pil(upscale(hwc, factor_for(max(hwc.shape[:2]), target)))
    picture.encoderinfo = {"compress_level": PNG_LEVEL}
    return picture


def tile(images: np.ndarray, nrow: int, target: int = GRID_PX) -> PILImage.Image:
    """A batch (N, C, H, W) tiled `nrow` per row with thin grey lines, enlarged to about `target` pixels."""
    return enlarge(make_grid(images, nrow=nrow, padding=PADDING, pad_value=PAD_VALUE), target)


def gif_bytes(images: np.ndarray, target: int = SINGLE_PX) -> bytes:
    """A batch (N, C, H, W) as a looping GIF that plays forwards then backwards, frames enlarged."""
    frames = [enlarge(image, target) for image in images]
    frames += frames[-2:0:-1]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=GIF_FRAME_MS, loop=0,
                   optimize=False)
    return buffer.getvalue()


def write_once(data: bytes, folder: str | os.PathLike[str], name: str, budget: int = RESULTS_BYTES) -> Path:
    """`data` stored as `folder`/<sha256>/`name`, atomically, written only if not already there: the same
    request twice takes no more disk, and the oldest results go once `folder` holds over `budget` bytes."""
    target = Path(folder) / hashlib.sha256(data).hexdigest() / name
    try:
        os.utime(target)  # handed out again: renew its age, since the cache cleaner deletes old files
        return target
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(target, data)
    prune(Path(folder), budget, keep=target.parent)
    return target


def prune(folder: Path, budget: int, keep: Path) -> None:
    """Delete `folder`'s oldest result folders (all but `keep`) until its files take at most `budget` bytes."""
    results = []
    for entry in folder.iterdir():
        try:
            files = [f.stat() for f in entry.iterdir()]
        except OSError:  # removed meanwhile by another call or the cache cleaner
            continue
        results.append((max((f.st_mtime for f in files), default=0.0), sum(f.st_size for f in files), entry))
    total = sum(size for _, size, _ in results)
    for _, size, entry in sorted(results, key=lambda r: r[0]):
        if total <= budget:
            break
        if entry != keep:
            shutil.rmtree(entry, ignore_errors=True)
            total -= size
