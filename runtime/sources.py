"""What `vaekit-score` reads: image files, folders of them (recursively) and .npz arrays, streamed
one image at a time so memory never holds more than a chunk, whatever the number of files.

Each image becomes an `Item`: a float32 (C, H, W) image in [0, 1] of the bundle's size, or the reason
it could not be read (the run goes on without it). Files of another size are fitted like the app's
uploads (`images.fit_image`); an .npz must hold images of the bundle's size under `x` or `images`.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .errors import InputError
from .images import IMAGE_SUFFIXES, ImageFileError, Shape, as_image_batch, fit_image, nchw_view

IMAGE_KEYS = ("x", "images")
LABEL_KEYS = ("y", "labels")
CHUNK_BYTES = 32 * 1024 * 1024  # images read (and scored) at once: at most about this many bytes of them


class SourceError(InputError):
    """A path given on the command line that cannot be used at all (missing, or the wrong kind)."""


@dataclass(frozen=True)
class Source:
    """A path to score, and what its images are: None unknown, False normal, True anomalous, or
    "file" for an .npz whose labels say it (`normal_label`: the label of normal images; None: 0/1)."""

    path: Path
    label: bool | str | None = None
    normal_label: int | None = None


@dataclass(frozen=True)
class Item:
    """One image to score (float32 (C, H, W) in [0, 1]) or the reason it could not be read."""

    name: str
    image: np.ndarray | None
    error: str = ""
    anomalous: bool | None = None


def check(source: Source) -> Source:
    """`source` if its path exists and suits its role; else a SourceError naming it."""
    path = source.path
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if source.label == "file" and path.suffix.lower() != ".npz":
        raise SourceError(f"{path}: --labelled takes .npz files holding images (x) and labels (y); use --normal and "
                          "--anomalous for folders")
    return source


def _listing(folder: Path) -> Iterator[os.DirEntry[str]]:
    """The entries of `folder` in name order (OSError when it cannot be listed)."""
    with os.scandir(folder) as entries:
        return iter(sorted(entries, key=lambda e: e.name))


def _walk(folder: Path) -> Iterator[tuple[Path, str]]:
    """(image file, "") for every file with an image suffix under `folder`, in name order, and
    (folder, reason) for a folder that cannot be listed. Symbolic links to folders are not followed; folders
    are walked with a stack of listings, never by recursion, so that no depth of nesting stops the walk."""
    try:
        stack = [_listing(folder)]
    except OSError as e:
        yield folder, f"cannot list the folder: {e.strerror}"
        return
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            try:
                stack.append(_listing(path))
            except OSError as e:
                yield path, f"cannot list the folder: {e.strerror}"
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            yield path, ""


def shown(path: object) -> str:
    """`path` as text that any output can hold: bytes of a file name that are not UTF-8 become \\udcXX escapes."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _member(archive: zipfile.ZipFile, key: str) -> IO[bytes]:
    """The .npy member `key` of an .npz, opened; ImageFileError when numpy could not have written it that way."""
    info = archive.getinfo(f"{key}.npy")
    if info.flag_bits & 0x1:
        raise ImageFileError(f"array {key!r} is encrypted; save the images with np.savez or np.savez_compressed")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ImageFileError(f"array {key!r} is compressed in a way numpy does not write; save the images with "
                             "np.savez or np.savez_compressed")
    return archive.open(info)


def _npz_header(member: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of the .npy member being read, leaving it at the first data byte."""
    version = np.lib.format.read_magic(member)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(member)


def _npz_key(names: list[str]) -> str:
    """The images' key in an .npz: x or images, or its only array."""
    key = next((k for k in IMAGE_KEYS if k in names), names[0] if len(names) == 1 else None)
    if key is None:
        raise ImageFileError(f"holds {', '.join(names) or 'no arrays'}; save the images to score as 'x' (and their "
                             "labels as 'y')")
    return key


def _npz_names(archive: zipfile.ZipFile) -> list[str]:
    return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]


