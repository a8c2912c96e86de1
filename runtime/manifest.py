"""`Manifest`: a bundle's manifest.json as typed fields, read and written here (the reader owns the format; the
exporter builds a `Manifest` and writes `to_json()`). Every manifest is checked against runtime/manifest.schema.json
(the same file runtime/js/bundle.mjs checks against), then for what a schema cannot say: shapes that depend on
latent_dim, weights that sum to 1, orthonormal axes, conformance files that carry checksums."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .conformance import check_conformance
from .errors import BundleError
from .schema import first_error

FORMAT_NAME = "vaekit-bundle"
FORMAT_VERSION = 1  # the standard normal prior
MIXTURE_FORMAT_VERSION = 2  # a learned mixture prior, in the required key `prior`
FORMAT_VERSIONS = (FORMAT_VERSION, MIXTURE_FORMAT_VERSION)
MANIFEST_FILE = "manifest.json"
SCHEMA_FILE = "manifest.schema.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
WEIGHTS_SUM_TOLERANCE = 1e-6  # how far a mixture's weights may sum from 1
ORTHONORMAL_TOLERANCE = 1e-4  # how far latent_pca's axes @ axes.T may be from the identity

# Tensor names of the two graphs, per likelihood.
ENCODER_INPUTS = ["image"]
ENCODER_OUTPUTS = ["mean", "logvar"]
DECODER_INPUTS = ["latent"]
DECODER_OUTPUTS = {"bernoulli": ["image", "logits"], "gaussian": ["image", "logvar"]}


@cache
def manifest_schema() -> dict[str, Any]:
    """runtime/manifest.schema.json, the format's one JSON Schema (package data)."""
    return json.loads(Path(__file__).with_name(SCHEMA_FILE).read_text(encoding="utf-8"))


def expected_tensors(likelihood: str) -> dict[str, dict[str, list[str]]]:
    """The tensor names a bundle with this likelihood must use."""
    return {
        "encoder": {"inputs": ENCODER_INPUTS, "outputs": ENCODER_OUTPUTS},
        "decoder": {"inputs": DECODER_INPUTS, "outputs": DECODER_OUTPUTS[likelihood]},
    }


def to_json(value: Any) -> Any:
    """A manifest part as JSON values: `Part`s as objects (their `other` keys merged in, None fields left out unless
    the class keeps nulls), tuples as lists."""
    if isinstance(value, Part):
        out: dict[str, Any] = dict(getattr(value, "other", {}))
        for f in fields(value):  # type: ignore[arg-type]
            item = getattr(value, f.name)
            if f.name != "other" and (item is not None or value.KEEP_NULLS):
                out[f.name] = to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


class Part:
    """A manifest object as a frozen dataclass. `from_json` reads it from schema-checked JSON: its fields, integers as
    int (JSON may write 3 as 3.0), and, in classes with an `other` field, the keys it does not name, kept as they are
    (a writer may add keys within a format version; readers ignore them)."""

    KEEP_NULLS: ClassVar[bool] = False  # write None fields as null (else leave them out)
    INTEGERS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        known = {k: v for k, v in data.items() if k in names and k != "other"}
        known.update({k: int(known[k]) for k in cls.INTEGERS if known.get(k) is not None})
        if "other" in names:
            known["other"] = {k: v for k, v in data.items() if k not in names}
        return cls(**known)


@dataclass(frozen=True)
class FileEntry(Part):
    """One file of the bundle: its sha256 (lowercase hex) and size."""

    INTEGERS = ("bytes",)
    sha256: str
    bytes: int


@dataclass(frozen=True)
class GraphTensors(Part):
    """One graph's input and output tensor names."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Tensors(Part):
    """Both graphs' tensor names (fixed by the likelihood: `expected_tensors`)."""

    encoder: GraphTensors
    decoder: GraphTensors

    @classmethod
    def of(cls, likelihood: str) -> Tensors:
        names = expected_tensors(likelihood)
        return cls(*(GraphTensors(tuple(names[g]["inputs"]), tuple(names[g]["outputs"])) for g in ("encoder", "decoder")))


