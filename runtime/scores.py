"""Anomaly scores of a VAE bundle, each defined exactly in docs/anomaly-scores.md so that every vaekit runtime
computes the same number: higher always means more typical. The likelihood alone ranks simple images too high
(Nalisnick et al. 2019); the others correct for that and are compared in benchmarks/anomaly.py."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .chunks import DEFAULT_BUDGET_BYTES, items_per_chunk
from .errors import InputError
from .likelihood import LOG_2PI
from .manifest import ColourReference, LatentPca, Manifest, ScoreQuantiles

LIKELIHOOD, COMPLEXITY, RECONSTRUCTION, LATENT, PRIOR, COLOUR, COMBINED = (
    "likelihood", "complexity", "reconstruction", "latent", "prior", "colour", "combined")
SCORES = (LIKELIHOOD, COMPLEXITY, RECONSTRUCTION, LATENT, PRIOR, COLOUR, COMBINED)
DEFAULT_SCORE = COMBINED  # chosen by measurement across cases (docs/anomaly-scores.md)
COMBINED_PARTS = (LIKELIHOOD, COMPLEXITY, RECONSTRUCTION, PRIOR, COLOUR)  # what export records as `combined`'s parts
FIRST_COMBINED_PARTS = (LIKELIHOOD, COMPLEXITY, RECONSTRUCTION, LATENT)  # for a reference that names none
LATENT_SPREAD = 0.01  # added to each principal variance of the reference codes: no direction is ever certain
UNITS = {LIKELIHOOD: "nats", COMPLEXITY: "bits", RECONSTRUCTION: "nats", LATENT: "nats", PRIOR: "nats",
         COLOUR: "nats", COMBINED: "std. dev."}
DESCRIPTIONS = {
    LIKELIHOOD: "the model's log-likelihood estimate (ELBO; k > 1 importance-weighted): ranks simple images too high",
    COMPLEXITY: "log-likelihood in bits plus the image's compressed length: how much better the model codes the "
                "image than a generic image coder does",
    RECONSTRUCTION: "how well the image is rebuilt from its code: the decoder's log-likelihood at the posterior "
                    "mean, less that of a perfect rebuild",
    LATENT: "how usual the image's code is among the reference images' codes (Gaussian log-density, latent_pca)",
    PRIOR: "how probable the image's code is under the model's prior: the prior's log-density at the posterior mean",
    COLOUR: "how usual the image's average colour (grey level, for one channel) is among the training images' "
            "(a kernel density estimate): flags colour casts, wrong exposure, inverted or washed-out images",
    COMBINED: "the mean of likelihood, complexity, reconstruction, prior and colour, each in standard deviations from "
              "the reference images' mean: an image unusual in any way, or a little in several, scores low",
}


def check_name(name: str) -> str:
    """`name` if it is a vaekit score, else InputError listing them."""
    if name not in SCORES:
        raise InputError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
    return name


def references(manifest: Manifest) -> dict[str, ScoreQuantiles]:
    """Every score the bundle records reference figures for (`score_references`); a bundle exported before vaekit
    recorded them has only `score_quantiles`, the likelihood's."""
    found = dict(manifest.score_references or {})
    if manifest.score_quantiles is not None:
        found.setdefault(LIKELIHOOD, manifest.score_quantiles)
    return found


def missing_reference(name: str) -> str:
    """The one line that says a bundle cannot read `name`."""
    return (f"the bundle records no reference scores for {name!r} (exported before vaekit had that score): "
            f"re-export it with this vaekit, or use --score {LIKELIHOOD}")


def latent_log_density(mean: np.ndarray, pca: LatentPca) -> np.ndarray:
    """`latent`: log N(mean; pca mean, axes^T diag(variance + LATENT_SPREAD) axes) without its constant,
    -0.5 * sum(y^2 / (variance + LATENT_SPREAD)) with y = axes @ (mean - pca mean), float64 (N,)."""
    y = (mean.astype(np.float64) - np.asarray(pca.mean)) @ np.asarray(pca.axes).T
    return -0.5 * (y**2 / (np.asarray(pca.variance) + LATENT_SPREAD)).sum(axis=1)


