"""The vaekit bundle format, versions 1 and 2: the reader owns it, `vaekit.export` writes it.

A bundle is a folder holding `encoder.onnx`, `decoder.onnx` and `manifest.json`. The manifest
describes the model (shapes, likelihood, tensor names), pins each ONNX file by sha256 and records
where the model came from, how closely the graphs matched torch at export, and (optionally, in
bundles exported since it was added) the principal axes of the held-out images' latent codes. Version 2 adds a
required `prior` (a learned mixture of Gaussians); a model with the standard normal prior is written as version 1,
so that older readers still run it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from .choices import LIKELIHOODS
from .conformance import check_conformance
from .errors import BundleError

FORMAT_NAME = "vaekit-bundle"
FORMAT_VERSION = 1  # the standard normal prior
MIXTURE_FORMAT_VERSION = 2  # a learned mixture prior, in the required key `prior`
FORMAT_VERSIONS = (FORMAT_VERSION, MIXTURE_FORMAT_VERSION)
WEIGHTS_SUM_TOLERANCE = 1e-6  # how far a mixture's weights may sum from 1
MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"

# Tensor names of the two graphs, per likelihood.
ENCODER_INPUTS = ["image"]
ENCODER_OUTPUTS = ["mean", "logvar"]
DECODER_INPUTS = ["latent"]
DECODER_OUTPUTS = {"bernoulli": ["image", "logits"], "gaussian": ["image", "logvar"]}

# Keys every version-1 manifest has; the values' types are checked by `validate_manifest`.
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "image_shape": list,  # [C, H, W]
    "latent_dim": int,
    "likelihood": str,
    "model": dict,  # {"kind": ..., and its sizes}
    "tensors": dict,  # {"encoder": {"inputs": [...], "outputs": [...]}, "decoder": {...}}
    "files": dict,  # {"encoder.onnx": {"sha256": ..., "bytes": ...}, "decoder.onnx": {...}, and conformance/*.npy}
    "opset": int,
    "producer": dict,  # {"vaekit": ..., "torch": ..., "onnx": ...}
    "dtype": str,  # "float32", "float16" or "int8" (weights; inputs and outputs stay float32)
    "provenance": dict,  # {"data": ..., "epochs": ..., "metrics": {...}, "test_nll": ...}
    "parity": dict,  # {"tolerance": float, "max_abs_diff": {output: float}, ...}
    "score_quantiles": dict,  # {"k": int, "n": int, "q": {"0.01": float, ..., "0.99": float}}
}
# Optional keys, checked when present; bundles exported before them have none and still load:
# `latent_pca` ({"n": int, "mean": [D], "axes": [D][D], "variance": [D]}, by `check_latent_pca`), `conformance`
# (reference inputs and outputs, by `conformance.check_conformance`) and `quantization` (int8 bundles' scheme).
ORTHONORMAL_TOLERANCE = 1e-4  # how far latent_pca's axes @ axes.T may be from the identity
SCORE_QUANTILE_LEVELS = ("0.001", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "0.999")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks so big graphs need little memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_tensors(likelihood: str) -> dict[str, dict[str, list[str]]]:
    """The tensor names a bundle with this likelihood must use."""
    return {
        "encoder": {"inputs": ENCODER_INPUTS, "outputs": ENCODER_OUTPUTS},
        "decoder": {"inputs": DECODER_INPUTS, "outputs": DECODER_OUTPUTS[likelihood]},
    }


def validate_manifest(manifest: dict[str, Any], where: str = MANIFEST_FILE) -> None:
    """Raise BundleError naming the first thing in `manifest` that breaks format version 1."""
    if manifest.get("format") != FORMAT_NAME:
        raise BundleError(f"{where}: not a vaekit bundle (format is {manifest.get('format')!r}, expected {FORMAT_NAME!r})")
    version = manifest.get("format_version")
    if version not in FORMAT_VERSIONS or isinstance(version, bool):
        raise BundleError(
            f"{where}: bundle format version {version!r} is not supported by this runtime (it reads versions "
            f"{', '.join(map(str, FORMAT_VERSIONS))}); re-export the model with a matching vaekit, or upgrade vaekit"
        )
    for key, kind in REQUIRED_KEYS.items():
        if key not in manifest:
            raise BundleError(f"{where}: required key {key!r} is missing; re-export the bundle")
        if not isinstance(manifest[key], kind) or isinstance(manifest[key], bool):
            raise BundleError(f"{where}: key {key!r} has the wrong type ({type(manifest[key]).__name__})")
    shape = manifest["image_shape"]
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape) or shape[0] not in (1, 3):
        raise BundleError(f"{where}: image_shape must be [C, H, W] with C in (1, 3), got {shape}")
    if manifest["latent_dim"] < 1:
        raise BundleError(f"{where}: latent_dim must be positive, got {manifest['latent_dim']}")
    if manifest["likelihood"] not in LIKELIHOODS:
        raise BundleError(f"{where}: unknown likelihood {manifest['likelihood']!r}; expected one of {LIKELIHOODS}")
    if manifest["tensors"] != expected_tensors(manifest["likelihood"]):
        raise BundleError(f"{where}: tensor names {manifest['tensors']} differ from the format's "
                          f"{expected_tensors(manifest['likelihood'])}")
    for name in (ENCODER_FILE, DECODER_FILE):
        if name not in manifest["files"]:
            raise BundleError(f"{where}: files[{name!r}] is missing; re-export the bundle")
    for name, entry in manifest["files"].items():
        check_file_entry(name, entry, where)
    if version == MIXTURE_FORMAT_VERSION:
        if "prior" not in manifest:
            raise BundleError(f"{where}: format version {MIXTURE_FORMAT_VERSION} needs the key 'prior'; re-export the bundle")
        check_prior(manifest["prior"], manifest["latent_dim"], f"{where}: prior")
    if "latent_pca" in manifest:
        check_latent_pca(manifest["latent_pca"], manifest["latent_dim"], f"{where}: latent_pca")
    if "conformance" in manifest:
        check_conformance(manifest["conformance"], expected_tensors(manifest["likelihood"]), manifest["files"], where)


def check_file_entry(name: str, entry: Any, where: str) -> None:
    """A `files` entry: a plain relative path inside the bundle (no '..', no backslash) and a sha256."""
    parts = name.split("/")
    if not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
        raise BundleError(f"{where}: files[{name!r}] is not a relative path inside the bundle; the manifest is corrupt")
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(digest, str) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise BundleError(f"{where}: files[{name!r}].sha256 is missing or malformed")


def latent_pca(codes: np.ndarray) -> dict[str, Any]:
    """The manifest's `latent_pca` of latent codes (N, D): their mean, all D principal axes (rows, by
    decreasing variance, each signed so that its largest entry is positive) and the codes' variance
    along each (dividing by N), as JSON-ready lists. `vaekit.export` records it for the held-out images."""
    codes = np.asarray(codes, dtype=np.float64)
    n, d = codes.shape
    mean = codes.mean(axis=0)
    _, singular, axes = np.linalg.svd(codes - mean, full_matrices=n < d)  # D axes even from fewer codes
    axes *= np.sign(axes[np.arange(d), np.abs(axes).argmax(axis=1)])[:, None]
    variance = np.zeros(d)
    variance[: len(singular)] = singular**2 / n
    return {"n": n, "mean": mean.tolist(), "axes": axes.tolist(), "variance": variance.tolist()}


def check_latent_pca(pca: dict[str, Any], latent_dim: int, what: str = "latent_pca") -> None:
    """Raise BundleError naming what in `pca` breaks the `latent_pca` format for `latent_dim` dimensions."""
    if not isinstance(pca, dict):
        raise BundleError(f"{what} has the wrong type ({type(pca).__name__}); expected an object")
    missing = [key for key in ("n", "mean", "axes", "variance") if key not in pca]
    if missing:
        raise BundleError(f"{what}: missing {', '.join(missing)}; re-export the bundle (or delete latent_pca)")
    n = pca["n"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise BundleError(f"{what}.n must be a positive integer (the number of images), got {n!r}")
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


def check_prior(prior: Any, latent_dim: int, what: str = "prior") -> None:
    """Raise BundleError naming what in `prior` breaks the format: {"kind": "mixture", "weights": [K] positive and
    summing to 1, "means": [K][D], "logvars": [K][D]}, all finite."""
    if not isinstance(prior, dict) or prior.get("kind") != "mixture":
        raise BundleError(f"{what} must be an object with kind 'mixture' (the only prior of format version 2); "
                          "re-export the bundle")
    weights = prior.get("weights")
    k = len(weights) if isinstance(weights, list) else 0
    if k < 1:
        raise BundleError(f"{what}.weights must be a non-empty list of component weights; re-export the bundle")
    w = _finite_array(weights, (k,), f"{what}.weights", f"a list of {k} finite numbers")
    if w.min() <= 0 or abs(w.sum() - 1) > WEIGHTS_SUM_TOLERANCE:
        raise BundleError(f"{what}.weights must be positive and sum to 1, got a sum of {w.sum():.9g}; re-export the bundle")
    for key in ("means", "logvars"):
        _finite_array(prior.get(key), (k, latent_dim), f"{what}.{key}",
                      f"{k} rows (one per weight) of latent_dim = {latent_dim} finite numbers")


def _finite_array(value: Any, shape: tuple[int, ...], what: str, expected: str) -> np.ndarray:
    """`value`, nested JSON lists of finite numbers shaped `shape`, as float64; else BundleError."""
    rows = value if len(shape) == 2 else [value]
    fits = isinstance(value, list) and len(value) == shape[0] and all(
        isinstance(row, list) and len(row) == shape[-1]
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in row)
        for row in rows)
    if not fits:
        raise BundleError(f"{what} must be {expected}; re-export the bundle")
    return np.array(value, dtype=np.float64)


def read_manifest(bundle: str | os.PathLike[str], verify_checksums: bool = True) -> dict[str, Any]:
    """Load and validate a bundle's manifest; with `verify_checksums`, also check every file it lists."""
    root = Path(bundle)
    if root.is_file():
        raise BundleError(f"{str(root)!r} is a file; pass the bundle folder that holds it (written by `vaekit-export`)")
    if not root.is_dir():
        raise BundleError(f"bundle folder {str(root)!r} does not exist; pass the folder that `vaekit-export` wrote")
    path = root / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; is {str(root)!r} a bundle written by `vaekit-export`?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e}); the bundle is corrupt, re-export it") from e
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object; the bundle is corrupt, re-export it")
    validate_manifest(manifest, str(path))
    for name, entry in manifest["files"].items():
        path = root / name
        if not path.is_file():
            raise BundleError(f"{path}: missing; the bundle is incomplete, re-export it")
        if verify_checksums and sha256_file(path) != entry["sha256"]:
            raise BundleError(
                f"{path}: sha256 does not match the manifest, so the file was changed or corrupted; "
                "re-export the bundle (or pass verify_checksums=False if you changed it on purpose)"
            )
    return manifest
