"""Source code that, run first in a fresh interpreter, makes some packages unimportable: how the tests prove
that a part of vaekit never needs torch (or onnxruntime). tests/ is on pytest's pythonpath."""

from __future__ import annotations

TORCH = ("torch", "torchvision", "torchaudio")


def blocking(roots: tuple[str, ...]) -> str:
    """Python source that installs an import hook refusing every module under `roots`."""
    return f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {roots!r}:
            raise ImportError(name + " is blocked: this part of vaekit must not need it")
sys.meta_path.insert(0, Block())
"""
