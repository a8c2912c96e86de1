"""The real page in headless Chromium: sample, interpolate, move a slider, upload an image, and check
that the images that appear are the ones the handlers make."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from ui_browser import browser_page, chromium_missing
from ui_helpers import write_image

from vaekit.runtime import VAE
from vaekit.runtime.scores import DEFAULT_SCORE, UNITS
from vaekit.ui.axes import BASES
from vaekit.ui.handlers import Handlers

pytestmark = [pytest.mark.browser, pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))]


def _picture(url: str) -> np.ndarray:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    with Image.open(io.BytesIO(response.content)) as picture:
        return np.asarray(picture.convert("L") if picture.mode in ("L", "P") else picture.convert("RGB"))


def _shows(page, selector: str, expected: Callable[[], Image.Image], timeout: float = 15.0) -> str:
    """Wait until the image in `selector` is the picture `expected()` makes; return its URL."""
    deadline, src = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        src = page.locator(f"{selector} img").first.get_attribute("src")
        if src and src.startswith("http") and np.array_equal(_picture(src), np.asarray(expected())):
            return src
        page.wait_for_timeout(150)
    raise AssertionError(f"{selector} never showed the expected image (last src: {src})")


def test_the_page_samples_interpolates_explores_and_reconstructs(served: tuple[str, Path], tmp_path: Path) -> None:
    url, bundle = served
    h = Handlers(VAE.load(bundle, device="cpu"), tmp_path)
    requested: list[str] = []
    with browser_page(url, requested, accept_downloads=True) as page:
        # Sample: the first grid is there at once, drawn with square pixels; a new seed draws another.
        grid = page.locator("#sample-grid img")
        assert grid.evaluate("img => getComputedStyle(img).imageRendering") == "pixelated"
        _shows(page, "#sample-grid", lambda: h.sample(36, 0, 1.0))
        seed = page.get_by_label("Seed").first
        seed.fill("5")
        page.locator("#sample-button").click()
        _shows(page, "#sample-grid", lambda: h.sample(36, 5, 1.0))
        with page.expect_download() as download:
            page.locator("#sample-grid").get_by_role("button", name="Download").click()
        assert Path(download.value.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        page.locator("#new-seed-button").click()
        deadline = time.monotonic() + 15
        while seed.input_value() == "5" and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        _shows(page, "#sample-grid", lambda: h.sample(36, int(seed.input_value()), 1.0))

        # Interpolate between two seeds: the strip and an animated GIF.
        page.get_by_role("tab", name="Interpolate").click()
        page.get_by_label("Seed B").fill("3")
        page.locator("#interpolate-seeds-button").click()
        _shows(page, "#interpolate-strip", lambda: h.interpolate_seeds(0, 3, 10, "slerp")[0])
        gif_src = page.locator("#interpolate-gif img").get_attribute("src")
        with Image.open(io.BytesIO(httpx.get(gif_src).content)) as gif:
            assert gif.format == "GIF" and gif.n_frames == 18

        # Explore: the page says which codes the directions come from; drag the first slider, the image follows.
        page.get_by_role("tab", name="Explore").click()
        page.locator("#explore-basis").get_by_text(f"principal axes of {h.axes_source};").wait_for(timeout=10_000)
        assert "held-out images, recorded at export" in h.axes_source
        first = page.locator("#explore-slider-0 input[type=range]")
        box = first.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.85, box["y"] + box["height"] / 2, steps=8)
        page.mouse.up()
        values = [float(page.locator(f"#explore-slider-{i} input[type=number]").input_value())
                  for i in range(h.sliders)]
        assert values[0] > 1.0 and values[1:] == [0.0] * (h.sliders - 1)
        _shows(page, "#explore-image", lambda: h.explore(BASES[0], values))

        # Reconstruct: upload an image; its reconstruction and a reading appear. A text file gets a message.
        page.get_by_role("tab", name="Reconstruct").click()
        digit = write_image(tmp_path / "digit.png", size=(28, 28), seed=9)
        page.locator("#reconstruct-upload input[type=file]").set_input_files(digit)
        want = h.reconstruct(str(digit))
        _shows(page, "#reconstruct-output", lambda: want[1])
        _shows(page, "#reconstruct-input", lambda: want[0])
        page.get_by_text(f"{want[2]:.1f} {UNITS[DEFAULT_SCORE]}").first.wait_for(timeout=10_000)  # the reading

        page.locator("#reconstruct-upload").get_by_role("button", name="Remove Image").click()
        (tmp_path / "notes.png").write_text("these are notes, not a picture")
        page.locator("#reconstruct-upload input[type=file]").set_input_files(tmp_path / "notes.png")
        page.get_by_text("not an image vaekit can read").first.wait_for(timeout=10_000)
    elsewhere = [r for r in requested if not r.startswith((url, "data:", "blob:"))]
    assert requested and not elsewhere, f"the page fetched from elsewhere: {elsewhere}"
