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


def code_length(images: np.ndarray) -> np.ndarray:
    """Each image's code length in bits, int64 (N,), of float images (N, C, H, W) in [0, 1]."""
    mapped, context = _residuals(quantize(images))
    n = len(mapped)
    rows = np.arange(n)
    total = np.zeros(n, dtype=np.int64)
    sums = np.full((n, CONTEXTS), A_START, dtype=np.int64)
    counts = np.full((n, CONTEXTS), N_START, dtype=np.int64)
    for p in range(mapped.shape[1]):
        m, q = mapped[:, p], context[:, p]
        a, c = sums[rows, q], counts[rows, q]
        k = np.zeros(n, dtype=np.int64)
        for t in range(MAX_K):  # the smallest k with count << k >= sum
            k += (c << t) < a
        quotient = m >> k
        total += np.where(quotient < UNARY_LIMIT, quotient + 1 + k, ESCAPE_BITS)
        a, c = a + m, c + 1
        reset = c == N_RESET
        sums[rows, q] = np.where(reset, a >> 1, a)
        counts[rows, q] = np.where(reset, c >> 1, c)
    return total
