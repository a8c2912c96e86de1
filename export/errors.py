"""The errors a user of `vaekit-export` can hit, each naming the thing and the fix."""

from __future__ import annotations

from typing import Any

from vaekit.runtime.errors import VaekitError


class ExportError(VaekitError, ValueError):
    """A run or model that cannot be exported, or a bundle that cannot be written there."""


class ParityError(ExportError):
    """The ONNX graphs differ from torch by more than the tolerance; `figures` holds the measurements, and
    `details` each output's difference and limit."""

    def __init__(self, message: str, figures: dict[str, Any]) -> None:
        super().__init__(message)
        self.figures = figures
        self.details = tuple(f"{key}: max abs diff {diff:.3g}, limit {figures['limit'][key]:.3g}"
                             for key, diff in figures["max_abs_diff"].items())
