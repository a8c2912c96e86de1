"""Checks of the arguments callers pass (arrays, counts, seeds, temperatures): clear ValueErrors."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


def integer(name: str, value: object, minimum: int = 1) -> int:
    """`value` as an int >= `minimum` (numpy integers too, never bools or floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def real(name: str, value: object, minimum: float | None = None) -> float:
    """`value` as a finite float (>= `minimum` when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return float(value)


def numeric_array(value: Any, what: str) -> np.ndarray:
    """`value` as a non-empty numpy array of real numbers, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{what} must be a numeric numpy array; could not convert {type(value).__name__}: {e}") from None
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise ValueError(f"{what} must be a numeric numpy array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); pass at least one")
    return arr
