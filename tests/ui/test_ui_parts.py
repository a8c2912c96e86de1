"""The UI's building blocks without gradio: uploads, display, latent axes, score readings, model card."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TinyBundles
from PIL import Image
from ui_helpers import write_image

from vaekit.runtime import VAE
from vaekit.runtime.bundle import latent_pca
from vaekit.runtime.manifest import ScoreQuantiles
from vaekit.runtime.reading import share_below
from vaekit.ui import uploads
from vaekit.ui.axes import dimension_axes, principal_axes
from vaekit.ui.display import enlarge, factor_for, gif_bytes, tile, write_once
from vaekit.ui.model_card import markdown_table, summary
from vaekit.ui.score_text import read_score
from vaekit.ui.uploads import UploadError, read_upload

QUANTILES = ScoreQuantiles(k=1, n=200, seed=0,
                           q={"0.001": -60.0, "0.01": -50.0, "0.05": -40.0, "0.25": -30.0, "0.5": -25.0, "0.75": -20.0,
                              "0.95": -15.0, "0.99": -12.0, "0.999": -10.0})


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width` x `height` pixels (no real pixel data): a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) +
                     chunk(b"IEND", b""))
    return path


# --- uploads ------------------------------------------------------------------------------------

def test_upload_is_converted_to_the_bundles_channels_and_size(tmp_path: Path) -> None:
    rgb = write_image(tmp_path / "photo.jpg", size=(64, 48), mode="RGB")
    gray = read_upload(rgb, (1, 8, 8))
    assert gray.shape == (8, 8, 1) and gray.dtype == np.uint8
    assert read_upload(write_image(tmp_path / "g.png", mode="L"), (3, 4, 6)).shape == (4, 6, 3)


def test_upload_is_centre_cropped_then_area_averaged(tmp_path: Path) -> None:
    columns = np.tile(np.arange(16, dtype=np.uint8) * 16, (8, 1))  # 8 rows x 16 distinct columns
    Image.fromarray(columns, "L").save(tmp_path / "wide.png")
    assert np.array_equal(read_upload(tmp_path / "wide.png", (1, 8, 8))[:, :, 0], columns[:, 4:12])
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) * 10, np.ones((2, 2), np.uint8))
    blocks[::2, ::2] += 2  # each 2x2 block holds v+2, v, v, v: its mean is v + 0.5
    Image.fromarray(blocks, "L").save(tmp_path / "blocks.png")
    got = read_upload(tmp_path / "blocks.png", (1, 4, 4))[:, :, 0].astype(int)
    assert np.all(np.abs(got - (np.arange(16).reshape(4, 4) * 10 + 0.5)) <= 0.5)


def test_animated_gif_uses_its_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (8, 8), 200), Image.new("L", (8, 8), 10)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert np.all(np.abs(read_upload(tmp_path / "a.gif", (1, 8, 8)).astype(int) - 200) <= 1)


@pytest.mark.parametrize("content, message", [
    (b"hello, not an image", "not an image"),
    (b"%PDF-1.4 a document", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image"),
])
def test_non_images_are_refused_with_a_clear_message(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "upload.png").write_bytes(content)
    with pytest.raises(UploadError, match=message):
        read_upload(tmp_path / "upload.png", (1, 8, 8))


def test_other_image_formats_are_refused(tmp_path: Path) -> None:
    """A real TIFF (and anything else outside PNG, JPEG, GIF, BMP, WebP) never reaches a decoder."""
    Image.new("L", (8, 8), 200).save(tmp_path / "upload.png", format="TIFF")
    with pytest.raises(UploadError, match="not an image vaekit can read"):
        read_upload(tmp_path / "upload.png", (1, 8, 8))


def test_truncated_image_is_refused(tmp_path: Path) -> None:
    data = write_image(tmp_path / "full.png", size=(64, 64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UploadError, match="damaged or truncated"):
        read_upload(tmp_path / "cut.png", (1, 8, 8))


def test_huge_images_are_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("L", (8000, 6000)).save(tmp_path / "48mp.png")  # small file, 48 megapixels
    with pytest.raises(UploadError, match="8000x6000 pixels .48 megapixels.; the limit is 40 megapixels"):
        read_upload(tmp_path / "48mp.png", (1, 8, 8))
    with pytest.raises(UploadError, match="far too large"):
        read_upload(_png_header_only(tmp_path / "bomb.png", 30000, 30000), (1, 8, 8))


def test_oversized_and_missing_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (uploads.MAX_UPLOAD_BYTES + 1))
    with pytest.raises(UploadError, match="the limit is 10.0 MB"):
        read_upload(big, (1, 8, 8))
    with pytest.raises(UploadError, match="upload it again"):
        read_upload(tmp_path / "gone.png", (1, 8, 8))


# --- display ------------------------------------------------------------------------------------

def test_enlarging_repeats_pixels_by_a_whole_factor() -> None:
    image = np.random.default_rng(0).random((1, 8, 8), dtype=np.float32)
    big = np.asarray(enlarge(image, target=320))
    assert factor_for(8, 320) == 40 and big.shape == (320, 320)
    expected = np.round(image[0] * 255).astype(np.uint8)
    assert np.array_equal(big, np.kron(expected, np.ones((40, 40), np.uint8)))  # nearest neighbour, no blur
    assert factor_for(1000, 320) == 1


def test_tile_lays_out_a_grid_with_grey_lines() -> None:
    images = np.zeros((5, 3, 8, 8), np.float32)
    grid = np.asarray(tile(images, nrow=3, target=29))  # 3 tiles of 8 + 4 lines = 28 wide: factor 1
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    assert np.all(grid[0] == 128) and np.all(grid[1:9, 1:9] == 0)


def test_gif_plays_forwards_then_backwards_and_loops() -> None:
    images = np.linspace(0, 1, 4, dtype=np.float32)[:, None, None, None] * np.ones((4, 1, 8, 8), np.float32)
    with Image.open(io.BytesIO(gif_bytes(images, target=16))) as gif:
        assert gif.n_frames == 6 and gif.info["loop"] == 0 and gif.size == (16, 16)
        firsts = []
        for i in range(gif.n_frames):
            gif.seek(i)
            firsts.append(np.asarray(gif.convert("L"))[0, 0])
    assert firsts == [0, 85, 170, 255, 170, 85]


def test_results_are_bounded_in_bytes(tmp_path: Path) -> None:
    """A new GIF for every call (every seed pair differs) never grows the folder past its budget: the oldest go."""
    paths = []
    for i in range(40):
        paths.append(write_once(os.urandom(1000) + bytes([i]), tmp_path, "x.gif", budget=10_000))
        os.utime(paths[-1], (i, i))  # one second apart, the last written the newest
    held = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file())
    assert held <= 10_000 and paths[-1].exists() and not paths[0].exists()


def test_upload_folder_accepts_uploads_only(tmp_path: Path) -> None:
    """The one check on paths from clients: gradio's <hash>/<name> layout in the app's folder, never the bundle
    or anything outside, a link leading out, a folder or a FIFO; the same message for every refusal."""
    bundle = tmp_path / ("b" * 64)
    for name in ("a" * 64, "b" * 64, "c" * 64, "notes"):
        (tmp_path / name).mkdir()
    folder = uploads.UploadFolder(tmp_path, (bundle,))
    upload = write_image(tmp_path / ("a" * 64) / "x.png")
    assert folder.path_of({"path": str(upload)}) == str(upload) and folder.path_of(None) is None
    outside = write_image(tmp_path.parent / f"{tmp_path.name}-secret.png")
    (tmp_path / ("c" * 64) / "link.png").symlink_to(outside)
    os.mkfifo(tmp_path / ("c" * 64) / "fifo.png")
    for path in (outside, write_image(bundle / "secret.png"), tmp_path / ("c" * 64) / "link.png",
                 tmp_path / ("c" * 64) / "fifo.png", tmp_path / ("a" * 64), write_image(tmp_path / "notes" / "x.png"),
                 f"{upload.parent}/../../{tmp_path.name}-secret.png", 42):
        with pytest.raises(UploadError, match="^this file was not uploaded to this app"):
            folder.path_of({"path": str(path) if not isinstance(path, int) else path})
    with pytest.raises(UploadError, match="gone"):
        folder.path_of({"path": str(tmp_path / ("d" * 64) / "x.png")})


def test_write_once_is_content_addressed(tmp_path: Path) -> None:
    a, again = write_once(b"one", tmp_path, "x.gif"), write_once(b"one", tmp_path, "x.gif")
    b = write_once(b"two", tmp_path, "x.gif")
    assert a == again != b and a.read_bytes() == b"one" and b.read_bytes() == b"two"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["x.gif", "x.gif"]
    os.utime(a, (0, 0))  # an hour-old file that the cache cleaner is about to delete...
    write_once(b"one", tmp_path, "x.gif")
    assert a.stat().st_mtime > 1e9  # ...is renewed when it is handed out again


# --- latent axes --------------------------------------------------------------------------------

def test_principal_axes_are_orthonormal_ordered_and_invertible() -> None:
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((500, 4)) * [0.1, 3.0, 1.0, 0.01] + [1.0, 0.0, -1.0, 0.0]
    axes = principal_axes(latent_pca(codes), 3)
    assert np.allclose(axes.vectors @ axes.vectors.T, np.eye(3), atol=1e-9)
    assert np.allclose(np.abs(axes.vectors[0]), [0, 1, 0, 0], atol=0.05)  # the widest spread comes first
    assert np.allclose(axes.center, codes.mean(axis=0))
    share = np.linalg.eigvalsh(np.cov(codes, rowvar=False, bias=True))[-1] / codes.var(axis=0).sum()
    assert axes.labels == ["direction 1", "direction 2", "direction 3"]
    assert axes.notes[0] == f"{share:.0%} of the codes' variance" == "88% of the codes' variance"
    values = np.array([0.5, -1.0, 2.0], np.float32)
    assert np.allclose(axes.coordinates(axes.latent(values)), values, atol=1e-5)
    assert np.allclose(principal_axes(latent_pca(codes), 3).vectors, axes.vectors)  # same codes, same sliders


def test_dimension_axes_pick_the_most_used_dimensions() -> None:
    codes = np.random.default_rng(0).standard_normal((500, 4)) * [0.001, 2.0, 0.5, 1.0]
    axes = dimension_axes(latent_pca(codes), 3)
    assert axes.labels == ["dimension 1", "dimension 3", "dimension 2"]
    assert axes.notes[0] == f"codes vary by {codes[:, 1].std():.2f} (std)"
    assert np.array_equal(axes.latent(np.array([1.0, 2.0, 3.0])), [0.0, 1.0, 3.0, 2.0])
    assert "unused" in dimension_axes(latent_pca(codes), 4).notes[3]


# --- score readings -----------------------------------------------------------------------------

@pytest.mark.parametrize("score, verdict, below", [
    (-25.0, "typical", 0.5), (-17.5, "typical", 0.85), (-5.0, "typical", 0.999),
    (-45.0, "unusual", 0.03), (-55.0, "very unusual", 0.0055), (-500.0, "very unusual", 0.001),
])
def test_scores_read_against_the_reference_quantiles(score: float, verdict: str, below: float) -> None:
    reading = read_score(score, QUANTILES)
    assert reading.verdict == verdict and reading.below == pytest.approx(below)
    assert f"{score:.1f} nats" in reading.text and "200 reference images" in reading.text


def test_reading_sentences() -> None:
    assert "lower than 99.9% of the 200" in read_score(-500.0, QUANTILES).text
    assert "higher than about 50% of" in read_score(-25.0, QUANTILES).text
    assert share_below(-27.5, QUANTILES.q) == pytest.approx(0.375)


# --- model card ---------------------------------------------------------------------------------

def test_markdown_table_escapes_pipes() -> None:
    table = markdown_table({"Data": "a|b", "Model": "mlp"})
    assert table.splitlines() == ["| Property | Value |", "| --- | --- |", "| **Data** | a&#124;b |",
                                  "| **Model** | mlp |"]


def test_the_model_card_names_a_learned_prior_and_centred_inputs(tiny_bundles: TinyBundles) -> None:
    mixture = VAE.load(tiny_bundles["mlp-mixture"].path, device="cpu")
    described = summary(mixture, mixture.verify())["Model"]
    assert "a learned prior: a mixture of 4 Gaussians" in described and "inputs centred on the training images' mean" in described
    plain = VAE.load(tiny_bundles["mlp-bernoulli"].path, device="cpu")
    plain_described = summary(plain, plain.verify())["Model"]
    assert "prior" not in plain_described and "centred" not in plain_described
