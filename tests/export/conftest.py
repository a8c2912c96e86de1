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
def cli_export(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """`vaekit-export RUN --out BUNDLE` in a fresh process, as a user runs it."""
    out = tmp_path_factory.mktemp("cli") / "bundle"
    command = [os.path.join(os.path.dirname(sys.executable), "vaekit-export"), str(runs[CLI_RUN]), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    return out, done


@pytest.fixture(scope="session")
def bundles(runs: dict[str, Path], cli_export: tuple[Path, subprocess.CompletedProcess],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    """Every run exported in float32, and some in float16 and int8 (see REDUCED), keyed by Bundle.id."""
    root = tmp_path_factory.mktemp("bundles")
    cli_path, done = cli_export
    assert done.returncode == 0, done.stderr
    found = [Bundle(CLI_RUN, "float32", runs[CLI_RUN], cli_path)]
    found += [Bundle(name, "float32", runs[name], export_run(runs[name], root / f"float32-{name}"))
              for name in RUNS if name != CLI_RUN]
    for precision, names in REDUCED.items():
        options = {"dtype": "float16"} if precision == "float16" else {"quantize": "int8"}
        found += [Bundle(name, precision, runs[name], export_run(runs[name], root / f"{precision}-{name}", **options))
                  for name in names]
    return {b.id: b for b in found}


BUNDLE_IDS = [f"float32-{name}" for name in RUNS] + [f"{p}-{name}" for p, names in REDUCED.items() for name in names]


@pytest.fixture(params=BUNDLE_IDS)
def bundle(request: pytest.FixtureRequest, bundles: dict[str, Bundle]) -> Bundle:
    """Each exported bundle in turn."""
    return bundles[request.param]
