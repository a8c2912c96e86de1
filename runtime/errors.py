"""vaekit's error classes. Every error a user can fix derives from `VaekitError`: the commands print it as
one line and exit with status 1, while any other exception is a bug and keeps its traceback.

This module imports nothing beyond the standard library, so every part of vaekit (train too) can use it.
"""

from __future__ import annotations


class VaekitError(Exception):
    """Something the user can fix (a path, an input, a bundle, a missing package); the message says how."""

    details: tuple[str, ...] = ()  # lines the commands print under the message (e.g. every figure of a failed check)


class BundleError(VaekitError, ValueError):
    """A bundle is missing, corrupt, or of a format this runtime does not read."""


class DeviceError(VaekitError, RuntimeError):
    """The requested device cannot run the bundle (e.g. `cuda` without a working CUDA provider)."""


class MissingExtraError(VaekitError, ImportError):
    """An optional dependency of this command is not installed; the message names the `pip install` to run."""


class InputError(VaekitError, ValueError):
    """An argument a caller passed (an image, a latent, a count, a seed) that cannot work; says what would."""


class TargetError(VaekitError, ValueError):
    """A file or folder vaekit was asked to write that it cannot, or must not replace (one it did not make)."""
