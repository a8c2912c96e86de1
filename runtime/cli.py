"""`vaekit-sample`: a grid of samples, or an interpolation strip between two images, as a PNG."""

from __future__ import annotations

import argparse
import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from .choices import METHODS
from .errors import InputError
from .extras import bundle_parser, run_command

if TYPE_CHECKING:
    from .model import VAE

PROG = "vaekit-sample"


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


def run(args: argparse.Namespace) -> str:
    """Do what the arguments ask; return a one-line summary."""
    from .images import make_grid, save_png, upscale
    from .model import VAE  # onnxruntime loads here, once `require` has checked that it is installed

    if args.scale < 1 or (args.nrow is not None and args.nrow < 1):
        raise InputError("--scale and --nrow must be at least 1")
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
    save_png(upscale(make_grid(images, nrow=nrow), args.scale), args.out)
    return f"wrote {what} to {args.out} (device: {vae.device})"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-sample`: errors become one message on stderr and exit status 1."""
    args = parse_args(argv)
    return run_command(PROG, lambda: print(run(args)), interrupted="interrupted; nothing written")


if __name__ == "__main__":
    sys.exit(main())
