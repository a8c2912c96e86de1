"""Fixtures of the UI tests: tiny exported bundles, their handlers, and one app served per session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from bundle_helpers import TinyBundles
from ui_helpers import BUNDLES, free_port

from vaekit.runtime import VAE


@pytest.fixture(scope="session")
def ui_bundles(tiny_bundles: TinyBundles) -> dict[str, Path]:
    """The UI tests' bundles (ui_helpers.BUNDLES) by their names here, from the shared `tiny_bundles`."""
    return {name: tiny_bundles[tiny].path for name, tiny in BUNDLES.items()}


@pytest.fixture(scope="session", params=sorted(BUNDLES))
def handlers(request: pytest.FixtureRequest, ui_bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """The app's handlers on each bundle in turn, writing GIFs into a temporary folder."""
    from vaekit.ui.handlers import Handlers

    return Handlers(VAE.load(ui_bundles[request.param], device="cpu"), tmp_path_factory.mktemp("ui-work"))


@pytest.fixture(scope="session")
def served(ui_bundles: dict[str, Path]) -> Iterator[tuple[str, Path]]:
    """(URL, bundle) of the app launched once on a free localhost port on the grayscale bundle, copied
    among the app's own temporary files so that only the bundle block keeps them from being served."""
    from vaekit.ui import serve
    from vaekit.ui.app import private_temp_dir

    bundle = Path(shutil.copytree(ui_bundles["gray"], private_temp_dir() / "bundle-under-test"))
    app = serve(bundle, "127.0.0.1", free_port(), device="cpu")
    try:
        yield app.local_url, bundle
    finally:
        app.close()


@pytest.fixture(scope="session")
def client(served: tuple[str, Path]):
    """A gradio_client Client of the served app."""
    from gradio_client import Client

    return Client(served[0], verbose=False, download_files=True)
