"""Headless Debian Chromium for the browser tests and the README screenshots (never a downloaded browser)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps"]
VIEWPORT = {"width": 1280, "height": 860}


def chromium_missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: install Debian's chromium (`make browsers`, or apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the Python package playwright is missing: pip install 'vaekit[dev]'"
    return None


@contextmanager
def chromium_page(url: str, requests: list[str] | None = None, args: list[str] = CHROMIUM_ARGS,
                  **context: Any) -> Iterator[Any]:
    """A fresh page of headless Chromium (launched with `args`) at `url`, once its HTML has loaded; every URL the
    page requests is appended to `requests` when given."""
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            page = browser.new_page(viewport=VIEWPORT, **context)
            if requests is not None:
                page.on("request", lambda request: requests.append(request.url))
            page.goto(url, wait_until="domcontentloaded")
            yield page
        finally:
            browser.close()


@contextmanager
def browser_page(url: str, requests: list[str] | None = None, **context: Any) -> Iterator[Any]:
    """A fresh page of headless Chromium at `url`, the app fully rendered; every URL the page requests
    is appended to `requests` when given."""
    with chromium_page(url, requests, **context) as page:
        page.locator("#sample-grid img").wait_for(state="visible", timeout=30_000)
        yield page
