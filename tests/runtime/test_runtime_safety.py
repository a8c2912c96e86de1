"""Bad input never stops a run, hangs a reader or reaches a decoder vaekit does not trust: the one image opener
(`open_image`, used by the runtime, the app and training), `vaekit-score` on hostile files and folders, and the
bounds of `vaekit-sample` and `vaekit-score`."""

from __future__ import annotations

import csv
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TinyBundle, random_images
from PIL import EpsImagePlugin, Image

from vaekit.runtime import score_cli, to_uint8
from vaekit.runtime.errors import TargetError
from vaekit.runtime.files import check_writable
from vaekit.runtime.images import ImageFileError, fit_image, load_image, save_png
from vaekit.runtime.sample_cli import main as sample_main
from vaekit.train.data import load_data
from vaekit.train.errors import DataError

EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n0 0 moveto 8 8 lineto stroke\nshowpage\n"


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that announces `width` x `height` pixels and holds none: a decompression bomb's first bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def no_ghostscript(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if Pillow ever hands a file to Ghostscript."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an EPS file reached Ghostscript")

    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", refuse)


def test_eps_named_png_never_reaches_ghostscript(tmp_path: Path, no_ghostscript: None) -> None:
    (tmp_path / "photo.png").write_bytes(EPS)
    with pytest.raises(ImageFileError, match="not an image vaekit can read"):
        load_image(tmp_path / "photo.png", 1)
    with pytest.raises(DataError, match=r"photo\.png: this file is not an image vaekit can read.*--skip-bad-images"):
        load_data(tmp_path)


def test_decompression_bombs_are_refused_everywhere(tmp_path: Path) -> None:
    bomb = png_header_only(tmp_path / "bomb.png", 30000, 30000)
    with pytest.raises(ImageFileError, match="far too large"):
        load_image(bomb, 1)
    for i in range(3):
        save_png(np.full((8, 8), 40 * i, np.uint8), tmp_path / f"ok{i}.png")
    data = load_data(tmp_path, skip_bad_images=True)  # the bomb is skipped like any unreadable image
    assert data.skipped == (str(bomb),) and len(data.train) + len(data.test) == 3


@pytest.mark.timeout(20)
def test_a_fifo_named_like_an_image_never_hangs(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(ImageFileError, match="not a regular file"):
        load_image(tmp_path / "x.png", 1)
    with pytest.raises(ImageFileError, match="not a regular file"):
        fit_image(tmp_path, (1, 8, 8))


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    assert load_image(tmp_path / "deep.png")[:, :, 0].tolist() == [[0, 64, 128, 255]]


def test_training_reads_images_as_the_runtime_does(tmp_path: Path) -> None:
    """EXIF orientation honoured, centre crop and area averaging: a model trains on what it is later shown."""
    rng = np.random.default_rng(1)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (12, 20, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png", exif=exif)
    data = load_data(tmp_path, image_size=4, channels=3, test_fraction=0.25)
    shown = {fit_image(tmp_path / f"{i}.png", (3, 4, 4)).tobytes() for i in range(4)}
    assert {image.transpose(1, 2, 0).tobytes() for image in (*data.train, *data.test)} == shown


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _good(exported: TinyBundle, path: Path) -> Path:
    return save_png(to_uint8(random_images(tuple(exported.model.config.image_shape), 1)[0]), path)


@pytest.fixture
def deep(tmp_path: Path) -> Iterator[Path]:
    """The bottom of folders nested 1,100 deep under tmp_path/in/deep, removed afterwards without recursion
    (pytest's own clean-up of old temporary folders recurses, and would fail on them)."""
    chain = [tmp_path / "in" / "deep"]
    for _ in range(1100):
        chain.append(chain[-1] / "d")
    for folder in chain:
        folder.mkdir(parents=folder is chain[0])
    yield chain[-1]
    for folder in reversed(chain):
        for entry in folder.iterdir():
            if not entry.is_dir():
                entry.unlink()
        folder.rmdir()


@pytest.mark.timeout(120)
def test_score_reports_bad_items_and_scores_the_rest(exported: TinyBundle, tmp_path: Path, deep: Path) -> None:
    """A file name that is not UTF-8, a corrupt compressed .npz, folders nested 1,100 deep and a FIFO named
    x.png: each is a row (with its reason where it has no score), and the rest are scored."""
    folder = tmp_path / "in"
    _good(exported, folder / "a.png")
    os.rename(_good(exported, folder / "b.png"), os.path.join(os.fsencode(folder), b"caf\xe9.png"))
    os.mkfifo(folder / "x.png")
    _good(exported, deep / "bottom.png")
    x = to_uint8(random_images(tuple(exported.model.config.image_shape), 64))
    np.savez_compressed(tmp_path / "data.npz", x=x)
    data = bytearray((tmp_path / "data.npz").read_bytes())
    data[200:400] = b"\xff" * 200  # inside the deflated array
    (tmp_path / "data.npz").write_bytes(bytes(data))
    out = tmp_path / "s.csv"
    code = score_cli.main([str(exported.path), str(folder), str(tmp_path / "data.npz"), "--out", str(out), "--quiet"])
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert code in (score_cli.EXIT_UNREADABLE, score_cli.EXIT_UNUSUAL)
    assert rows["a.png"]["score"] and rows["bottom.png"]["score"]
    assert rows["caf\\udce9.png"]["score"]
    assert "not a regular file" in rows["x.png"]["error"]
    assert "not a readable .npz file" in rows["data.npz"]["error"]


def test_score_checks_its_outputs_before_scoring(exported: TinyBundle, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    image = _good(exported, tmp_path / "a.png")
    out = tmp_path / "s.csv"
    for option, value in (("--grid", tmp_path / "missing" / "g.png"), ("--top", "100000")):
        extra = [option, str(value)] + (["--grid", str(tmp_path / "g.png")] if option == "--top" else [])
        assert score_cli.main([str(exported.path), str(image), "--out", str(out), "--quiet", *extra]) == 1
        assert option in capsys.readouterr().err and not out.exists(), option
    assert score_cli.main([str(exported.path), "--normal", str(image), "--out", str(out), "--metrics",
                           str(tmp_path), "--quiet"]) == 1
    assert "--metrics" in capsys.readouterr().err and not out.exists()


def test_check_writable(tmp_path: Path) -> None:
    check_writable(tmp_path / "new.csv", "--out")
    with pytest.raises(TargetError, match="--out .* is a folder"):
        check_writable(tmp_path, "--out")
    with pytest.raises(TargetError, match="not a folder this process can write in"):
        check_writable(tmp_path / "no" / "x.csv", "--out")


@pytest.mark.parametrize("args, message", [(["-n", "4097"], "-n must be a whole number from 1 to 4096"),
                                           (["--steps", "257", "--interpolate", "a", "b"], "--steps must be"),
                                           (["-n", "1", "--scale", "100"], "--scale must be")])
def test_sample_sizes_are_bounded(exported: TinyBundle, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    assert sample_main([str(exported.path), *args, "--out", str(tmp_path / "x.png")]) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "x.png").exists()
