"""Chunk sizes from a memory budget: the one planner every batched path of vaekit uses (the runtime's
calls, and training's and export's evaluations), so that memory is bounded by bytes, not by counts."""

from __future__ import annotations

from . import checks

# What one chunk of work may hold in memory unless the caller says otherwise.
DEFAULT_BUDGET_BYTES = 256 * 2**20
# The runtime's estimate of one image's working memory per pixel position: the decoder's full-resolution
# activations (tens of channels, float32, a few alive at once) and `score`'s float64 per-pixel terms.
RUNTIME_BYTES_PER_PIXEL = 1024


def items_per_chunk(budget_bytes: int, bytes_per_item: int) -> int:
    """How many items of `bytes_per_item` fit in `budget_bytes` (at least 1: an item bigger than the
    budget still goes, alone)."""
    budget_bytes = checks.integer("budget_bytes", budget_bytes)
    bytes_per_item = checks.integer("bytes_per_item", bytes_per_item)
    return max(1, budget_bytes // bytes_per_item)


def runtime_batch_size(image_shape: tuple[int, ...], budget_bytes: int = DEFAULT_BUDGET_BYTES) -> int:
    """The runtime's default batch: as many images of `image_shape` (C, H, W) as `budget_bytes` holds."""
    _, h, w = image_shape
    return items_per_chunk(budget_bytes, h * w * RUNTIME_BYTES_PER_PIXEL)
