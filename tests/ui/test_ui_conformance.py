"""The app checks its bundle on the machine that serves it: the Model tab says so, a failing bundle is refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import repin
from ui_helpers import free_port

from vaekit.runtime import BundleError


def test_the_model_tab_reports_the_check(handlers) -> None:
    rows = handlers.model_info()["summary"]
    assert rows["Conformance"].startswith("checked on this machine (cpu): worst output ")


@pytest.fixture
def failing(ui_bundles: dict[str, Path], tmp_path: Path) -> Path:
    """A copy of the grayscale bundle whose stored decoder images were changed (checksums updated to match)."""
    bundle = Path(shutil.copytree(ui_bundles["gray"], tmp_path / "failing"))
    name = "conformance/decoder.image.npy"
    np.save(bundle / name, np.load(bundle / name) + np.float32(0.5))
    repin(bundle, name)
    return bundle


def test_a_bundle_that_fails_its_check_is_not_served(failing: Path) -> None:
    from vaekit.ui import build_app

    with pytest.raises(BundleError, match=r"not served.*decoder\.image differs by 0\.5"):
        build_app(failing, device="cpu")


def test_vaekit_ui_refuses_it_in_one_line(failing: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "vaekit.ui.ui_cli", str(failing), "--port", str(free_port()),
                             "--device", "cpu"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("vaekit-ui: error: ") and "not served" in result.stderr