@dataclass(frozen=True)
class ModelRecord(Part):
    """The architecture, for people (the training side's ModelConfig; the runtime never needs it to run the graphs):
    the fields the model card shows, the rest in `other`."""

    KEEP_NULLS = True
    kind: str
    hidden: list[int] | None = None
    conv_channels: list[int] | None = None
    conv_blocks: int | None = None
    variance: str | None = None
    center_inputs: bool | None = None
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Provenance(Part):
    """Where the model came from: a run's `RunSummary` fields, whether it finished and its training options (nulls
    where a run did not finish); keys it does not name stay in `other`."""

    KEEP_NULLS = True
    data: str | None = None
    run: str | None = None  # the run folder's name (older bundles hold an absolute path)
    finished: bool = True
    epochs: float | None = None
    steps: int | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    test_nll: float | None = None
    test_nll_k: int | None = None
    test_nll_images: int | None = None
    test_bits_per_dim: float | None = None
    train_config: dict[str, Any] | None = None
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Provenance:
        return super().from_json({**data, "metrics": data.get("metrics") or {}})


@dataclass(frozen=True)
class Parity(Part):
    """How closely the graphs matched torch at export: the largest difference per output ("decoder.image": ...),
    the limits, tolerance and verdict; the figures behind them stay in `other`."""

    max_abs_diff: dict[str, float]
    limit: dict[str, float] | None = None  # the bound each output had to meet
    tolerance: float | None = None
    rule: str | None = None
    passed: bool | None = None
    batch_sizes: list[int] | None = None
    simplification: dict[str, Any] | None = None  # {"pass", "kept", "reason"}: whether the graphs were simplified
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreQuantiles(Part):
    """What the held-out (reference) images score on one anomaly score, with `k` and `seed`: their count, mean,
    standard deviation (`combined` standardizes by it) and quantiles (`q` maps levels such as "0.01" to scores);
    `combined`'s also names the scores it averages."""

    INTEGERS = ("k", "n", "seed")
    k: int
    n: int
    q: dict[str, float]
    seed: int = 0
    mean: float | None = None
    std: float | None = None
    parts: tuple[str, ...] | None = None  # `combined`'s only: the scores it averages (docs/anomaly-scores.md)
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LatentPca(Part):
    """Principal axes of the held-out images' latent codes: their mean, all D axes (rows, by decreasing variance)
    and the codes' variance along each."""

    INTEGERS = ("n",)
    n: int
    mean: list[float]
    axes: list[list[float]]
    variance: list[float]
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ColourReference(Part):
    """What the `colour` score compares an image's average colour with: the per-channel means of n training images
    (rows of C values in [0, 1]) and the kernel bandwidth per channel (docs/anomaly-scores.md)."""

    INTEGERS = ("n",)
    n: int
    means: list[list[float]]
    bandwidth: list[float]
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Prior(Part):
    """A learned mixture prior (format version 2): K weights, and K rows of D means and log-variances."""

    weights: list[float]
    means: list[list[float]]
    logvars: list[list[float]]
    kind: str = "mixture"
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConformanceOutput(Part):
    """One output's reference file and the largest absolute difference it may show."""

    file: str
    limit: float


@dataclass(frozen=True)
class ConformanceGraph(Part):
    """One graph's conformance vectors: input tensor -> file, output tensor -> file and limit."""

    inputs: dict[str, str]
    outputs: dict[str, ConformanceOutput]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConformanceGraph:
        return cls(dict(data["inputs"]), {k: ConformanceOutput.from_json(v) for k, v in data["outputs"].items()})


@dataclass(frozen=True)
class Conformance(Part):
    """Both graphs' conformance vectors (docs/bundle-format.md, "Conformance vectors"); what they were compared
    with and the rule, in words, stay in `other`."""

    encoder: ConformanceGraph
    decoder: ConformanceGraph
    other: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Conformance:
        graphs = {g: ConformanceGraph.from_json(data[g]) for g in ("encoder", "decoder")}
        return cls(**graphs, other={k: v for k, v in data.items() if k not in graphs})


