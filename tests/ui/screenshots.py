"""Screenshots of each tab of the real page, for the README: `python tests/ui/screenshots.py BUNDLE docs/`.

Serves the app on BUNDLE (the digits bundle of `make demo`), drives it in headless Debian Chromium
(uploading a held-out scikit-learn digit on the Reconstruct tab) and writes docs/ui-<tab>.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from ui_browser import browser_page, chromium_missing  # noqa: E402
from ui_helpers import free_port  # noqa: E402

from vaekit.ui import serve  # noqa: E402

TABS = ("sample", "interpolate", "explore", "reconstruct", "model")


def digit_png(path: Path, index: int = -10) -> Path:
    """A scikit-learn digit (a 5; 0-16 ink) as an 8-bit grayscale PNG enlarged 4x, like a small scan."""
    from sklearn.datasets import load_digits

    image = (load_digits().images[index] * (255 / 16)).round().astype(np.uint8)
    Image.fromarray(image).resize((32, 32), Image.Resampling.NEAREST).save(path)
    return path


def shoot(page, name: str, out: Path) -> Path:
    """The page as docs/ui-<name>.png, reduced to a 256-colour palette to keep it small."""
    target = out / f"ui-{name}.png"
    page.screenshot(path=str(target), full_page=True)
    with Image.open(target) as shot:
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    return target


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("bundle")
    args.add_argument("out", type=Path)
    opts = args.parse_args(argv)
    if (missing := chromium_missing()) is not None:
        print(f"screenshots: {missing}", file=sys.stderr)
        return 1
    app = serve(opts.bundle, "127.0.0.1", free_port(), device="cpu")
    try:
        with browser_page(app.local_url) as page:
            page.wait_for_timeout(500)
            shoot(page, "sample", opts.out)
            page.get_by_role("tab", name="Interpolate").click()
            page.get_by_label("Seed B").fill("7")
            page.locator("#interpolate-seeds-button").click()
            page.wait_for_timeout(1500)
            shoot(page, "interpolate", opts.out)
            page.get_by_role("tab", name="Explore").click()
            page.locator("#explore-random-button").click()
            page.wait_for_timeout(1500)
            shoot(page, "explore", opts.out)
            page.get_by_role("tab", name="Reconstruct").click()
            page.locator("#reconstruct-upload input[type=file]").set_input_files(digit_png(opts.out / ".digit.png"))
            page.get_by_text("nats, is").first.wait_for(timeout=15_000)
            page.wait_for_timeout(800)
            shoot(page, "reconstruct", opts.out)
            (opts.out / ".digit.png").unlink()
            page.get_by_role("tab", name="Model").click()
            page.wait_for_timeout(500)
            shoot(page, "model", opts.out)
    finally:
        app.close()
    for name in TABS:
        print(f"{opts.out / f'ui-{name}.png'}: {(opts.out / f'ui-{name}.png').stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
