"""`RunSummary`: what a finished training run measured. `vaekit-train` writes it as the run folder's
`summary.json` and `train()` returns it; `vaekit-export` copies its fields unchanged into the bundle's
`provenance` (with `run` set to where the folder was at export); the UI reads them back from there.
One set of names everywhere, documented in docs/bundle-format.md ("provenance").

Standard library only, so that train (which writes it) and the runtime and UI (which read it) share it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import InputError


@dataclass(frozen=True)
class RunSummary:
    """A finished run's figures; nats are per image, summed over pixels."""

    run: str  # the run folder (absolute), where it was written; a bundle's provenance keeps only its name
    data: str  # the data source, e.g. "digits (scikit-learn)" or an .npz file name
    epochs: float  # epochs trained (fractional when --max-time stopped mid-epoch)
    steps: int
    wall_time_s: float  # training time, per-epoch evaluation and checkpoints included, the final NLL not
    metrics: dict[str, float]  # final held-out test_elbo, test_recon (a negative log-likelihood) and test_kl
    test_nll: float  # held-out negative log-likelihood, importance-weighted bound with test_nll_k samples
    test_nll_k: int
    test_nll_images: int
    test_nll_time_s: float
    binarized: bool  # whether training binarized images dynamically (Bernoulli likelihood)
    test_bits_per_dim: float | None = None  # test_nll / (C * H * W * ln 2): the colour-image field's unit
    heldout_images: int | None = None  # held-out images stored in the run folder for export (heldout.npy)
    heldout_sha256: str | None = None  # that file's checksum
    vaekit_version: str | None = None
    test_nll_stderr: float | None = None  # the standard error of test_nll over its test_nll_images images

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        """A summary from its dict form (summary.json, or a bundle's provenance); InputError says what is
        missing."""
        if not isinstance(data, dict):
            raise InputError(f"expected a JSON object, got {type(data).__name__}")
        values = dict(data)
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is not None}
        missing = sorted(required - set(values) - {"run"})
        if missing:
            raise InputError(f"missing {', '.join(missing)}")
        values.setdefault("run", "")
        return cls(**{key: value for key, value in values.items() if key in known})