def image_colours(images: np.ndarray) -> np.ndarray:
    """Each image's average value per channel, float64 (N, C), of float32 images (N, C, H, W) in [0, 1]: what the
    `colour` score compares."""
    return images.mean(axis=(2, 3), dtype=np.float64)


def colour_log_density(colours: np.ndarray, ref: ColourReference) -> np.ndarray:
    """`colour`: the log of the mean over the reference's rows of N(colours; row, diag(bandwidth^2)), float64 (N,)
    for `image_colours` (N, C); in chunks of images, so memory stays within a quarter of the runtime's budget."""
    means, h = np.asarray(ref.means, dtype=np.float64), np.asarray(ref.bandwidth, dtype=np.float64)
    per_chunk = items_per_chunk(DEFAULT_BUDGET_BYTES // 4, 8 * len(means) * (len(h) + 2))  # (rows, n, C) and 2 (rows, n)
    out = np.empty(len(colours))
    for start in range(0, len(colours), per_chunk):
        half_d2 = 0.5 * (((colours[start : start + per_chunk, None, :] - means[None]) / h) ** 2).sum(axis=2)
        nearest = half_d2.min(axis=1)
        out[start : start + per_chunk] = np.log(np.exp(nearest[:, None] - half_d2).sum(axis=1)) - nearest
    return out - np.log(len(means)) - np.log(h).sum() - 0.5 * len(h) * LOG_2PI


def standardized(values: np.ndarray, reference: ScoreQuantiles, name: str) -> np.ndarray:
    """(values - mean) / std of the reference images' `name` scores."""
    if reference.mean is None or reference.std is None or not reference.std > 0:
        raise InputError(f"the reference scores for {name!r} have no spread; re-export the bundle")
    return (values - reference.mean) / reference.std


def combined_parts(refs: dict[str, ScoreQuantiles]) -> tuple[str, ...]:
    """The scores `combined` averages on this bundle: those its reference names (`parts`), or, for a bundle
    exported before references named them, FIRST_COMBINED_PARTS."""
    ref = refs.get(COMBINED)
    return tuple(ref.parts) if ref is not None and ref.parts else FIRST_COMBINED_PARTS


def combined_references(manifest: Manifest) -> dict[str, ScoreQuantiles]:
    """The reference figures `combined` standardizes by; InputError in one line when the bundle lacks them, or when its
    `combined` averages a score this vaekit does not compute (a newer vaekit wrote it)."""
    refs = references(manifest)
    parts = combined_parts(refs)
    if COMBINED not in refs or any(name not in refs for name in parts):
        raise InputError(missing_reference(COMBINED))
    unknown = [name for name in parts if name not in SCORES or name == COMBINED]
    if unknown:
        raise InputError(f"the bundle's {COMBINED!r} averages {', '.join(map(repr, unknown))}, which this vaekit does not "
                         f"compute (a newer vaekit exported it): upgrade vaekit, or use --score {LIKELIHOOD}")
    return refs


def combined(values: dict[str, np.ndarray], refs: dict[str, ScoreQuantiles], parts: tuple[str, ...]) -> np.ndarray:
    """`combined`: the mean of the `parts` scores, each standardized by its reference images, summed in order."""
    return np.mean([standardized(values[name], refs[name], name) for name in parts], axis=0)


@dataclass(frozen=True)
class Choice:
    """The score a reading uses on one bundle, its reference figures, and a note when it is not the one asked
    for (a bundle exported before vaekit recorded the default's references reads the likelihood instead)."""

    name: str
    reference: ScoreQuantiles
    note: str | None = None


def choose(manifest: Manifest, name: str | None = None) -> Choice:
    """The score `name` (None: DEFAULT_SCORE, falling back to the likelihood on an older bundle) with its
    reference figures; InputError in one line when the bundle lacks the references of a score asked for by name."""
    refs = references(manifest)
    wanted = check_name(name or DEFAULT_SCORE)
    if wanted in refs:
        return Choice(wanted, refs[wanted])
    if name is not None:
        raise InputError(missing_reference(wanted))
    return Choice(LIKELIHOOD, refs[LIKELIHOOD], f"the bundle predates the {DEFAULT_SCORE!r} score (re-export it to "
                                                 f"use it); reading the {LIKELIHOOD!r} score instead")
