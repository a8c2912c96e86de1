"""The torch-free install for real: a fresh virtual environment with only `vaekit[cpu]` runs `vaekit-check` and
`vaekit-sample` on a bundle exported here, and the commands whose extras it lacks say which install to run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bundle_helpers import TinyBundles
from install_helpers import pip

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cpu_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `bin` folder of a new venv holding `pip install '.[cpu]'` (a built wheel, not an editable install)."""
    venv = tmp_path_factory.mktemp("cpu-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               f"{ROOT}[cpu]"]
    pip(install, "install .[cpu]", timeout=900)
    return venv / "bin"


def _run(bin_dir: Path, command: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(bin_dir / command), *args], capture_output=True, text=True, timeout=300, cwd=bin_dir)


def test_the_cpu_extra_has_no_torch_and_no_gradio(cpu_venv: Path) -> None:
    names = _run(cpu_venv, "python", "-m", "pip", "list", "--format=freeze").stdout.lower()
    assert "onnxruntime==" in names and "pillow==" in names and "numpy==" in names
    assert "torch" not in names and "gradio" not in names


def test_check_and_sample_run_without_torch(cpu_venv: Path, tiny_bundles: TinyBundles,
                                            tmp_path: Path) -> None:
    bundle = str(tiny_bundles["conv-gaussian"].path)
    check = _run(cpu_venv, "vaekit-check", bundle, "--device", "cpu")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().splitlines()[-1].startswith("checked on this machine (cpu)")
    out = tmp_path / "grid.png"
    sample = _run(cpu_venv, "vaekit-sample", bundle, "-n", "4", "--seed", "1", "--out", str(out))
    assert sample.returncode == 0, sample.stderr
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("command, args, install", [
    ("vaekit-train", ["--epochs", "1"], "pip install 'vaekit[train]'"),
    ("vaekit-export", ["runs/x", "--out", "bundles/x"], "pip install 'vaekit[train,cpu]'"),
    ("vaekit-ui", ["bundles/x"], "pip install 'vaekit[ui,cpu]'"),
])
def test_a_missing_extra_is_one_line_naming_the_install(cpu_venv: Path, command: str, args: list[str],
                                                        install: str) -> None:
    result = _run(cpu_venv, command, *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith(f"{command}: error: ") and "not installed" in result.stderr
    assert install in result.stderr
