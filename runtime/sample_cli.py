"""`vaekit-sample`: a grid of samples, or an interpolation strip between two images, as a PNG."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from . import checks
from .choices import METHODS
from .errors import InputError
from .extras import bundle_parser, run_command

if TYPE_CHECKING:
    from .model import VAE

PROG = "vaekit-sample"
MAX_SAMPLES, MAX_STEPS, MAX_SCALE = 4096, 256, 64  # bounds of -n, --steps, --scale (the PNG is capped in pixels too)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; `--interpolate A B` switches from sampling to interpolation."""
    p = bundle_parser(PROG, "Sample images from a vaekit bundle, or interpolate between two images, into one PNG.")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the latent noise (default 1)")
    p.add_argument("--interpolate", nargs=2, metavar=("A", "B"), help="two image files to interpolate between")
    p.add_argument("--steps", type=int, default=10, help="interpolation frames, ends included (default 10)")
    p.add_argument("--method", choices=METHODS, default="slerp", help="interpolation path (default slerp)")
    p.add_argument("--nrow", type=int, default=None, help="images per row (default: square grid, or one strip)")
    p.add_argument("--scale", type=int, default=1, help="nearest-neighbour upscaling factor (default 1)")
    p.add_argument("--out", required=True, help="PNG file to write")
    return p.parse_args(argv)


def _image_for(vae: VAE, path: str) -> np.ndarray:
    """An image file as the one-image batch `vae` takes; a mismatch names the file."""
    from .images import as_image_batch, load_image

    try:
        return as_image_batch(load_image(path, vae.image_shape[0]), vae.image_shape)
    except ValueError as e:
        raise InputError(f"{path}: {e}") from e


def check_sizes(args: argparse.Namespace) -> None:
    """InputError unless -n, --steps, --scale and --nrow are within their bounds (an unbounded one would fill
    memory and disk rather than fail)."""
    checks.integer("-n", args.n, 1, MAX_SAMPLES)
    checks.integer("--steps", args.steps, 2, MAX_STEPS)
    checks.integer("--scale", args.scale, 1, MAX_SCALE)
    if args.nrow is not None:
        checks.integer("--nrow", args.nrow, 1)


def run(args: argparse.Namespace) -> str:
    """Do what the arguments ask; return a one-line summary."""
    from .images import MAX_PIXELS, make_grid, save_png, upscale
    from .model import VAE  # onnxruntime loads here, once `require` has checked that it is installed

    check_sizes(args)
    vae = VAE.load(args.bundle, device=args.device)
    if args.interpolate:
        a, b = (_image_for(vae, path) for path in args.interpolate)
        images = vae.interpolate(a, b, steps=args.steps, method=args.method)
        nrow = args.nrow or len(images)
        what = f"{args.steps}-step {args.method} interpolation"
    else:
        images = vae.sample(args.n, seed=args.seed, temperature=args.temperature)
        nrow = args.nrow or math.ceil(len(images) ** 0.5)
        what = f"{args.n} samples (seed {args.seed}, temperature {args.temperature:g})"
    grid = make_grid(images, nrow=nrow)
    pixels = grid.shape[0] * grid.shape[1] * args.scale**2
    if pixels > MAX_PIXELS:
        raise InputError(f"the PNG would have {pixels / 1e6:.0f} megapixels; the limit is {MAX_PIXELS / 1e6:.0f}: "
                         "lower --scale or -n")
    save_png(upscale(grid, args.scale), args.out)
    return f"wrote {what} to {args.out} (device: {vae.device})"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-sample`: errors become one message on stderr and exit status 1."""
    args = parse_args(argv)
    return run_command(PROG, lambda: print(run(args)), interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
