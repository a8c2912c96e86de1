"""The docs' colour figures from an emoji bundle: samples, reconstructions and interpolations (PNG).

    python benchmarks/emoji_figures.py BUNDLE docs/   # writes emoji_samples.png, emoji_recon.png, emoji_interp.png

Held-out emoji are the bundle's run's own held-out split (`--data emoji` at the bundle's size, seed and
test fraction as its manifest records); everything else is `vaekit.runtime` on CPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vaekit.runtime import VAE, make_grid, save_png, upscale
from vaekit.train.data import load_data

SCALE = 2  # nearest-neighbour enlargement of the 32x32 images


def heldout(vae: VAE) -> np.ndarray:
    """The run's held-out emoji, float32 (N, 3, H, W) in [0, 1]."""
    cfg = vae.manifest.provenance.train_config or {}
    data = load_data("emoji", image_size=cfg["image_size"], test_fraction=cfg["test_fraction"], seed=cfg["seed"])
    return data.test.astype(np.float32) / 255


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("out", type=Path)
    args = p.parse_args()
    vae = VAE.load(args.bundle, device="cpu")
    images = heldout(vae)
    save_png(upscale(make_grid(vae.sample(32, seed=0), nrow=8, pad_value=128), SCALE), args.out / "emoji_samples.png")
    originals = images[:16]
    pairs = np.stack([originals, vae.reconstruct(originals)], 1).reshape(-1, *originals.shape[1:])
    save_png(upscale(make_grid(pairs, nrow=8, pad_value=128), SCALE), args.out / "emoji_recon.png")
    rows = [vae.interpolate(images[a], images[b], steps=8) for a, b in ((0, 1), (2, 3), (4, 5), (6, 7))]
    save_png(upscale(make_grid(np.concatenate(rows), nrow=8, pad_value=128), SCALE), args.out / "emoji_interp.png")
    print(f"wrote emoji_samples.png, emoji_recon.png and emoji_interp.png to {args.out}")


if __name__ == "__main__":
    main()
