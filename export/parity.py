"""Parity: the ONNX graphs on onnxruntime (CPU) against the float32 torch model, before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from vaekit.runtime.bundle import DECODER_FILE, DECODER_OUTPUTS, ENCODER_FILE, ENCODER_OUTPUTS
from vaekit.runtime.chunks import DEFAULT_BUDGET_BYTES, items_per_chunk
from vaekit.runtime.conformance import max_abs
from vaekit.train.models import VAEModule
from vaekit.train.objectives import eval_bytes_per_item

from .errors import ExportError, ParityError
from .graphs import SIMPLIFIER

BATCH_SIZES = (1, 7, 64)  # the largest shrinks for big images, to what the evaluation budget holds (see batch_sizes)
LATENT_SEED = 0
# float32 must match torch to TOLERANCE absolutely; float16 and int8 to TOLERANCE * max(1, max|torch output|),
# since their error grows with the size of the values (logits of a confident decoder reach tens).
TOLERANCES = {"float32": 1e-4, "float16": 1e-2, "int8": 5e-2}
RULES = {
    "absolute": "max_abs_diff <= tolerance",
    "scaled": "max_abs_diff <= tolerance * max(1, max_abs_reference)",
}


def rule_for(precision: str) -> str:
    """Which of RULES bounds the difference for this precision."""
    return "absolute" if precision == "float32" else "scaled"


def _session(graph: bytes, what: str, precision: str) -> ort.InferenceSession:
    """A CPU session for one graph; ExportError when onnxruntime cannot load it (e.g. an op without a
    kernel for this precision)."""
    try:
        return ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types
        raise ExportError(f"onnxruntime {ort.__version__} (CPU) cannot load the {precision} {what} graph "
                          f"({str(e)[:500]}); export with --dtype float32 instead") from e


def _run(session: ort.InferenceSession, names: list[str], feed: dict[str, np.ndarray], precision: str) -> list[np.ndarray]:
    """One onnxruntime call; ExportError naming the batch size when it fails."""
    try:
        return session.run(names, feed)
    except Exception as e:  # onnxruntime's own exception types
        batch = len(next(iter(feed.values())))
        raise ExportError(f"onnxruntime (CPU) cannot run the {precision} graph on a batch of {batch} "
                          f"({str(e)[:500]}); nothing was written") from e


def _grow(images: np.ndarray, n: int) -> np.ndarray:
    """`n` images: the first n held-out ones, repeated when there are fewer."""
    reps = -(-n // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:n], dtype=np.float32)


def _compare(worst: dict[str, float], scale: dict[str, float], prefix: str, names: list[str],
             expected: list[torch.Tensor], got: list[np.ndarray]) -> None:
    """Fold one run's max abs differences (and the reference's max abs value) into the running maxima."""
    for name, ref, out in zip(names, expected, got):
        key = f"{prefix}.{name}"
        ref_np = ref.detach().numpy()
        if out.shape != ref_np.shape:
            raise ExportError(f"{key}: onnxruntime gave shape {out.shape} where torch gives {ref_np.shape}; "
                              "the exported graph is wrong, nothing was written")
        diff = max_abs(out.astype(np.float64) - ref_np)
        worst[key] = float("nan") if np.isnan(diff) else max(worst.get(key, 0.0), diff)  # NaN sticks, inf counts
        scale[key] = max(scale.get(key, 0.0), max_abs(ref_np))


def batch_sizes(model: VAEModule) -> tuple[int, ...]:
    """BATCH_SIZES, the largest capped (at 8 or more) by the images per chunk of the memory budget."""
    *small, largest = BATCH_SIZES
    chunk = items_per_chunk(DEFAULT_BUDGET_BYTES, eval_bytes_per_item(model.config))
    return (*small, min(largest, max(small[-1] + 1, chunk)))


def measure(model: VAEModule, graphs: dict[str, bytes], heldout: np.ndarray, precision: str) -> dict[str, Any]:
    """Max abs differences of every output over `batch_sizes` (1, 7, 64 unless the images are big): the
    encoder on held-out images, the decoder on seeded N(0, I) latents and on the images' posterior means."""
    cfg = model.config
    sizes = batch_sizes(model)
    names = DECODER_OUTPUTS[cfg.likelihood]
    encoder = _session(graphs[ENCODER_FILE], "encoder", precision)
    decoder = _session(graphs[DECODER_FILE], "decoder", precision)
    images = _grow(heldout, max(sizes))
    latents = np.random.default_rng(LATENT_SEED).standard_normal((max(sizes), cfg.latent_dim), dtype=np.float32)
    worst: dict[str, float] = {}
    scale: dict[str, float] = {}
    with torch.no_grad():
        for b in sizes:
            x = images[:b]
            expected = model.encoder(torch.from_numpy(x))
            _compare(worst, scale, "encoder", ENCODER_OUTPUTS, list(expected), _run(encoder, ENCODER_OUTPUTS, {"image": x}, precision))
            for z in (latents[:b], expected[0].numpy()):
                params = model.decoder.likelihood_params(torch.from_numpy(z))
                _compare(worst, scale, "decoder", names, [params[n] for n in names], _run(decoder, names, {"latent": z}, precision))
    tolerance, rule = TOLERANCES[precision], rule_for(precision)
    limits = {k: tolerance * (1.0 if rule == "absolute" else max(1.0, s)) for k, s in scale.items()}
    return {
        "reference": f"torch {torch.__version__} float32 model on CPU",
        "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider",
        "batch_sizes": list(sizes),
        "inputs": (f"encoder: {min(len(heldout), max(sizes))} held-out images (repeated up to {max(sizes)}); decoder: "
                   f"N(0, I) latents (numpy seed {LATENT_SEED}) and the images' posterior means"),
        "precision": precision,
        "tolerance": tolerance,
        "rule": RULES[rule],
        "max_abs_diff": worst,
        "max_abs_reference": scale,
        "limit": limits,
        "passed": all(worst[k] <= limits[k] for k in worst),  # NaN never passes
    }


def _failures(figures: dict[str, Any]) -> str:
    """The outputs over their limits, e.g. "decoder.logits: max abs diff 0.3 > 0.15"."""
    diffs, limits = figures["max_abs_diff"], figures["limit"]
    return ", ".join(f"{k}: max abs diff {diffs[k]:.3g} > {limits[k]:.3g}" for k in diffs if not diffs[k] <= limits[k])


def check_parity(model: VAEModule, build: Callable[[bool], dict[str, bytes]], heldout: np.ndarray,
                 precision: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The graphs to write and their parity figures. `build(simplified)` gives the graphs with or without
    the simplification pass: the simplified ones are kept when they match torch, else the plain ones when
    those do (the figures' `simplification` says which and why); ParityError with the figures when neither does."""
    graphs = build(True)
    figures = measure(model, graphs, heldout, precision)
    if figures["passed"]:
        return graphs, {**figures, "simplification": {"pass": SIMPLIFIER, "kept": True}}
    reason = f"the simplified graphs differ from torch beyond the limits ({_failures(figures)})"
    graphs = build(False)
    figures = measure(model, graphs, heldout, precision)
    figures["simplification"] = {"pass": SIMPLIFIER, "kept": False, "reason": reason}
    if not figures["passed"]:
        raise ParityError(
            f"{precision} ONNX graphs do not match torch ({_failures(figures)}; rule: {figures['rule']}, tolerance "
            f"{figures['tolerance']:g}); nothing was written. Try --dtype float32 without --quantize, or report "
            "the figures as a bug", figures,
        )
    return graphs, figures
