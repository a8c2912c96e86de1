"""The optional dependencies (pip extras) each vaekit command needs, checked before anything imports them,
so that a missing one is a one-line error naming the `pip install` to run, never a traceback; and what every
command shares: `run_command` (errors, Ctrl-C) and the command line of the commands that take a bundle.

Standard library only, and the package `__init__` files load their names lazily (`lazy_exports`), so that
this module and the command-line modules import on any install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Callable

from .choices import DEVICES
from .errors import MissingExtraError, VaekitError

RUNTIME = "pip install 'vaekit[cpu]' (or 'vaekit[gpu]' on a CUDA machine; never both)"
TRAIN = "pip install 'vaekit[train]'"
EXPORT = "pip install 'vaekit[train,cpu]' (or 'vaekit[train,gpu]' on a CUDA machine; never cpu and gpu together)"
UI = "pip install 'vaekit[ui,cpu]' (or 'vaekit[ui,gpu]')"
BASE = "pip install vaekit"
# command -> (modules it imports, the install line that brings them)
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "vaekit-train": (("torch", "sklearn", "tqdm", "PIL", "matplotlib"), TRAIN),
    "vaekit-export": (("torch", "onnx", "onnxscript", "sklearn", "onnxruntime"), EXPORT),
    "vaekit-sample": (("onnxruntime", "PIL"), RUNTIME),
    "vaekit-check": (("onnxruntime",), RUNTIME),
    "vaekit-score": (("onnxruntime", "PIL"), RUNTIME),
    "vaekit-ui": (("onnxruntime", "gradio", "PIL"), UI),
    "vaekit-web": (("numpy",), BASE),  # torch-free and onnxruntime-free: the page runs onnxruntime-web
}
DISTRIBUTIONS = {"sklearn": "scikit-learn", "PIL": "pillow", "onnxruntime": "onnxruntime (or onnxruntime-gpu)"}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The top-level modules among `modules` that cannot be found (nothing is imported)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require(command: str) -> None:
    """Raise MissingExtraError naming the packages `command` lacks and the install line, if any are missing."""
    modules, install = NEEDS[command]
    missing = [DISTRIBUTIONS.get(name, name) for name in missing_modules(modules)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise MissingExtraError(f"{command} needs {', '.join(missing)}, which {verb} not installed: {install}")


def lazy_exports(package: str, where: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package` that imports each public name from its submodule (`where`:
    name -> submodule) on first use, so importing the package itself needs no optional dependency."""

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__


def run_command(prog: str, body: Callable[[], int | None], also: tuple[type[Exception], ...] = (),
                interrupted: str | None = "interrupted") -> int:
    """Run a command's `body` once `require(prog)` passes; its exit status is what `body` returns (None: 0), as
    with `sys.exit`. An error the user can fix (a VaekitError, or one of `also`) is one line on stderr (then its
    `details`, indented) and exit status 1; Ctrl-C is exit status 130 after the line `interrupted` (None: the
    body has said what it kept); anything else is a bug and keeps its traceback."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        require(prog)
        return body() or 0
    except (VaekitError, *also) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        for line in getattr(e, "details", ()):
            print(f"  {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if interrupted is not None:
            print(f"\n{prog}: {interrupted}", file=sys.stderr)
        return 130


def bundle_parser(prog: str, description: str, *, device: bool = True, epilog: str | None = None) -> argparse.ArgumentParser:
    """The command line of a command that takes a bundle: its BUNDLE argument and, where the command runs the
    model (`device`), --device."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    p.add_argument("bundle", help="bundle folder written by vaekit-export")
    if device:
        p.add_argument("--device", choices=DEVICES, default="auto",
                       help="where the model runs (default auto: CUDA when onnxruntime can use it, else the CPU)")
    return p
