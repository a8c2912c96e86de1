"""The vaekit bundle format, version 1: the reader owns it, `vaekit.export` writes it.

A bundle is a folder holding `encoder.onnx`, `decoder.onnx` and `manifest.json`. The manifest
describes the model (shapes, likelihood, tensor names), pins each ONNX file by sha256 and records
where the model came from and how closely the graphs matched torch at export.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT_NAME = "vaekit-bundle"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
LIKELIHOODS = ("bernoulli", "gaussian")

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
    "files": dict,  # {"encoder.onnx": {"sha256": ...}, "decoder.onnx": {"sha256": ...}}
    "opset": int,
    "producer": dict,  # {"vaekit": ..., "torch": ..., "onnx": ...}
    "dtype": str,  # "float32", "float16" or "int8" (weights; inputs and outputs stay float32)
    "provenance": dict,  # {"data": ..., "epochs": ..., "metrics": {...}, "test_nll": ...}
    "parity": dict,  # {"tolerance": float, "max_abs_diff": {output: float}, ...}
    "score_quantiles": dict,  # {"k": int, "n": int, "q": {"0.01": float, ..., "0.99": float}}
}
SCORE_QUANTILE_LEVELS = ("0.001", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "0.999")


class BundleError(ValueError):
    """A bundle is missing, corrupt, or of a format this runtime does not read."""


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
    if version != FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format version {version!r} is not supported by this runtime (it reads version "
            f"{FORMAT_VERSION}); re-export the model with a matching vaekit, or upgrade vaekit"
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
        digest = manifest["files"].get(name, {}).get("sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            raise BundleError(f"{where}: files[{name!r}].sha256 is missing or malformed")


def read_manifest(bundle: str | os.PathLike[str], verify_checksums: bool = True) -> dict[str, Any]:
    """Load and validate a bundle's manifest; with `verify_checksums`, also check both ONNX files."""
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
        raise BundleError(f"{path}: not valid JSON ({e}); the bundle is corrupt, re-export it") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{path}: expected a JSON object; the bundle is corrupt, re-export it")
    validate_manifest(manifest, str(path))
    for name in (ENCODER_FILE, DECODER_FILE):
        onnx_path = root / name
        if not onnx_path.is_file():
            raise BundleError(f"{onnx_path}: missing; the bundle is incomplete, re-export it")
        if verify_checksums and sha256_file(onnx_path) != manifest["files"][name]["sha256"]:
            raise BundleError(
                f"{onnx_path}: sha256 does not match the manifest, so the file was changed or corrupted; "
                "re-export the bundle (or pass verify_checksums=False if you changed it on purpose)"
            )
    return manifest


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON to `path` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
