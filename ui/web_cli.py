"""`vaekit-web BUNDLE --out SITE`: write the static page of a bundle (no server, no Python when it runs)."""

from __future__ import annotations

import argparse
import sys

from vaekit.runtime.extras import bundle_parser, run_command

PROG = "vaekit-web"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = bundle_parser(PROG, "Write a static web page that samples, interpolates and explores a vaekit bundle in the "
                      "browser (onnxruntime-web, WebGPU or wasm), served by any static host, e.g. "
                      "`python -m http.server -d SITE`.", device=False)
    p.add_argument("--out", required=True, help="folder to write the site to")
    p.add_argument("--ort-dir", help="folder holding onnxruntime-web's files (its npm package's dist/); default: "
                   "node_modules/onnxruntime-web/dist here, above, or in the vaekit checkout (npm ci)")
    p.add_argument("--force", action="store_true", help="replace a site already at --out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-web`: errors become one line and exit status 1."""
    args = parse_args(argv)

    def write() -> None:
        from .site import build_site

        out = build_site(args.bundle, args.out, ort_dir=args.ort_dir, force=args.force)
        print(f"{PROG}: wrote {out}; serve it with `python -m http.server -b 127.0.0.1 -d {out}` and open "
              "http://127.0.0.1:8000/ (any static host works; WebCrypto needs https or localhost)")

    return run_command(PROG, write, interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
