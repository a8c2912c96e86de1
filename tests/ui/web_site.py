"""Helpers of the static-site tests (a uniquely named module: test folders share sys.path): a built site served
by Python's http.server on 127.0.0.1, and the page opened in headless Debian Chromium."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from ui_browser import CHROMIUM_ARGS, chromium_page

READY = "body[data-state]"  # app.mjs sets data-state to "ready" or "error" once the page has loaded or failed
# WebGPU without a GPU: Chromium's software adapter (SwiftShader), so the page's WebGPU path runs on any machine.
SOFTWARE_WEBGPU = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + [
    "--enable-unsafe-webgpu", "--enable-features=Vulkan,WebGPU", "--use-angle=swiftshader", "--use-webgpu-adapter=swiftshader"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass


@contextmanager
def serve(site: Path) -> Iterator[str]:
    """The URL of `site` served as static files on a free port of 127.0.0.1, until the block ends."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def site_page(url: str, requests: list[str] | None = None, timeout_ms: int = 120_000,
              args: list[str] = CHROMIUM_ARGS) -> Iterator[Any]:
    """A fresh headless Chromium page at `url` (launched with `args`), once the site has loaded (or failed); every
    URL it requests is appended to `requests` when given."""
    with chromium_page(url, requests, args) as page:
        page.locator(READY).wait_for(state="attached", timeout=timeout_ms)
        yield page


def canvas_pixels(page: Any, selector: str) -> np.ndarray:
    """The RGB pixels (H, W, 3) uint8 of the canvas `selector`."""
    width, height, data = page.evaluate("""sel => { const c = document.querySelector(sel);
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""",
                                        selector)
    return np.array(data, dtype=np.uint8).reshape(height, width, 4)[:, :, :3]
