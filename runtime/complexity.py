"""An image's complexity as the length in bits of a small lossless code of it (a fixed predictor and an
adaptive Golomb-Rice code, after JPEG-LS), in integer arithmetic so that every vaekit runtime computes the
same number to the bit; `complexity` scores subtract it from the likelihood (Serra et al. 2020).
The code is defined exactly in docs/anomaly-scores.md, "Code length"."""

from __future__ import annotations

import numpy as np

# Local activity |a - c| + |b - c| + |d - b| above each threshold moves a pixel to the next context.
ACTIVITY_STEPS = (0, 2, 6, 14, 30, 62, 126)
CONTEXTS = len(ACTIVITY_STEPS) + 1
A_START, N_START, N_RESET = 4, 1, 64  # each context's running sum of mapped residuals and count
MAX_K = 12  # the Rice parameter never needs more: mapped residuals are below 2 ** 10
UNARY_LIMIT = 24  # a quotient this long or longer is escaped: the limit's ones, a zero and 9 raw bits
ESCAPE_BITS = UNARY_LIMIT + 1 + 9


def quantize(x: np.ndarray) -> np.ndarray:
    """Images in [0, 1] (any float) as int32 levels 0..255: floor(x * 255 + 0.5) in float64."""
    return np.clip(np.floor(x.astype(np.float64) * 255.0 + 0.5), 0, 255).astype(np.int32)


def _residuals(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mapped residual, context) of every pixel of int levels (N, C, H, W), flattened to (N, C*H*W) in
    channel, row, column order; neighbours outside the image count as 0."""
    padded = np.pad(v, ((0, 0), (0, 0), (1, 0), (1, 1)))
    a = padded[:, :, 1:, :-2]  # left
    b = padded[:, :, :-1, 1:-1]  # above
    c = padded[:, :, :-1, :-2]  # above left
    d = padded[:, :, :-1, 2:]  # above right
    low, high = np.minimum(a, b), np.maximum(a, b)
    pred = np.where(c >= high, low, np.where(c <= low, high, a + b - c))  # the median edge detector
    e = v - pred
    mapped = np.where(e >= 0, 2 * e, -2 * e - 1)
    activity = np.abs(a - c) + np.abs(b - c) + np.abs(d - b)
    context = sum((activity > t).astype(np.int32) for t in ACTIVITY_STEPS)
    n = len(v)
    return mapped.reshape(n, -1), context.reshape(n, -1)


def rice_parameter(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The smallest k in 0..MAX_K with counts * 2**k >= sums (integers, sums >= 0), exactly: the bit length of
    ceil(sums / counts) - 1 (0 for a sum of 0), which frexp gives for integers below 2**53."""
    return np.minimum(np.frexp(np.maximum((sums + counts - 1) // counts - 1, 0))[1], MAX_K)


def _image_bits(mapped: np.ndarray, context: np.ndarray) -> int:
    """The code length of one image's mapped residuals in their contexts. Each context's state runs alone, so
    its pixels go together, in stretches between the halvings of its state: within one the state before
    each pixel is the start state plus the pixels before it, so a stretch is a few array operations."""
    order = np.argsort(context, kind="stable")
    ends = np.cumsum(np.bincount(context, minlength=CONTEXTS))
    total = 0
    for values in np.split(mapped[order].astype(np.int64), ends[:-1]):
        a, n, i = A_START, N_START, 0
        while i < len(values):
            stretch = values[i : i + N_RESET - n]
            before = np.cumsum(stretch) - stretch
            k = rice_parameter(a + before, n + np.arange(len(stretch)))
            quotient = stretch >> k
            total += int(np.where(quotient < UNARY_LIMIT, quotient + 1 + k, ESCAPE_BITS).sum())
            a, n, i = a + int(stretch.sum()), n + len(stretch), i + len(stretch)
            if n == N_RESET:
                a, n = a >> 1, n >> 1
    return total


def code_length(images: np.ndarray) -> np.ndarray:
    """Each image's code length in bits, int64 (N,), of float images (N, C, H, W) in [0, 1]."""
    mapped, context = _residuals(quantize(images))
    return np.array([_image_bits(m, q) for m, q in zip(mapped, context)], dtype=np.int64)
