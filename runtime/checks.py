"""Checks of the arguments callers pass (arrays, counts, seeds, temperatures): clear ValueErrors."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .errors import InputError


def integer(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum] (numpy integers too, never bools or floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = f"an integer >= {minimum}" if maximum is None else f"a whole number from {minimum} to {maximum}"
        raise InputError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    if value < minimum or (maximum is not None and value > maximum):
        expected = f"an integer >= {minimum}" if maximum is None else f"a whole number from {minimum} to {maximum}"
        raise InputError(f"{name} must be {expected}, got {value}")
    return int(value)


def real(name: str, value: object, minimum: float | None = None, maximum: float | None = None) -> float:
    """`value` as a finite float in [minimum, maximum] (each bound only when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if maximum is not None and minimum is not None and not minimum <= value <= maximum:
        raise InputError(f"{name} must be a number from {minimum:g} to {maximum:g}, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return float(value)


def numeric_array(value: Any, what: str) -> np.ndarray:
    """`value` as a non-empty numpy array of real numbers, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{what} must be a numeric numpy array; could not convert {type(value).__name__}: {e}") from e
    if arr.dtype == bool or arr.dtype.kind not in "uif":
        raise InputError(f"{what} must be a numeric numpy array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise InputError(f"{what} is empty (shape {arr.shape}); pass at least one")
    return arr
