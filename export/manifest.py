"""The manifest's content: what the model is, where it came from and how the export was checked."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

import onnx
import onnxruntime
import onnxscript
import torch

from vaekit.runtime.manifest import (
    FORMAT_VERSION,
    MIXTURE_FORMAT_VERSION,
    FileEntry,
    Manifest,
    ModelRecord,
    Parity,
    Prior,
    Provenance,
    Tensors,
)
from vaekit.runtime.version import vaekit_version
from vaekit.train.models import ModelConfig, VAEModule

from .errors import ExportError
from .graphs import EXPORTER, OPSET


def producer() -> dict[str, str]:
    """Versions of everything that made the graphs, and the exporter used."""
    return {
        "vaekit": vaekit_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
        "exporter": EXPORTER,
    }


def check_provenance(provenance: Any) -> dict[str, Any]:
    """`provenance` as given, once it is known to be a JSON object without NaN or infinity."""
    if not isinstance(provenance, dict):
        raise ExportError(f"provenance must be a dict (data, epochs, metrics, test_nll), got {type(provenance).__name__}")
    try:
        json.dumps(provenance, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ExportError(f"provenance must hold only JSON values, without NaN or infinity ({e})") from e
    return provenance


def prior_record(model: VAEModule) -> Prior | None:
    """The manifest's `prior` for a model with a learned mixture prior (None for the standard normal): the weights
    in float64 (softmax of the logits), the means and log-variances as the float32 values training holds."""
    prior = model.mixture
    if prior is None:
        return None
    weights = torch.softmax(prior.logits.detach().double().cpu(), 0)
    return Prior(weights.tolist(), prior.means.detach().float().cpu().tolist(), prior.logvars.detach().float().cpu().tolist())


def build_manifest(cfg: ModelConfig, precision: str, provenance: dict[str, Any], parity: dict[str, Any],
                   quantization: dict[str, Any] | None = None, prior: Prior | None = None) -> Manifest:
    """The manifest's fields that describe the model and its export (`quantization`, each int8 graph's scheme, for
    int8 bundles; `prior`, a learned mixture prior, which makes it format version 2); `files`, `conformance`,
    `score_quantiles` and `latent_pca` are set once the graphs are final."""
    return Manifest(
        format_version=FORMAT_VERSION if prior is None else MIXTURE_FORMAT_VERSION,
        image_shape=tuple(cfg.image_shape),  # type: ignore[arg-type]
        latent_dim=cfg.latent_dim,
        likelihood=cfg.likelihood,
        model=ModelRecord.from_json(cfg.to_dict()),
        tensors=Tensors.of(cfg.likelihood),
        files={},
        opset=OPSET,
        producer=producer(),
        dtype=precision,
        provenance=Provenance.from_json(provenance),
        parity=Parity.from_json(parity),
        score_quantiles=None,
        exported_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        quantization=quantization,
        prior=prior,
    )


def file_entries(files: dict[str, bytes]) -> dict[str, FileEntry]:
    """The `files` entries (sha256 and size, by name) of the files a bundle will hold."""
    return {name: FileEntry(hashlib.sha256(data).hexdigest(), len(data)) for name, data in sorted(files.items())}
