"""vaekit's version, read from the installed distribution: the one value every stage records."""

from __future__ import annotations

from importlib import metadata


def vaekit_version() -> str:
    """The installed vaekit's version, e.g. "0.1.0"."""
    try:
        return metadata.version("vaekit")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"
