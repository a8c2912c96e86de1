"""A bundle's manifest as a short table people can read: what it learned from, how well, and how it runs."""

from __future__ import annotations

from typing import Any

from vaekit.runtime import VAE, Verification
from vaekit.runtime.manifest import Manifest, Parity, Provenance

NOT_RECORDED = "not recorded"


def _nats(value: Any) -> str:
    return NOT_RECORDED if value is None else f"{value:.2f} nats"


def _training(p: Provenance) -> str:
    if p.epochs is None:
        return NOT_RECORDED
    steps = f", {p.steps} steps" if p.steps is not None else ""
    unfinished = "" if p.finished else " (the run did not finish)"
    return f"{p.epochs:g} epochs{steps}{unfinished}"


def _nll(p: Provenance) -> str:
    if p.test_nll is None:
        return NOT_RECORDED
    how = ", ".join(s for s in (f"IWAE k={p.test_nll_k}" if p.test_nll_k else "",
                                f"{p.test_nll_images} test images" if p.test_nll_images else "") if s)
    bpd = f", {p.test_bits_per_dim:.3f} bits/dim" if p.test_bits_per_dim is not None else ""
    return _nats(p.test_nll) + bpd + (f" ({how})" if how else "")


def _model(m: Manifest) -> str:
    model = m.model
    sizes = [f"hidden {model.hidden}"] if model.hidden else []
    if model.kind == "conv" and model.conv_channels:
        blocks = f", {model.conv_blocks} residual block(s) per level" if model.conv_blocks is not None else ""
        sizes.append(f"conv channels {model.conv_channels}{blocks}")
    if m.likelihood == "gaussian" and model.variance:
        sizes.append(f"{model.variance} variance")
    if m.prior is not None:
        how = "fitted to the training codes" if model.other.get("prior_fit") else "learned"
        sizes.append(f"a {how} prior: a mixture of {len(m.prior.weights)} Gaussians")
    if model.center_inputs:
        sizes.append("inputs centred on the training images' mean")
    described = f" ({', '.join(sizes)})" if sizes else ""
    return f"{model.kind} VAE, latent dimension {m.latent_dim}{described}"


def _parity(parity: Parity) -> str:
    diffs = parity.max_abs_diff
    if not diffs:
        return NOT_RECORDED
    verdict = "passed" if parity.passed else "failed"
    tolerance = "?" if parity.tolerance is None else parity.tolerance
    return f"{verdict}: max abs diff {max(diffs.values()):.1e} vs torch (tolerance {tolerance})"


def summary(vae: VAE, verification: Verification) -> dict[str, str]:
    """Field -> value, in reading order, for the bundle `vae` was loaded from and its check on this machine."""
    m = vae.manifest
    p, scores, producer = m.provenance, m.score_quantiles, m.producer
    assert scores is not None  # a loaded bundle's manifest always has them
    c, h, w = m.image_shape
    return {
        "Data": str(p.data or NOT_RECORDED),
        "Training": _training(p),
        "Test NLL": _nll(p),
        "Test ELBO": _nats(p.metrics.get("test_elbo")),
        "Model": _model(m),
        "Images": f"{h}x{w}, {'grayscale' if c == 1 else 'RGB'}",
        "Likelihood": m.likelihood,
        "Weights": m.dtype,
        "Providers in use": f"{', '.join(vae.providers)} (device: {vae.device})",
        "Parity": _parity(m.parity),
        "Conformance": verification.summary(),
        "Reference scores": (f"median {scores.q['0.5']:.2f} nats, 1% quantile {scores.q['0.01']:.2f} "
                             f"(k={scores.k}, {scores.n} held-out images)"),
        "Exported": (f"{m.exported_at or NOT_RECORDED} with vaekit {producer.get('vaekit', '?')}, "
                     f"torch {producer.get('torch', '?')}, onnx opset {m.opset}"),
        "Bundle": vae.path.resolve().name,
    }


def markdown_table(rows: dict[str, str]) -> str:
    """`rows` as a two-column Markdown table (pipes in values escaped)."""
    lines = ["| Property | Value |", "| --- | --- |"]
    lines += [f"| **{field}** | {value.replace('|', '&#124;')} |" for field, value in rows.items()]
    return "\n".join(lines)
