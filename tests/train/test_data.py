"""Every data source, and every bad input with the message a user sees."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit.train import emoji
from vaekit.train.data import DataError, load_data


def _idx(images: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape) + images.tobytes()


def test_digits_is_built_in_and_split() -> None:
    data = load_data("digits", seed=0)
    assert data.train.dtype == np.uint8 and data.train.shape[1:] == (1, 8, 8)
    assert len(data.train) + len(data.test) == 1797 and len(data.test) == 180
    assert data.train.max() == 255
    again = load_data("digits", seed=0)
    np.testing.assert_array_equal(data.test, again.test)  # the held-out split is seeded
    assert not np.array_equal(load_data("digits", seed=1).test, data.test)


def test_npz_with_test_split(tiny_npz: Path) -> None:
    data = load_data(tiny_npz)
    assert data.train.shape == (80, 1, 8, 8) and data.test.shape == (16, 1, 8, 8)


def test_npz_single_array_nhwc_rgb(tmp_path: Path) -> None:
    x = np.random.default_rng(0).integers(0, 256, (20, 4, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "rgb.npz", x=x)
    data = load_data(tmp_path / "rgb.npz", test_fraction=0.25)
    assert data.train.shape == (15, 3, 4, 4) and data.test.shape == (5, 3, 4, 4)
    np.testing.assert_array_equal(np.sort(np.concatenate([data.train, data.test]).ravel()),
                                  np.sort(x.transpose(0, 3, 1, 2).ravel()))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_files(tmp_path: Path, gz: bool) -> None:
    x = np.random.default_rng(0).integers(0, 256, (30, 6, 6), dtype=np.uint8)
    path = tmp_path / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(_idx(x)) if gz else _idx(x))
    data = load_data(path)
    assert data.train.shape[1:] == (1, 6, 6) and len(data.train) + len(data.test) == 30


def test_image_folder_recursive_resized(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for i, (fmt, size) in enumerate([("png", (20, 10)), ("jpeg", (12, 12)), ("webp", (9, 16))]):
        Image.new("RGB", size, (i * 60, 10, 200)).save(tmp_path / "a" / ("b" if i else "") / f"im{i}.{fmt}")
    data = load_data(tmp_path, image_size=8, channels=3, test_fraction=0.34)
    assert data.train.shape[1:] == (3, 8, 8) and len(data.train) + len(data.test) == 3
    gray = load_data(tmp_path, image_size=4, channels=1, test_fraction=0.34)
    assert gray.train.shape[1:] == (1, 4, 4)


def test_missing_path() -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data("/nonexistent/images")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no images found"):
        load_data(tmp_path)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="no images found"):
        load_data(tmp_path)


def test_truncated_image_named_and_skippable(tmp_path: Path) -> None:
    for i in range(3):
        Image.new("L", (8, 8), i * 50).save(tmp_path / f"ok{i}.png")
    good = (tmp_path / "ok0.png").read_bytes()
    (tmp_path / "bad.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"bad\.png.*--skip-bad-images"):
        load_data(tmp_path)
    data = load_data(tmp_path, skip_bad_images=True, test_fraction=0.34)
    assert len(data.train) + len(data.test) == 3
    assert data.skipped == (str(tmp_path / "bad.png"),)


def test_mixed_channels_need_channels_flag(tmp_path: Path) -> None:
    Image.new("L", (8, 8), 10).save(tmp_path / "gray.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="mixed shapes.*--channels"):
        load_data(tmp_path)
    assert load_data(tmp_path, channels=1, test_fraction=0.5).train.shape[1:] == (1, 8, 8)


def test_mixed_sizes_need_image_size(tmp_path: Path) -> None:
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    Image.new("L", (9, 9)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="--image-size"):
        load_data(tmp_path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((4, 8, 8), np.float32), "must be uint8"),
        (np.zeros((4, 64), np.uint8), r"expected images shaped"),
        (np.zeros((4, 8, 8, 2), np.uint8), r"expected images shaped"),
        (np.zeros((0, 8, 8), np.uint8), "holds no images"),
    ],
)
def test_bad_arrays(tmp_path: Path, array: np.ndarray, message: str) -> None:
    np.savez(tmp_path / "bad.npz", x=array)
    with pytest.raises(DataError, match=message):
        load_data(tmp_path / "bad.npz")


def test_npz_without_known_keys(tmp_path: Path) -> None:
    np.savez(tmp_path / "odd.npz", images=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match=r"expected 'x_train'.*'x'"):
        load_data(tmp_path / "odd.npz")


def test_corrupt_npz_and_idx(tmp_path: Path) -> None:
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="junk.npz"):
        load_data(tmp_path / "junk.npz")
    x = np.zeros((10, 4, 4), np.uint8)
    (tmp_path / "t-idx3-ubyte").write_bytes(_idx(x)[:-5])
    with pytest.raises(DataError, match="truncated IDX"):
        load_data(tmp_path / "t-idx3-ubyte")
    (tmp_path / "labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"\x00\x01\x02")
    with pytest.raises(DataError, match="label file"):
        load_data(tmp_path / "labels-idx1-ubyte")


def test_unknown_file_type(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("1,2,3")
    with pytest.raises(DataError, match="unknown data file type"):
        load_data(tmp_path / "data.csv")


needs_emoji_font = pytest.mark.skipif(not emoji.FONT.is_file(),
                                      reason=f"{emoji.FONT} missing: apt-get install fonts-noto-color-emoji")


@needs_emoji_font
def test_emoji_are_distinct_colour_images() -> None:
    data = load_data("emoji", image_size=16, seed=0)
    images = np.concatenate([data.train, data.test])
    assert images.dtype == np.uint8 and images.shape[1:] == (3, 16, 16) and len(images) > 1000
    assert data.source == "emoji (Noto Color Emoji, 16x16)"
    assert images.reshape(len(images), -1).std(axis=1).min() > 0  # each draws something
    colourful = np.abs(images[:, 0].astype(int) - images[:, 2]).max(axis=(1, 2))
    assert np.mean(colourful > 64) > 0.5  # colour, not grey


@needs_emoji_font
def test_emoji_folder_script(tmp_path: Path) -> None:
    assert emoji.main([str(tmp_path / "emoji"), "--size", "8", "--background", "black"]) == 0
    data = load_data(tmp_path / "emoji", test_fraction=0.1)
    assert data.train.shape[1:] == (3, 8, 8) and len(data.train) + len(data.test) > 1000


def test_emoji_without_the_font_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(emoji, "FONT", tmp_path / "missing.ttf")
    with pytest.raises(DataError, match="apt-get install fonts-noto-color-emoji"):
        load_data("emoji")


def test_folder_is_read_into_one_uint8_array_with_a_progress_bar(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (12, 6, 10, 3), dtype=np.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"{i:02d}.png")
    data = load_data(tmp_path, test_fraction=0.25, progress=True)
    assert "reading images" in capsys.readouterr().err
    both = np.concatenate([data.train, data.test])
    assert both.dtype == np.uint8 and both.shape == (12, 3, 6, 10)  # not square: kept as it is
    np.testing.assert_array_equal(np.sort(both.ravel()), np.sort(pixels.transpose(0, 3, 1, 2).ravel()))


def test_damaged_compressed_npz_is_one_data_error(tmp_path: Path) -> None:
    """A compressed .npz whose data is damaged (zlib.error, BadZipFile on a bad CRC) is refused by name (issue 36)."""
    path = tmp_path / "damaged.npz"
    np.savez_compressed(path, x=np.random.default_rng(0).integers(0, 256, (64, 8, 8), dtype=np.uint8))
    raw = bytearray(path.read_bytes())
    start = raw.index(b"x.npy") + len(b"x.npy") + 40  # inside the member's deflated data
    raw[start : start + 64] = bytes(range(64))
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"damaged.npz: not a readable .npz file"):
        load_data(path)
