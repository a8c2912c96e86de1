"""Fixtures for the runtime tests: tiny untrained VAEs exported to bundles with `vaekit.export`.

Tests may import torch (to compare with it); the runtime under test never does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime_helpers import CONFIGS, Exported, random_images, tiny_model

from vaekit.runtime import VAE

N_HELDOUT = 16


def _export(name: str, out: Path) -> Exported:
    from vaekit.export import (
        export_model,  # imported lazily: only the bundle tests pay for the exporter
    )

    model = tiny_model(name)
    heldout = random_images(tuple(CONFIGS[name]["image_shape"]), N_HELDOUT, seed=1)
    provenance = {"data": "random test images", "epochs": 0, "metrics": {}}
    path = export_model(model, out / name, heldout=heldout, provenance=provenance)
    return Exported(name, Path(path), model, heldout)


@pytest.fixture(scope="session")
def exported_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Exported]:
    """Every configuration exported once per test session (export is the slow part)."""
    out = tmp_path_factory.mktemp("bundles")
    return {name: _export(name, out) for name in CONFIGS}


@pytest.fixture(params=sorted(CONFIGS))
def exported(request: pytest.FixtureRequest, exported_bundles: dict[str, Exported]) -> Exported:
    """Each exported configuration in turn."""
    return exported_bundles[request.param]


@pytest.fixture
def vae(exported: Exported) -> VAE:
    """The runtime's view of `exported` on CPU, with a small batch size so that chunking is exercised."""
    return exported.load(batch_size=5)
