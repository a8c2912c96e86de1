"""Image conversion in and out of the runtime (no bundle needed)."""

from __future__ import annotations

import numpy as np
import pytest

from vaekit.runtime.images import (
    as_image_batch,
    load_image,
    make_grid,
    save_png,
    to_pil,
    to_uint8,
    upscale,
)

GRAY, RGB = (1, 5, 4), (3, 5, 4)


def _nchw(shape: tuple[int, int, int], n: int = 2) -> np.ndarray:
    return np.random.default_rng(0).random((n, *shape), dtype=np.float32)


@pytest.mark.parametrize(
    "layout",
    [
        lambda x: x,  # NCHW
        lambda x: x.transpose(0, 2, 3, 1),  # NHWC
        lambda x: x[0],  # CHW
        lambda x: x[0].transpose(1, 2, 0),  # HWC
    ],
    ids=["NCHW", "NHWC", "CHW", "HWC"],
)
@pytest.mark.parametrize("shape", [GRAY, RGB], ids=["gray", "rgb"])
def test_every_layout_becomes_nchw(shape: tuple[int, int, int], layout) -> None:
    x = _nchw(shape)
    got = as_image_batch(layout(x), shape)
    want = x if layout(x).ndim == 4 else x[:1]
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


def test_grayscale_hw_and_nhw() -> None:
    x = _nchw(GRAY, 3)
    np.testing.assert_array_equal(as_image_batch(x[0, 0], GRAY), x[:1])
    np.testing.assert_array_equal(as_image_batch(x[:, 0], GRAY), x)


def test_uint8_is_scaled_and_float64_accepted() -> None:
    x = np.arange(20, dtype=np.uint8).reshape(5, 4) * 12
    np.testing.assert_allclose(as_image_batch(x, GRAY)[0, 0], x / 255.0, rtol=1e-6)
    assert as_image_batch(x / 255.0, GRAY).dtype == np.float32


def test_square_ambiguity_reads_channels_first() -> None:
    """A 3x3x3 array fits CHW and HWC for a 3x3 RGB bundle: channels-first (the bundle's layout) wins."""
    x = np.random.default_rng(0).random((3, 3, 3), dtype=np.float32)
    np.testing.assert_array_equal(as_image_batch(x, (3, 3, 3))[0], x)


@pytest.mark.parametrize(
    "value, match",
    [
        (np.zeros((5, 4, 3), np.float32), r"1 channel \(grayscale\).*got|shape \(5, 4, 3\)"),
        (np.zeros((6, 4), np.float32), r"shape \(6, 4\).*5x4 images"),
        (np.zeros((2, 2, 1, 5, 4), np.float32), "shape"),
        (np.zeros((5, 4), np.int64), "uint8 .* or float"),
        (np.zeros((5, 4), bool), "numeric"),
        (np.full((5, 4), 0.5, np.complex64), "numeric"),
        (np.array([[None] * 4] * 5), "numeric"),
        (np.full((5, 4), "a"), "numeric"),
        (np.full((5, 4), np.nan, np.float32), "NaN"),
        (np.full((5, 4), np.inf), "NaN or infinite"),
        (np.full((5, 4), 2.0), r"\[0, 1\].*divide"),
        (np.full((5, 4), -0.1), r"\[0, 1\]"),
        (np.zeros((0, 1, 5, 4), np.float32), "empty"),
        ([[0.0, 1.0], [0.5]], "could not convert|numeric"),
        (np.float32(0.5), "shape"),
    ],
)
def test_bad_images_get_clear_errors(value: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        as_image_batch(value, GRAY)


def test_error_lists_what_the_bundle_takes() -> None:
    with pytest.raises(ValueError) as info:
        as_image_batch(np.zeros((5, 4)), RGB)
    assert "3 channels (RGB)" in str(info.value) and "NHWC (N, 5, 4, 3)" in str(info.value)


def test_to_uint8_rounds_and_clips() -> None:
    np.testing.assert_array_equal(to_uint8(np.array([0.0, 0.5, 1.0, 1.2, -1.0])), [0, 128, 255, 255, 0])
    u = np.array([1, 2], np.uint8)
    assert to_uint8(u) is u


def test_make_grid_layout() -> None:
    images = np.ones((5, 3, 4, 6), np.float32)
    grid = make_grid(images, nrow=3, padding=1)
    assert grid.shape == (2 * 5 + 1, 3 * 7 + 1, 3) and grid.dtype == np.uint8
    assert grid[0].max() == 0 and grid[1, 1:7].min() == 255  # padding, then the first image
    assert make_grid(images[:1, :1], nrow=8, padding=0).shape == (4, 6, 1)
    with pytest.raises(ValueError, match="N, C, H, W"):
        make_grid(np.ones((2, 2, 4, 6)))


def test_upscale_is_nearest_neighbour() -> None:
    img = np.array([[0, 255]], np.uint8)
    np.testing.assert_array_equal(upscale(img, 2)[:, :, 0], [[0, 0, 255, 255], [0, 0, 255, 255]])
    with pytest.raises(ValueError, match="integer >= 1"):
        upscale(img, 0)


def test_png_round_trip(tmp_path) -> None:
    pytest.importorskip("PIL", reason="Pillow is optional for the runtime")
    rgb = to_uint8(_nchw(RGB, 1)[0])
    path = save_png(rgb, tmp_path / "x.png")
    assert to_pil(rgb).mode == "RGB" and to_pil(rgb[:1]).mode == "L"
    np.testing.assert_array_equal(load_image(path, 3), rgb.transpose(1, 2, 0))
    assert load_image(path, 1).shape == (5, 4, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left behind
