"""Fixtures for the export tests: tiny models really trained with vaekit.train, exported once per session.

Everything here is session-scoped: training and export are the slow part (seconds each).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from export_helpers import REDUCED, RUNS, Bundle, train_tiny, write_rgb_npz

from vaekit.export import export_run

CLI_RUN = "mlp-bernoulli"  # exported by the real `vaekit-export` command; the others through the Python API


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every run of RUNS, trained for one epoch."""
    root = tmp_path_factory.mktemp("runs")
    rgb = write_rgb_npz(root / "rgb.npz")
    return {name: train_tiny(name, root / name, rgb) for name in RUNS}


@pytest.fixture(scope="session")
def exported(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Bundle], subprocess.CompletedProcess]:
    """Every run exported in float32, and some in float16 and int8 (see REDUCED), keyed by Bundle.id; CLI_RUN by
    `vaekit-export RUN --out BUNDLE` in a fresh process (as a user runs it, meanwhile the API exports the rest)."""
    root = tmp_path_factory.mktemp("bundles")
    cli_out = root / f"float32-{CLI_RUN}"
    command = [os.path.join(os.path.dirname(sys.executable), "vaekit-export"), str(runs[CLI_RUN]), "--out", str(cli_out)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        found = [Bundle(name, "float32", runs[name], export_run(runs[name], root / f"float32-{name}"))
                 for name in RUNS if name != CLI_RUN]
        for precision, names in REDUCED.items():
            options = {"dtype": "float16"} if precision == "float16" else {"quantize": "int8"}
            found += [Bundle(name, precision, runs[name], export_run(runs[name], root / f"{precision}-{name}", **options))
                      for name in names]
        stdout, stderr = process.communicate(timeout=300)
    done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    assert done.returncode == 0, done.stderr
    found.append(Bundle(CLI_RUN, "float32", runs[CLI_RUN], cli_out))
    return {b.id: b for b in found}, done


@pytest.fixture(scope="session")
def bundles(exported: tuple[dict[str, Bundle], subprocess.CompletedProcess]) -> dict[str, Bundle]:
    return exported[0]


@pytest.fixture(scope="session")
def cli_export(exported: tuple[dict[str, Bundle], subprocess.CompletedProcess]) -> subprocess.CompletedProcess:
    """The finished `vaekit-export` process that wrote bundles[f"float32-{CLI_RUN}"]."""
    return exported[1]


BUNDLE_IDS = [f"float32-{name}" for name in RUNS] + [f"{p}-{name}" for p, names in REDUCED.items() for name in names]


@pytest.fixture(params=BUNDLE_IDS)
def bundle(request: pytest.FixtureRequest, bundles: dict[str, Bundle]) -> Bundle:
    """Each exported bundle in turn."""
    return bundles[request.param]
