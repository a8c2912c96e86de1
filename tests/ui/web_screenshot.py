"""The README's screenshot of the static page: `python tests/ui/web_screenshot.py BUNDLE docs/web-sample.png`.

Builds the `vaekit-web` site of BUNDLE (the digits bundle of `make demo`), serves it on 127.0.0.1 and
photographs the Sample tab in headless Debian Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from web_site import serve, site_page  # noqa: E402

from vaekit.ui.site import build_site  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("bundle", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, serve(build_site(args.bundle, Path(tmp) / "site")) as url:
        with site_page(url) as page:
            if page.get_attribute("body", "data-state") != "ready":
                sys.exit(f"the page failed: {page.text_content('#error')}")
            page.screenshot(path=str(args.out), full_page=True)
    with Image.open(args.out) as shot:  # a 256-colour palette keeps the PNG small
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