# Manifest parts that are themselves Parts, by field; read with their own `from_json`.
PARTS: dict[str, type[Part]] = {
    "model": ModelRecord, "provenance": Provenance, "parity": Parity, "score_quantiles": ScoreQuantiles,
    "latent_pca": LatentPca, "conformance": Conformance, "prior": Prior, "colour_reference": ColourReference,
}


@dataclass(frozen=True)
class Manifest(Part):
    """A bundle's manifest.json. `score_quantiles` is None only in a manifest being exported, before the held-out
    images are scored: a written or read manifest always has it (the schema requires it). Keys it does not name
    are not kept: readers ignore them, and only the exporter writes manifests."""

    INTEGERS = ("format_version", "latent_dim", "opset")
    format_version: int
    image_shape: tuple[int, int, int]  # (C, H, W)
    latent_dim: int
    likelihood: str
    model: ModelRecord
    tensors: Tensors
    files: dict[str, FileEntry]  # every file but the manifest, by its path in the bundle
    opset: int
    producer: dict[str, str]
    dtype: str  # float32, float16 or int8
    provenance: Provenance
    parity: Parity
    score_quantiles: ScoreQuantiles | None  # the likelihood's (as in bundles exported before the other scores)
    score_references: dict[str, ScoreQuantiles] | None = None  # every anomaly score's, by name (runtime/scores.py)
    exported_at: str | None = None
    latent_pca: LatentPca | None = None
    colour_reference: ColourReference | None = None
    conformance: Conformance | None = None
    prior: Prior | None = None
    quantization: dict[str, Any] | None = None  # int8 bundles: each graph's quantization scheme, in words
    format: str = FORMAT_NAME

    def to_json(self) -> dict[str, Any]:
        """The manifest as manifest.json holds it."""
        return to_json(self)

    @classmethod
    def from_json(cls, data: Any, where: str = MANIFEST_FILE) -> Manifest:
        """A checked manifest from parsed JSON; BundleError naming the first thing that breaks the format."""
        validate(data, where)
        parts = {key: part.from_json(data[key]) for key, part in PARTS.items() if key in data}
        return super().from_json({
            **data, **parts,
            "image_shape": tuple(int(s) for s in data["image_shape"]),
            "tensors": Tensors.of(data["likelihood"]),
            "files": {name: FileEntry.from_json(entry) for name, entry in data["files"].items()},
            "score_references": {name: ScoreQuantiles.from_json(entry) for name, entry in data["score_references"].items()}
            if "score_references" in data else None,
        })


def validate(data: Any, where: str = MANIFEST_FILE) -> None:
    """Raise BundleError naming the first thing in parsed manifest JSON `data` that breaks the format: the schema,
    then what depends on other keys."""
    if not isinstance(data, dict):
        raise BundleError(f"{where}: expected a JSON object; the bundle is corrupt, re-export it")
    if data.get("format") != FORMAT_NAME:
        raise BundleError(f"{where}: not a vaekit bundle (format is {data.get('format')!r}, expected {FORMAT_NAME!r})")
    version = data.get("format_version")
    if isinstance(version, bool) or version not in FORMAT_VERSIONS:
        raise BundleError(
            f"{where}: bundle format version {version!r} is not supported by this runtime (it reads versions "
            f"{', '.join(map(str, FORMAT_VERSIONS))}); re-export the model with a matching vaekit, or upgrade vaekit"
        )
    error = first_error(data, manifest_schema())
    if error:
        raise BundleError(f"{where}: {error}; the manifest breaks the bundle format, re-export the bundle")
    tensors = expected_tensors(data["likelihood"])
    if data["tensors"] != tensors:
        raise BundleError(f"{where}: tensor names {data['tensors']} differ from the format's {tensors}")
    latent_dim = data["latent_dim"]
    if version == MIXTURE_FORMAT_VERSION and "prior" not in data:
        raise BundleError(f"{where}: format version {MIXTURE_FORMAT_VERSION} needs the key 'prior'; re-export the bundle")
    if "prior" in data:
        check_prior(data["prior"], latent_dim, f"{where}: prior")
    if "latent_pca" in data:
        check_latent_pca(data["latent_pca"], latent_dim, f"{where}: latent_pca")
    if "colour_reference" in data:
        check_colour_reference(data["colour_reference"], data["image_shape"][0], f"{where}: colour_reference")
    if "conformance" in data:
        check_conformance(data["conformance"], tensors, data["files"], where)


