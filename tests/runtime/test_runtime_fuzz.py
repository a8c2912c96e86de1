"""Property-based fuzzing of the readers a user feeds (`.npz` files, image files, folder walks): whatever the
bytes or the tree, each bad input is one VaekitError (or one reported row), never another exception, a hang, a
huge allocation or a changed file."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vaekit.runtime import sources
from vaekit.runtime.errors import VaekitError
from vaekit.runtime.images import load_image
from vaekit.runtime.sources import Source

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SHAPE = (1, 8, 8)


def _picture(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (9, 7, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _npz(compressed: bool) -> bytes:
    buffer = io.BytesIO()
    x = np.random.default_rng(0).integers(0, 255, (3, *SHAPE[1:]), dtype=np.uint8)
    (np.savez_compressed if compressed else np.savez)(buffer, x=x, y=np.array([0, 1, 0]))
    return buffer.getvalue()


PICTURES = {fmt: _picture(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP")}
ARCHIVES = [_npz(False), _npz(True)]


@st.composite
def damaged(draw: st.DrawFn, originals: list[bytes]) -> bytes:
    """One of `originals` with a few bytes flipped, cut out or inserted (or, now and then, random bytes)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=600))
    data = bytearray(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        edit = draw(st.sampled_from(["flip", "cut", "insert"]))
        if edit == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "cut":
            del data[at:at + draw(st.integers(1, 80))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=24))
    return bytes(data)


@st.composite
def lying_npz(draw: st.DrawFn) -> bytes:
    """An .npz whose x.npy header states any shape and dtype, over too few bytes, stored or deflated."""
    shape = tuple(draw(st.lists(st.integers(0, 2**40), max_size=4)))
    descr = draw(st.sampled_from(["|u1", "<f4", "<f8", "<i8", "|b1", "<U3", "|V8", "|O"]))
    header = {"descr": descr, "fortran_order": draw(st.booleans()), "shape": shape}
    text = repr(header).encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    npy = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + draw(st.binary(max_size=256))
    buffer = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buffer, "w", method) as archive:
        archive.writestr("x.npy", npy)
    return buffer.getvalue()


def _read_all(path: Path, label: bool | str | None = None) -> list[sources.Item]:
    source = Source(path, label)
    found = list(sources.items(source, SHAPE))
    assert all((item.image is None) == bool(item.error) for item in found)
    assert all(item.image is None or item.image.shape == SHAPE for item in found)
    return found


@pytest.mark.timeout(120)
@FUZZ
@given(data=st.one_of(damaged(ARCHIVES), lying_npz()), labelled=st.booleans())
def test_npz_files(tmp_path: Path, data: bytes, labelled: bool) -> None:
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    found = _read_all(path, "file" if labelled else None)
    assert found and sources.npz_count(path) >= 0
    assert path.read_bytes() == data


@pytest.mark.timeout(120)
@FUZZ
@given(data=damaged(list(PICTURES.values())), channels=st.sampled_from([None, 1, 3]),
       size=st.sampled_from([None, (8, 8), (3, 11)]))
def test_image_files(tmp_path: Path, data: bytes, channels: int | None, size: tuple[int, int] | None) -> None:
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    try:
        image = load_image(path, channels, size)
    except VaekitError as e:
        assert "\n" not in str(e)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (1, 3)
        assert size is None or image.shape[:2] == size
    assert path.read_bytes() == data


NAMES = st.one_of(st.sampled_from(["a.png", "b.PNG", "c.jpg", "d.npz", "e.txt", "sub", ".hidden.png"]),
                  st.binary(min_size=1, max_size=8).filter(lambda b: b"/" not in b and b"\0" not in b
                                                           and b not in (b".", b"..")).map(lambda b: b + b".png"))
KINDS = st.sampled_from(["picture", "junk", "folder", "fifo", "link-up", "link-self", "link-nowhere", "empty"])


@pytest.mark.timeout(120)
@FUZZ
@given(tree=st.lists(st.tuples(st.integers(0, 5), NAMES, KINDS), max_size=14))
def test_folder_walks(tmp_path_factory: pytest.TempPathFactory, tree: list[tuple[int, bytes | str, str]]) -> None:
    """Any tree of pictures, junk, FIFOs, links (to a parent, to themselves, to nothing) and odd names: the walk
    ends, gives every image-named file once and `count` agrees with it."""
    root = tmp_path_factory.mktemp("walk")
    folders = [root]
    for parent, name, kind in tree:
        where = Path(os.fsdecode(os.path.join(os.fsencode(folders[parent % len(folders)]), os.fsencode(name))))
        if where.exists() or where.is_symlink():
            continue
        if kind == "folder":
            where.mkdir()
            folders.append(where)
        elif kind == "picture":
            where.write_bytes(PICTURES["PNG"])
        elif kind == "junk":
            where.write_bytes(b"junk")
        elif kind == "fifo":
            os.mkfifo(where)
        elif kind == "empty":
            where.touch()
        else:
            target = {"link-up": root, "link-self": where, "link-nowhere": root / "nowhere"}[kind]
            where.symlink_to(target)
    found = _read_all(root)
    assert len(found) == sources.count(Source(root))
    assert len({item.name for item in found}) == len(found)
