"""The run's random numbers as named streams: every draw follows from (seed, stream, index) alone.

A run's whole random state is therefore its step counter: a resumed run, or one split across processes
(`distributed.py`), draws exactly what an uninterrupted single-process run draws.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
import torch

from vaekit.runtime.prior import words

# Dynamic binarization draws this many bytes (at most this many steps) at a time
BINARIZE_BLOCK_BYTES, BINARIZE_BLOCK_STEPS = 1 << 20, 16
_MASK = (1 << 64) - 1


class Stream(IntEnum):
    """What a stream of random numbers is for; its index (if any) says which draw of it."""

    WEIGHTS = 1  # a fresh model's initial weights
    DATA_ORDER = 2  # the order of the training images, per epoch
    BINARIZE = 3  # dynamic binarization of the training batches, per block of steps (`BinarizeDraws`)
    NOISE = 4  # the reparameterisation noise of each training batch, per step
    HELDOUT_BINARIZE = 5  # the held-out images, binarized once
    HELDOUT_NOISE = 6  # the held-out passes' noise (the same for every pass)
    NLL = 7  # the final test NLL estimate's samples
    GRIDS = 8  # the prior samples of the image grids (the same for every grid)
    PRIOR_FIT = 9  # the codes a fitted prior is fitted to, and its starting components


def seed_of(seed: int, stream: Stream, *index: int) -> int:
    """A 63-bit seed for (run seed, stream, index): the words hashed together, so that no two streams or
    indices share a seed (offsets added to one integer could collide)."""
    h = 0
    for word in (seed, int(stream), *index):
        h = int(words(h ^ (word & _MASK), 0, 1)[0])  # splitmix64, as the runtime's portable generator mixes
    return h >> 1


def generator(seed: int, stream: Stream, *index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch generator for one draw of a stream."""
    g = torch.Generator(device=device)
    g.manual_seed(seed_of(seed, stream, *index))
    return g


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the `n` training images in `epoch`: the same for every process and every resume."""
    return torch.randperm(n, generator=generator(seed, Stream.DATA_ORDER, epoch))


def below_255(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform draws from 0..254 as uint8: raw random bytes, each 255 (1 in 256) drawn again; far cheaper than
    `Generator.integers(0, 255, dtype=np.uint8)`, which was most of the cost of preparing a binarized batch."""
    n = math.prod(shape)
    raw = lambda k: rng.bit_generator.random_raw(-(-k // 8)).view(np.uint8)[:k]  # noqa: E731
    draws = raw(n)
    redo = np.flatnonzero(draws == 255)
    while len(redo):
        draws[redo] = raw(len(redo))
        redo = redo[draws[redo] == 255]
    return draws.reshape(shape)


class BinarizeDraws:
    """The draws that binarize each step's batch (see `loop.dynamic_binarize`), made for a block of steps at once
    (about BINARIZE_BLOCK_BYTES) by a PCG64 seeded with (seed, BINARIZE, block), as building a generator every step
    is costly. A step's draws follow from its step number and the batch's shape alone."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.key: tuple[int, tuple[int, ...]] | None = None  # (block, batch shape) of the draws held
        self.draws = np.empty(0, np.uint8)

    def __call__(self, step: int, batch_shape: tuple[int, ...], n: int) -> np.ndarray:
        """The draws for the first `n` images of the batch of `batch_shape` (a full batch's) at `step`."""
        steps = max(1, min(BINARIZE_BLOCK_STEPS, BINARIZE_BLOCK_BYTES // math.prod(batch_shape)))
        key = (step // steps, batch_shape)
        if key != self.key:
            rng = np.random.Generator(np.random.PCG64([self.seed, int(Stream.BINARIZE), key[0]]))
            self.key, self.draws = key, below_255(rng, (steps, *batch_shape))
        return self.draws[step % steps, :n]