# What a damaged or hostile .npz raises while it is read (zlib.error: corrupt compressed data; NotImplementedError:
# a zip feature or version the zipfile module does not read).
NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def npz_count(path: Path) -> int:
    """How many images an .npz holds (from its header, nothing decoded); 0 when it cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive, _member(archive, _npz_key(_npz_names(archive))) as member:
            shape = _npz_header(member)[0]
        return shape[0] if shape else 0
    except (*NPZ_ERRORS, ImageFileError):
        return 0


def _npz_labels(archive: zipfile.ZipFile, source: Source, n: int) -> np.ndarray:
    """Whether each image of an --labelled .npz is anomalous, from its y/labels (checked from its header first)."""
    key = next((k for k in LABEL_KEYS if k in _npz_names(archive)), None)
    if key is None:
        raise ImageFileError("has no labels: save them as 'y' (0 normal, 1 anomalous) beside the images, or pass "
                             "the file with --normal or --anomalous")
    with _member(archive, key) as member:
        shape, fortran, dtype = _npz_header(member)
        if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) != n:
            raise ImageFileError(f"holds {n} images but labels shaped {shape}")
        member.seek(0)
        labels = np.lib.format.read_array(member, allow_pickle=False).reshape(-1)
    if source.normal_label is not None:
        return labels != source.normal_label
    if not np.isin(labels, (0, 1)).all():
        raise ImageFileError(f"labels must be 0 (normal) or 1 (anomalous), found {np.unique(labels)[:10].tolist()}; "
                             "pass --normal-label V to call images labelled V normal and the rest anomalous")
    return labels.astype(bool)


def _npz_items(source: Source, image_shape: Shape) -> Iterator[Item]:
    """The images of an .npz, read CHUNK_BYTES at a time straight from the archive (never all at once), once
    its header says they are images of the bundle's size (so no size stated there is ever read)."""
    path = source.path
    with zipfile.ZipFile(path) as archive:
        key = _npz_key(_npz_names(archive))
        with _member(archive, key) as member:
            shape, fortran, dtype = _npz_header(member)
            if fortran or dtype.hasobject or not shape:
                raise ImageFileError(f"array {key!r} must be a C-ordered numeric array of images (np.savez(..., "
                                     "x=np.ascontiguousarray(images)))")
            if shape[0] == 0:
                raise ImageFileError(f"array {key!r} holds no images")
            try:
                nchw_view(np.broadcast_to(np.zeros((), dtype), shape), image_shape)  # the header's shape and dtype
            except ValueError as e:
                raise ImageFileError(f"array {key!r}: {e}") from None
            labels = _npz_labels(archive, source, shape[0]) if source.label == "file" else None
            row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
            step = max(1, CHUNK_BYTES // max(1, row_bytes))
            for start in range(0, shape[0], step):
                rows = min(step, shape[0] - start)
                block = np.frombuffer(member.read(rows * row_bytes), dtype=dtype).reshape(rows, *shape[1:])
                try:
                    images = as_image_batch(block, image_shape)
                except ValueError as e:
                    raise ImageFileError(f"array {key!r}: {e}") from None
                for i, image in enumerate(images):
                    anomalous = bool(labels[start + i]) if labels is not None else source.label
                    yield Item(f"{shown(path)}[{start + i}]", image, anomalous=anomalous)


def _file_item(path: Path, source: Source, image_shape: Shape) -> Item:
    try:
        image = fit_image(path, image_shape).transpose(2, 0, 1)
    except ImageFileError as e:
        return Item(shown(path), None, str(e), source.label)
    return Item(shown(path), as_image_batch(image, image_shape)[0], anomalous=source.label)


def items(source: Source, image_shape: Shape) -> Iterator[Item]:
    """Every image of `source` in a stable order (folders: by name, recursively), one at a time."""
    path = source.path
    if path.is_dir():
        for file, reason in _walk(path):
            yield Item(shown(file), None, reason, source.label) if reason else _file_item(file, source, image_shape)
    elif path.suffix.lower() == ".npz":
        try:
            yield from _npz_items(source, image_shape)
        except (*NPZ_ERRORS, ImageFileError) as e:
            reason = str(e) if isinstance(e, ImageFileError) else f"not a readable .npz file ({shown(e)})"
            yield Item(shown(path), None, reason, None if source.label == "file" else source.label)
    else:
        yield _file_item(path, source, image_shape)


def count(source: Source) -> int:
    """How many items `items(source)` will give, cheaply (file names and .npz headers only)."""
    path = source.path
    if path.is_dir():
        return sum(1 for _ in _walk(path))
    return max(1, npz_count(path)) if path.suffix.lower() == ".npz" else 1
