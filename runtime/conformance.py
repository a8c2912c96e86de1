"""Conformance vectors: reference inputs and the exporting torch model's outputs, stored in a bundle so
that any machine (and any runtime) can check that it computes what the model computed at export.

The manifest's optional `conformance` key names, per graph, one `.npy` file per input and per output and
the largest absolute difference each output may show (see docs/bundle-format.md, "Conformance vectors").
`VAE.verify` runs the check; `vaekit-check` prints it.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import BundleError

if TYPE_CHECKING:
    from .manifest import ConformanceGraph

CONFORMANCE_DIR = "conformance"
RULE = "max_abs_diff <= limit"
GRAPH_INPUTS = {"encoder": "image", "decoder": "latent"}


@dataclass(frozen=True)
class OutputCheck:
    """One graph output on this machine against the stored reference: `name` is e.g. "decoder.logits"."""

    name: str
    max_abs_diff: float
    limit: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.limit  # NaN never passes

    @property
    def share(self) -> float:
        """How much of its limit the difference uses (above 1: failed)."""
        return self.max_abs_diff / self.limit


@dataclass(frozen=True)
class Verification:
    """The result of `VAE.verify`: every output's figure on the device the bundle runs on, or (`checked`
    False) the reason the bundle cannot be checked."""

    device: str
    checked: bool
    outputs: tuple[OutputCheck, ...] = ()
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.checked and all(o.passed for o in self.outputs)

    @property
    def worst(self) -> OutputCheck | None:
        """The output closest to (or furthest past) its limit."""
        return max(self.outputs, key=lambda o: o.share if o.passed else math.inf, default=None)

    def summary(self) -> str:
        """One line for people: the verdict, the device and the worst output's figure."""
        if not self.checked:
            return f"cannot be checked on this machine: {self.reason}"
        failed = [o for o in self.outputs if not o.passed]
        if failed:
            figures = ", ".join(f"{o.name} differs by {o.max_abs_diff:.3g} > {o.limit:.3g} allowed" for o in failed)
            return f"FAILED on this machine ({self.device}): {figures}"
        worst = self.worst
        assert worst is not None
        return (f"checked on this machine ({self.device}): worst output {worst.name}, "
                f"{worst.max_abs_diff:.2e} of {worst.limit:.2e} allowed")


def vector_path(graph: str, tensor: str) -> str:
    """The bundle-relative path of one vector file, e.g. "conformance/decoder.latent.npy"."""
    return f"{CONFORMANCE_DIR}/{graph}.{tensor}.npy"


def check_conformance(entry: dict[str, Any], tensors: dict[str, dict[str, list[str]]], files: dict[str, Any],
                      where: str) -> None:
    """Raise BundleError naming what in the manifest's `conformance` (schema-checked) breaks the format; `tensors`
    are the graphs' tensor names and `files` the manifest's checksummed files."""
    what = f"{where}: conformance"
    for graph, names in tensors.items():
        spec = entry[graph]
        if sorted(spec["inputs"]) != sorted(names["inputs"]) or sorted(spec["outputs"]) != sorted(names["outputs"]):
            raise BundleError(f"{what}.{graph} must cover inputs {names['inputs']} and outputs {names['outputs']}, "
                              f"got {sorted(spec['inputs'])} and {sorted(spec['outputs'])}")
        named = [*spec["inputs"].values(), *(output["file"] for output in spec["outputs"].values())]
        for file in named:
            if file not in files:
                raise BundleError(f"{what}.{graph} names {file!r}, which is not among the manifest's files "
                                  "(so it has no checksum); re-export the bundle")


def read_vector(root: Path, name: str, item_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """One vector file: a float32 .npy array, never a pickle, shaped (N >= 1, *item_shape) when that is
    given; BundleError naming the file otherwise."""
    path = root / PurePosixPath(name)
    try:
        array = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise BundleError(f"{path}: not a readable .npy array ({e}); the bundle is corrupt, re-export it") from e
    if array.dtype != np.float32:
        raise BundleError(f"{path}: holds {array.dtype}, the format stores float32; re-export the bundle")
    if item_shape is not None and (array.shape[1:] != tuple(item_shape) or len(array) == 0):
        raise BundleError(f"{path}: shaped {array.shape}, expected (N, {', '.join(map(str, item_shape))}) with "
                          "N >= 1; the bundle is inconsistent, re-export it")
    return np.ascontiguousarray(array)


def compare(graph: str, spec: ConformanceGraph, outputs: dict[str, np.ndarray], root: Path) -> list[OutputCheck]:
    """Each of `graph`'s outputs computed here against its stored reference and limit."""
    checks = []
    for name, output in spec.outputs.items():
        reference = read_vector(root, output.file)
        got = outputs[name]
        if got.shape != reference.shape:
            raise BundleError(f"{root / output.file}: shaped {reference.shape}, but the graph gives {got.shape} "
                              "for the stored inputs; the bundle is inconsistent, re-export it")
        checks.append(OutputCheck(f"{graph}.{name}", max_abs(got.astype(np.float64) - reference), output.limit))
    return checks


def max_abs(array: np.ndarray) -> float:
    """The largest absolute value in `array` (0 when it is empty; NaN when it holds one): the measure of every
    difference between two computations of an output, here and at export (export/parity.py)."""
    return float(np.max(np.abs(array))) if array.size else 0.0
