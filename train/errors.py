"""The errors a user of `vaekit-train` (or of a run folder) can hit, each naming the thing and the fix."""

from __future__ import annotations

from vaekit.runtime.errors import VaekitError


class ConfigError(VaekitError, ValueError):
    """A training option or model architecture that cannot work, with what it accepts."""


class DataError(VaekitError, ValueError):
    """Input data that cannot be used, with the file at fault and the fix."""


class RunError(VaekitError, ValueError):
    """A run folder that cannot be used (or written), with the reason and the fix."""


class TrainingError(VaekitError, RuntimeError):
    """Training cannot go on (a NaN loss, a missing device); the last good checkpoint is kept."""
