"""Fixtures for the runtime tests: tiny untrained VAEs exported to bundles with `vaekit.export` (the shared
`tiny_bundles`, tests/conftest.py).

Tests may import torch (to compare with it); the runtime under test never does.
"""

from __future__ import annotations

import pytest
from bundle_helpers import TinyBundle, TinyBundles

from vaekit.runtime import VAE

NAMES = ["conv-gaussian", "mlp-bernoulli", "mlp-mixture"]  # both model kinds, both likelihoods, both priors


@pytest.fixture(params=NAMES)
def exported(request: pytest.FixtureRequest, tiny_bundles: TinyBundles) -> TinyBundle:
    """Each of the runtime suite's bundles in turn."""
    return tiny_bundles[request.param]


@pytest.fixture
def vae(exported: TinyBundle) -> VAE:
    """The runtime's view of `exported` on CPU, with a small batch size so that chunking is exercised."""
    return exported.load(batch_size=5)
