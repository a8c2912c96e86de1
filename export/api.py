"""`export_model` and `export_run`: a VAE (or a training run) -> a checked, self-describing bundle."""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np

from vaekit.runtime import VAE as RuntimeVAE
from vaekit.runtime.bundle import DECODER_FILE, ENCODER_FILE, MANIFEST_FILE, colour_reference, read_manifest
from vaekit.runtime.choices import DTYPES, QUANTIZE
from vaekit.runtime.errors import VaekitError
from vaekit.runtime.files import write_bytes, write_json
from vaekit.runtime.manifest import Conformance, Manifest
from vaekit.runtime.run_summary import RunSummary
from vaekit.train.models import VAEModule
from vaekit.train.run import HELDOUT_IMAGES, LoadedRun, load_run

from .conformance import conformance_vectors
from .errors import ExportError
from .graphs import export_graphs, finish_graphs
from .manifest import build_manifest, check_provenance, file_entries, prior_record
from .parity import check_parity
from .quantization import quantization_record
from .scores import heldout_figures
from .target import check_target, staged

PATH_OPTIONS = ("data", "out")  # training options that may hold a path of the training machine


def precision_of(dtype: str, quantize: str | None) -> str:
    """The bundle's `dtype`: float32, float16, or int8 (float32 graphs with dynamically quantized weights)."""
    if dtype not in DTYPES:
        raise ExportError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"quantize must be None or one of {QUANTIZE}, got {quantize!r}")
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


def check_colours(colours: Any, image_shape: tuple[int, int, int]) -> np.ndarray:
    """`colours` if it is (N, C) finite values in [0, 1] with C the model's channels, else ExportError."""
    c = image_shape[0]
    if not isinstance(colours, np.ndarray) or colours.ndim != 2 or colours.shape[1] != c or len(colours) == 0:
        raise ExportError(f"colours must be a numpy array shaped (N, {c}) with N >= 1: the training images' average "
                          "colours (vaekit.runtime.scores.image_colours)")
    if not np.all(np.isfinite(colours)) or colours.min() < 0 or colours.max() > 1:
        raise ExportError("colours must be finite and in [0, 1] (average pixel values)")
    return colours


def export_model(
    model: VAEModule,
    out: str | os.PathLike[str],
    *,
    heldout: np.ndarray,
    provenance: dict[str, Any],
    colours: np.ndarray | None = None,
    dtype: str = "float32",
    quantize: str | None = None,
    force: bool = False,
) -> Path:
    """Export `model` to the bundle folder `out` and return its path.

    The graphs (simplified where that keeps parity) must match torch on `heldout` (float32 (N, C, H, W)
    in [0, 1]) and on random latents before anything is written (else ParityError); the held-out images'
    runtime scores give the manifest's quantiles and their latent codes its principal axes (`latent_pca`).
    `colours`, the training images' average colours (`vaekit.runtime.scores.image_colours`, (N, C); at most 2,000 of
    them, evenly spaced, are kept), give the `colour` score its reference; without them the bundle has no `colour` score.
    Every figure is computed before the bundle is staged; the written folder is then checked as a reader
    checks it, conformance vectors included. An existing bundle at `out` is replaced only with `force`.
    """
    out = Path(out)
    precision = precision_of(dtype, quantize)
    check_target(out, force)  # fail before the slow part
    cfg = model.config
    images = check_heldout(heldout, cfg.image_shape)
    reference = copy.deepcopy(model).cpu().float().eval()  # the caller's model stays as it was
    plain = export_graphs(reference, precision)
    graphs, parity = check_parity(reference, lambda simplified: finish_graphs(plain, precision, simplified), images,
                                  precision)
    vectors, conformance = conformance_vectors(reference, images, parity)
    quantization = quantization_record(plain) if precision == "int8" else None
    manifest = replace(build_manifest(cfg, precision, check_provenance(provenance), parity, quantization,
                                      prior_record(reference)),
                       colour_reference=None if colours is None else colour_reference(check_colours(colours, cfg.image_shape)))
    runtime = RuntimeVAE.from_graphs(manifest, graphs[ENCODER_FILE], graphs[DECODER_FILE])
    files = {**graphs, **vectors}
    figures = heldout_figures(runtime, images)
    manifest = replace(manifest, score_quantiles=figures.score_quantiles, score_references=figures.score_references,
                       latent_pca=figures.latent_pca, conformance=Conformance.from_json(conformance),
                       files=file_entries(files))
    Manifest.from_json(manifest.to_json())  # the reader's checks, before anything is written
    with staged(out, force) as tmp:
        for name, data in files.items():
            (tmp / name).parent.mkdir(exist_ok=True)
            write_bytes(tmp / name, data)
        write_json(tmp / MANIFEST_FILE, manifest.to_json())
        read_manifest(tmp)  # the reader's own checks, checksums included, on the finished folder
        verification = RuntimeVAE.load(tmp, device="cpu").verify()  # the stored vectors fit the written graphs
        if not verification.passed:
            raise ExportError(f"the written bundle fails its own conformance check ({verification.summary()}); "
                              "nothing was written; report this as a bug")
    return out


def run_provenance(run: LoadedRun) -> dict[str, Any]:
    """The manifest's provenance: the run's summary, field for field (`RunSummary`), with `run` the folder's name,
    whether it finished and its training config; an unfinished run's figures are null. A bundle is published (the
    app, `vaekit-web`), so it names folders and files, never where they are: no absolute path of this machine."""
    summary = run.summary.to_dict() if run.summary else {**dict.fromkeys(RunSummary.__dataclass_fields__),
                                                         "data": run.train_config.get("data"), "metrics": {}}
    paths = {key: bare_name(value) for key, value in run.train_config.items() if key in PATH_OPTIONS}
    config = {**run.train_config, **paths}
    return {**summary, "data": bare_name(summary["data"]), "run": run.path.resolve().name,
            "finished": run.summary is not None, "train_config": config}


def bare_name(value: Any) -> Any:
    """A path option's value without its folders ("/home/me/data/x.npz" -> "x.npz"); names such as "digits" and
    None stay as they are."""
    return PureWindowsPath(value).name if isinstance(value, str) and ("/" in value or "\\" in value) else value


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    dtype: str = "float32",
    quantize: str | None = None,
    force: bool = False,
) -> Path:
    """Export the model of a `vaekit-train` run folder to the bundle folder `out` (see `export_model`). The
    held-out images come from the run folder itself, so the data the run trained on may be gone."""
    try:
        run = load_run(run_dir)
        heldout = run.heldout(HELDOUT_IMAGES)
        colours = run.train_colours()
    except VaekitError as e:  # RunError and DataError name the problem and the fix
        raise ExportError(str(e)) from e
    if len(heldout) == 0:
        raise ExportError(f"{run_dir}: the run has no held-out images (test_fraction 0?); export needs some "
                          "to check parity and score quantiles")
    return export_model(run.model, out, heldout=heldout, provenance=run_provenance(run), colours=colours, dtype=dtype,
                        quantize=quantize, force=force)
