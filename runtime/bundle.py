"""The vaekit bundle format, versions 1 and 2: the reader owns it, `vaekit.export` writes it.

A bundle is a folder holding `encoder.onnx`, `decoder.onnx` and `manifest.json`. The manifest
describes the model (shapes, likelihood, tensor names), pins each file by sha256 and records
where the model came from, how closely the graphs matched torch at export, and (optionally, in
bundles exported since it was added) the principal axes of the held-out images' latent codes. Version 2 adds a
required `prior` (a learned mixture of Gaussians); a model with the standard normal prior is written as version 1,
so that older readers still run it. `runtime/manifest.py` holds the manifest's fields and checks; this module reads
a bundle folder: its manifest, and every file against its checksum.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from .errors import BundleError
from .external_data import check_graph_bytes
from .manifest import (  # noqa: F401 (the format's names, imported from here by export and train)
    DECODER_FILE,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
    MANIFEST_FILE,
    ColourReference,
    LatentPca,
    Manifest,
    finite_json,
)

SCORE_QUANTILE_LEVELS = ("0.001", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "0.999")
GRAPH_FILES = (ENCODER_FILE, DECODER_FILE)
COLOUR_IMAGES = 2000  # at most this many training images' average colours make a bundle's `colour_reference`


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks so big graphs need little memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def latent_pca(codes: np.ndarray) -> LatentPca:
    """The manifest's `latent_pca` of latent codes (N, D): their mean, all D principal axes (rows, by
    decreasing variance, each signed so that its largest entry is positive) and the codes' variance
    along each (dividing by N). `vaekit.export` records it for the held-out images."""
    codes = np.asarray(codes, dtype=np.float64)
    n, d = codes.shape
    mean = codes.mean(axis=0)
    _, singular, axes = np.linalg.svd(codes - mean, full_matrices=n < d)  # D axes even from fewer codes
    axes *= np.sign(axes[np.arange(d), np.abs(axes).argmax(axis=1)])[:, None]
    variance = np.zeros(d)
    variance[: len(singular)] = singular**2 / n
    return LatentPca(n, mean.tolist(), axes.tolist(), variance.tolist())


def colour_sample(rows: np.ndarray) -> np.ndarray:
    """At most COLOUR_IMAGES of `rows` (training images, or their colours), evenly spaced from the first."""
    return rows[:: max(1, len(rows) // COLOUR_IMAGES)][:COLOUR_IMAGES]


def colour_reference(colours: np.ndarray) -> ColourReference:
    """The manifest's `colour_reference` of training images' average colours (N, C) (`scores.image_colours`): a
    `colour_sample` of them rounded to 6 decimals, and per channel Scott's rule bandwidth, their standard deviation
    times n^(-1/(C+4)), at least one grey level (1/255). `vaekit.export` records it."""
    values = np.round(colour_sample(np.asarray(colours, dtype=np.float64)), 6)
    n, c = values.shape
    bandwidth = np.maximum(values.std(axis=0) * n ** (-1.0 / (c + 4)), 1.0 / 255)
    return ColourReference(n, values.tolist(), bandwidth.tolist())


def read_manifest(bundle: str | os.PathLike[str], verify_checksums: bool = True) -> Manifest:
    """Load and check a bundle's manifest; with `verify_checksums`, also check every file it lists."""
    return read_bundle(bundle, verify_checksums)[0]


def _parsed_manifest(bundle: str | os.PathLike[str]) -> Manifest:
    """A bundle folder's checked manifest (the files it lists are not read here)."""
    root = Path(bundle)
    if root.is_file():
        raise BundleError(f"{str(root)!r} is a file; pass the bundle folder that holds it (written by `vaekit-export`)")
    if not root.is_dir():
        raise BundleError(f"bundle folder {str(root)!r} does not exist; pass the folder that `vaekit-export` wrote")
    path = root / MANIFEST_FILE
    try:
        data = finite_json(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; is {str(root)!r} a bundle written by `vaekit-export`?") from None
    except (ValueError, RecursionError) as e:  # bad JSON, bad UTF-8, numbers too big, nesting too deep
        reason = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise BundleError(f"{path}: not valid JSON ({reason}); the bundle is corrupt, re-export it") from None
    return Manifest.from_json(data, str(path))


def read_bundle(bundle: str | os.PathLike[str], verify_checksums: bool = True) -> tuple[Manifest, dict[str, bytes]]:
    """A bundle's checked manifest and its two graphs' bytes: every listed file must exist and, with
    `verify_checksums`, match its sha256. Each graph is read once: its checksum is checked on the bytes that the
    sessions are then made from, and a graph that reads data from outside itself is refused."""
    manifest = _parsed_manifest(bundle)
    root = Path(bundle)
    graphs = {}
    for name, entry in manifest.files.items():
        path = root / name
        if not path.is_file():
            raise BundleError(f"{path}: missing; the bundle is incomplete, re-export it")
        if name in GRAPH_FILES:
            graphs[name] = path.read_bytes()
        if verify_checksums:
            digest = hashlib.sha256(graphs[name]).hexdigest() if name in graphs else sha256_file(path)
            if digest != entry.sha256:
                raise BundleError(
                    f"{path}: sha256 does not match the manifest, so the file was changed or corrupted; "
                    "re-export the bundle (or pass verify_checksums=False if you changed it on purpose)"
                )
        if name in graphs:
            check_graph_bytes(graphs[name], str(path))
    return manifest, graphs
