"""The rule that shapes the project: runtime/ and ui/ never import torch, and `.[cpu]` pulls none."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from import_blocker import TORCH, blocking
from install_helpers import pip

ROOT = Path(__file__).resolve().parents[1]
TORCH_FREE = {"runtime": "vaekit.runtime", "ui": "vaekit.ui"}
FORBIDDEN = TORCH

# Run in a fresh interpreter after `blocking(...)`: import every module of a package, list what got in.
IMPORT_ALL = """
import importlib, pkgutil
pkg = importlib.import_module({package!r})
for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
    if not info.name.endswith("__main__"):
        importlib.import_module(info.name)
print(sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r}))
"""


def _imports_all_without(package: str, forbidden: tuple[str, ...]) -> None:
    """Every module of `package` imports in a fresh interpreter where `forbidden` cannot, and none of it gets in."""
    code = blocking(forbidden) + IMPORT_ALL.format(package=package, forbidden=forbidden)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _imported_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


@pytest.mark.parametrize("folder", sorted(TORCH_FREE))
def test_sources_never_import_torch(folder: str) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"{folder}/ has no Python files"
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in files
        for name in _imported_names(path.read_text(encoding="utf-8"))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offenders, f"{folder}/ must never import torch: {offenders}"


@pytest.mark.parametrize("package", sorted(TORCH_FREE.values()))
def test_modules_import_where_torch_cannot(package: str) -> None:
    _imports_all_without(package, FORBIDDEN)


def test_train_imports_where_onnxruntime_cannot() -> None:
    """vaekit.train needs torch, never onnxruntime: it uses only the runtime's standard-library modules
    (errors, files, choices, the run summary and the chunk planner), and the runtime loads names lazily."""
    _imports_all_without("vaekit.train", ("onnxruntime",))


def test_scanner_finds_a_torch_import() -> None:
    """Guards the guard: the scanner must see every import form it claims to."""
    source = "import torch.nn\nfrom torch import nn\nimport importlib\nimportlib.import_module('torch')\n"
    assert {"torch.nn", "torch"} <= _imported_names(source)


@pytest.mark.slow
def test_cpu_extra_pulls_no_torch(tmp_path: Path) -> None:
    """Resolve `.[cpu]` from scratch (dry run): the torch-free install must not drag torch in."""
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
           "--report", str(report), f"{ROOT}[cpu]"]
    pip(cmd, "resolve .[cpu]", timeout=600)
    names = {item["metadata"]["name"].lower() for item in json.loads(report.read_text())["install"]}
    assert "onnxruntime" in names and "numpy" in names
    assert not names & set(FORBIDDEN), f".[cpu] pulls {sorted(names & set(FORBIDDEN))}"


# The JavaScript part keeps the same one-way rule: the runtime (runtime/js) imports only itself, Node's
# built-ins and onnxruntime; the page (ui/web) only the runtime (copied to ./vaekit/ in a site) and onnxruntime-web.
JS_IMPORTS = {"runtime/js": ("./", "node:", "onnxruntime-node", "onnxruntime-web"),
              "ui/web": ("./vaekit/", "onnxruntime-web")}


@pytest.mark.parametrize("folder", sorted(JS_IMPORTS))
def test_javascript_imports_go_one_way(folder: str) -> None:
    specifiers = {(path.name, spec) for path in (ROOT / folder).glob("*.mjs")
                  for spec in re.findall(r"""(?:\bfrom|\bimport)\s*\(?\s*['"]([^'"]+)['"]""", path.read_text())}
    assert specifiers, f"no imports found in {folder}: the pattern is broken"
    offenders = sorted((name, spec) for name, spec in specifiers if not spec.startswith(JS_IMPORTS[folder]))
    assert not offenders, f"{folder}/ imports outside its allowed set: {offenders}"
