"""Pictures of a run: sample and reconstruction grids, and the loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def save_grid(images: np.ndarray, path: Path, nrow: int = 8, min_size: int = 256) -> None:
    """Float images (N, C, H, W) in [0, 1] as one PNG grid, enlarged with nearest-neighbour scaling."""
    from PIL import Image

    n, c, h, w = images.shape
    rows = -(-n // nrow)
    grid = np.zeros((rows * (h + 1) + 1, nrow * (w + 1) + 1, c), dtype=np.uint8)
    pixels = np.clip(np.rint(images * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    for i, im in enumerate(pixels):
        r, q = divmod(i, nrow)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = im
    picture = Image.fromarray(grid[:, :, 0] if c == 1 else grid)
    scale = max(1, min_size // max(picture.size))
    picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST).save(path)


def save_loss_curve(metrics: list[dict[str, Any]], path: Path) -> None:
    """Training loss and held-out negative ELBO against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [m for m in metrics if m.get("kind") == "train"]
    evals = [m for m in metrics if m.get("kind") == "eval"]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot([m["epoch"] for m in train], [m["loss"] for m in train], label="train loss")
    ax.plot([m["epoch"] for m in evals], [-m["elbo"] for m in evals], label="held-out -ELBO")
    ax.set_xlabel("epoch")
    ax.set_ylabel("nats per image")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
