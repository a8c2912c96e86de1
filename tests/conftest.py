"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest
from bundle_helpers import TinyBundles


@pytest.fixture(scope="session")
def tiny_bundles(tmp_path_factory: pytest.TempPathFactory) -> TinyBundles:
    """Tiny untrained bundles by name (bundle_helpers.TINY), each exported once per session, on first use."""
    return TinyBundles(tmp_path_factory.mktemp("tiny-bundles"))
