"""`export_model` and `export_run`: a VAE (or a training run) -> a checked, self-describing bundle."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.runtime.bundle import read_manifest, validate_manifest
from vaekit.train import load_run
from vaekit.train.models import VAE

from .errors import ExportError
from .graphs import export_graphs, finish_graphs
from .manifest import build_manifest, check_provenance, file_entries, write_manifest
from .parity import check_parity
from .scores import heldout_figures
from .target import check_target, staged

HELDOUT_IMAGES = 2000  # held-out images scored and encoded for the manifest (the first 64 also check parity)


def precision_of(dtype: str, quantize: str | None) -> str:
    """The bundle's `dtype`: float32, float16, or int8 (float32 graphs with dynamically quantized weights)."""
    if dtype not in ("float32", "float16"):
        raise ExportError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
    if quantize not in (None, "int8"):
        raise ExportError(f"quantize must be None or 'int8', got {quantize!r}")
    if quantize and dtype != "float32":
        raise ExportError("--quantize int8 works on float32 graphs; drop --dtype float16 or --quantize")
    return quantize or dtype


def check_heldout(images: Any, image_shape: tuple[int, int, int]) -> np.ndarray:
    """`images` as float32 (N, C, H, W) in [0, 1] with N >= 1, or ExportError saying what is wrong."""
    if not isinstance(images, np.ndarray) or images.dtype != np.float32:
        raise ExportError(f"heldout must be a float32 numpy array, got {type(images).__name__} "
                          f"{getattr(images, 'dtype', '')}")
    if images.ndim != 4 or images.shape[1:] != tuple(image_shape) or len(images) == 0:
        raise ExportError(f"heldout must be shaped (N, {', '.join(map(str, image_shape))}) with N >= 1, got {images.shape}")
    if not np.all(np.isfinite(images)) or images.min() < 0 or images.max() > 1:
        raise ExportError("heldout images must be finite and in [0, 1]")
    return np.ascontiguousarray(images)


def export_model(
    model: VAE,
    out: str | os.PathLike[str],
    *,
    heldout: np.ndarray,
    provenance: dict[str, Any],
    dtype: str = "float32",
    quantize: str | None = None,
    force: bool = False,
) -> Path:
    """Export `model` to the bundle folder `out` and return its path.

    The graphs (simplified where that keeps parity) must match torch on `heldout` (float32 (N, C, H, W)
    in [0, 1]) and on random latents before anything is written (else ParityError); the held-out images'
    runtime scores give the manifest's quantiles and their latent codes its principal axes (`latent_pca`).
    An existing bundle at `out` is replaced only with `force`.
    """
    out = Path(out)
    precision = precision_of(dtype, quantize)
    check_target(out, force)  # fail before the slow part
    cfg = model.config
    images = check_heldout(heldout, cfg.image_shape)
    provenance = check_provenance(provenance)
    reference = copy.deepcopy(model).cpu().float().eval()  # the caller's model stays as it was
    plain = export_graphs(reference, precision)
    graphs, parity = check_parity(reference, lambda simplified: finish_graphs(plain, precision, simplified), images,
                                  precision)
    manifest = build_manifest(cfg, precision, provenance, parity)
    with staged(out, force) as tmp:
        for name, data in graphs.items():
            _write_file(tmp / name, data)
        manifest["files"] = file_entries(tmp, sorted(graphs))
        manifest["score_quantiles"] = {}  # filled below (with latent_pca), once the runtime can load the bundle
        validate_manifest(manifest)
        write_manifest(tmp, manifest)
        manifest.update(heldout_figures(tmp, images))
        write_manifest(tmp, manifest)
        read_manifest(tmp)  # the reader's own checks, checksums included, on the finished folder
    return out


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def run_provenance(run: Any) -> dict[str, Any]:
    """The manifest's provenance for a loaded run: data, epochs, final metrics and test NLL (None when the
    run never finished), plus the run's path and training config."""
    s = run.summary
    return {
        "run": str(Path(run.path).resolve()),
        "data": s.get("data", run.train_config.get("data")),
        "finished": bool(s),
        "epochs": s.get("epochs"),
        "steps": s.get("steps"),
        "metrics": {k: s[k] for k in ("test_elbo", "test_recon", "test_kl") if k in s},
        "test_nll": s.get("test_nll_iwae"),
        "test_nll_k": s.get("iwae_k"),
        "test_nll_images": s.get("n_test_nll"),
        "test_bits_per_dim": s.get("test_bits_per_dim"),
        "binarized": s.get("binarized"),
        "train_config": run.train_config,
    }


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    quantize: str | None = None,
    force: bool = False,
) -> Path:
    """Export the model of a `vaekit-train` run folder to the bundle folder `out` (see `export_model`)."""
    precision_of(dtype, quantize)
    check_target(Path(out), force)  # fail before loading the run and its data
    try:
        run = load_run(run_dir)
        heldout = run.heldout_images(HELDOUT_IMAGES)
    except ValueError as e:  # RunError and DataError name the problem and the fix
        raise ExportError(str(e)) from None
    if len(heldout) == 0:
        raise ExportError(f"{run_dir}: the run has no held-out images (test_fraction 0?); export needs some "
                          "to check parity and score quantiles")
    return export_model(run.model, out, heldout=heldout, provenance=run_provenance(run), dtype=dtype,
                        quantize=quantize, force=force)