def check_latent_pca(pca: dict[str, Any], latent_dim: int, what: str = "latent_pca") -> None:
    """Raise BundleError naming what in `pca` (schema-checked) breaks the `latent_pca` format for `latent_dim`."""
    d = latent_dim
    _finite_array(pca["mean"], (d,), f"{what}.mean", f"a list of latent_dim = {d} finite numbers")
    axes = _finite_array(pca["axes"], (d, d), f"{what}.axes", f"{d} rows (latent_dim) of {d} finite numbers")
    variance = _finite_array(pca["variance"], (d,), f"{what}.variance", f"a list of {d} finite numbers, one per axis")
    if variance.min() < 0 or np.any(np.diff(variance) > 0):
        raise BundleError(f"{what}.variance must be non-negative and in decreasing order, got {variance.tolist()}")
    error = float(np.abs(axes @ axes.T - np.eye(d)).max())
    if error > ORTHONORMAL_TOLERANCE:
        raise BundleError(f"{what}.axes must be orthonormal rows (axes @ axes.T = identity), but they are off by "
                          f"{error:.3g} (> {ORTHONORMAL_TOLERANCE:g}); re-export the bundle")


def check_colour_reference(ref: dict[str, Any], channels: int, what: str = "colour_reference") -> None:
    """Raise BundleError naming what in `ref` (schema-checked: values in [0, 1], positive bandwidths) breaks the
    `colour_reference` format: n rows of one value per channel, and one bandwidth per channel."""
    n, c = ref["n"], channels
    _finite_array(ref["means"], (n, c), f"{what}.means", f"n = {n} rows of {c} numbers (one per channel)")
    _finite_array(ref["bandwidth"], (c,), f"{what}.bandwidth", f"a list of {c} numbers, one per channel")


def check_prior(prior: dict[str, Any], latent_dim: int, what: str = "prior") -> None:
    """Raise BundleError naming what in `prior` (schema-checked) breaks the format: K positive weights summing to 1,
    K rows of latent_dim means and log-variances."""
    k = len(prior["weights"])
    w = np.array(prior["weights"], dtype=np.float64)
    if abs(w.sum() - 1) > WEIGHTS_SUM_TOLERANCE:
        raise BundleError(f"{what}.weights must be positive and sum to 1, got a sum of {w.sum():.9g}; re-export the bundle")
    for key in ("means", "logvars"):
        _finite_array(prior[key], (k, latent_dim), f"{what}.{key}",
                      f"{k} rows (one per weight) of latent_dim = {latent_dim} finite numbers")


def _finite_array(value: list, shape: tuple[int, ...], what: str, expected: str) -> np.ndarray:
    """`value`, nested lists of numbers (schema-checked), shaped `shape` and finite, as float64; else BundleError."""
    rows = value if len(shape) == 2 else [value]
    if len(value) != shape[0] or any(len(row) != shape[-1] for row in rows):
        raise BundleError(f"{what} must be {expected}; re-export the bundle")
    array = np.array(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise BundleError(f"{what} must be {expected}; re-export the bundle")
    return array


def finite_json(text: str) -> Any:
    """Parse strict JSON: NaN, Infinity (which Python's json accepts) and numbers too large for a float (which it
    reads as infinity) are refused with ValueError."""
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def finite(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise ValueError(f"{text[:20]} is too large for a float")
        return value

    return json.loads(text, parse_constant=refuse, parse_float=finite)

