"""What the user asked of a run: `vaekit-train`'s flags as one frozen dataclass.

Fields left as None are chosen from the data by the planner (`plan.py`), which never changes this object: it
makes a `Plan` of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from vaekit.runtime.choices import BINARIZE, DEVICES, PRECISIONS, SCHEDULES, VARIANCES

from .errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """What to train on, which model, which objective and for how long; None: the recipe's choice."""

    # data
    data: str = "digits"
    image_size: int | None = None
    channels: int | None = None
    test_fraction: float = 0.1
    skip_bad_images: bool = False
    binarize: str | None = None  # "dynamic" or "none"; default: dynamic for bernoulli
    # model
    model: str | None = None
    latent_dim: int | None = None
    hidden: tuple[int, ...] | None = None
    conv_channels: tuple[int, ...] | None = None
    conv_blocks: int | None = None  # residual blocks per conv level
    activation: str | None = None
    likelihood: str | None = None  # "bernoulli" or "gaussian"; None: chosen from the data (plan.likelihood_for)
    variance: str | None = None  # gaussian: "shared" (sigma-VAE, the default) or "pixel"
    prior_components: int | None = None  # 0: the standard normal prior; K: a learned mixture of K Gaussians
    prior_fit: bool | None = None  # the mixture is fitted to the training codes when training ends, not learned
    center_inputs: bool | None = None  # the encoder subtracts the training images' mean image
    # objective
    beta: float = 1.0
    kl_warmup_epochs: float | None = None
    free_bits: float = 0.0
    iwae_k: int | None = None  # samples of the importance-weighted bound (1: the ELBO)
    iwae_from: float | None = None  # share of the run after which training takes that bound (0: all of it)
    # optimisation
    epochs: int | None = None
    max_time: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float = 0.0
    schedule: str = "cosine"  # or "constant"
    grad_clip: float | None = 100.0
    # evaluation
    nll_k: int | None = None  # the final estimate's samples; None: sized to its share of the run (chores.nll_size)
    nll_images: int | None = None  # and its held-out images
    # run
    seed: int = 0
    device: str = "auto"
    precision: str | None = None  # "float32" or "bfloat16"; None: chosen for the device (plan.auto_precision)
    out: str | None = None
    force: bool = False
    images_every: int | None = None  # sample/reconstruction grids every N epochs (default: paced by the clock)
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("hidden", "conv_channels"):  # tuples, so that not even a list inside it can change
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown training options {unknown}; see `vaekit-train --help`")
        return cls(**d)

    def validate(self) -> None:
        """Raise ConfigError naming the option and what it accepts."""
        checks = [
            (self.batch_size is None or self.batch_size >= 1, f"batch_size must be at least 1, got {self.batch_size}"),
            (self.epochs is None or self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}"),
            (self.max_time is None or self.max_time > 0, f"max_time must be positive seconds, got {self.max_time}"),
            (self.beta >= 0, f"beta must be non-negative, got {self.beta}"),
            (self.free_bits >= 0, f"free_bits must be non-negative, got {self.free_bits}"),
            (self.iwae_k is None or self.iwae_k >= 1, f"iwae_k must be at least 1, got {self.iwae_k}"),
            (self.iwae_from is None or 0 <= self.iwae_from < 1,
             f"iwae_from must be a share of the run from 0 up to 1, got {self.iwae_from}"),
            (self.seed >= 0, f"seed must be a non-negative integer, got {self.seed}"),
            (self.nll_k is None or self.nll_k >= 1, f"nll_k must be at least 1, got {self.nll_k}"),
            (self.nll_images is None or self.nll_images >= 1, f"nll_images must be at least 1, got {self.nll_images}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (self.precision in (None, *PRECISIONS),
             f"precision must be one of {PRECISIONS} (or None: auto), got {self.precision!r}"),
            (self.binarize in (None, *BINARIZE), f"binarize must be one of {BINARIZE}, got {self.binarize!r}"),
            (self.device in DEVICES or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda[:N], got {self.device!r}"),
            (self.channels in (None, 1, 3), f"channels must be 1 or 3, got {self.channels}"),
            (self.variance in (None, *VARIANCES), f"variance must be one of {VARIANCES}, got {self.variance!r}"),
            (self.prior_components is None or self.prior_components >= 0,
             f"prior_components must be 0 (the standard normal) or more, got {self.prior_components}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.free_bits > 0 and self.prior_components:
            raise ConfigError("--free-bits needs the standard normal prior's per-dimension KL; "
                              "add --prior-components 0 or leave out --free-bits")
        if self.binarize == "dynamic" and self.likelihood not in (None, "bernoulli"):
            raise ConfigError("--binarize dynamic needs --likelihood bernoulli")
