"""Training configuration: every knob of a run, stored in the run's `config.json`.

Fields left as None are filled from the data by `resolve` (see `recipe_for`), so that
`vaekit-train` with no arguments does the right thing on any image set.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from vaekit.runtime.choices import BINARIZE, DEVICES, PRECISIONS, SCHEDULES

from .errors import ConfigError
from .models import ModelConfig, conv_depth_for

MIXTURE_COMPONENTS = 16  # the recipe's prior for the mlp family: 16 beat the standard normal (benchmarks/quality.py)
CENTER_WHY = ("the encoder subtracts the training images' mean image, and the decoder's output bias starts at its "
              "log-odds: 0.8-2.2 nats better test NLL on Fashion-MNIST at 45-60 s in float32 and bf16, a tie at 300 s")
# Chosen by the trainer once it has timed a few steps, when fitting the run to a --max-time budget.
FITTED_TO_TIME = ("epochs", "lr", "kl_warmup_epochs")
# Options of earlier versions that runs may still hold in config.json; ignored when they are read back.
REMOVED_OPTIONS = {"conv_decoder"}


@dataclass
class TrainConfig:
    """What to train on, which model, which objective and for how long."""

    # data
    data: str = "digits"
    image_size: int | None = None
    channels: int | None = None
    test_fraction: float = 0.1
    skip_bad_images: bool = False
    binarize: str | None = None  # "dynamic" or "none"; default: dynamic for bernoulli
    # model (None: chosen by `recipe_for`)
    model: str | None = None
    latent_dim: int | None = None
    hidden: list[int] | None = None
    conv_channels: list[int] | None = None
    conv_blocks: int = 1
    activation: str | None = None
    likelihood: str = "bernoulli"
    variance: str | None = None  # gaussian: "shared" (sigma-VAE, the default) or "pixel"
    prior_components: int | None = None  # 0: the standard normal prior; K: a learned mixture of K Gaussians
    center_inputs: bool | None = None  # the encoder subtracts the training images' mean image
    # objective
    beta: float = 1.0
    kl_warmup_epochs: float | None = None
    free_bits: float = 0.0
    iwae_k: int | None = None  # samples of the importance-weighted bound (1: the ELBO); None: the recipe's
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
    nll_k: int = 1000
    nll_images: int = 2000
    # run
    seed: int = 0
    device: str = "auto"
    precision: str | None = None  # "float32" or "bfloat16"; None: chosen for the device (see trainer.auto_precision)
    out: str | None = None
    force: bool = False
    images_every: int | None = None  # sample/reconstruction grids every N epochs (default: ~20 per run)
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k not in REMOVED_OPTIONS}
        unknown = sorted(set(d) - names)
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
            (self.nll_k >= 1, f"nll_k must be at least 1, got {self.nll_k}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}"),
            (self.precision in (None, *PRECISIONS),
             f"precision must be one of {PRECISIONS} (or None: auto), got {self.precision!r}"),
            (self.binarize in (None, *BINARIZE), f"binarize must be one of {BINARIZE}, got {self.binarize!r}"),
            (self.device in DEVICES or self.device.startswith("cuda:"),
             f"device must be auto, cpu or cuda[:N], got {self.device!r}"),
            (self.channels in (None, 1, 3), f"channels must be 1 or 3, got {self.channels}"),
            (self.variance in (None, "shared", "pixel"), f"variance must be 'shared' or 'pixel', got {self.variance!r}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        if self.free_bits > 0 and self.prior_components:
            raise ConfigError("--free-bits needs the standard normal prior's per-dimension KL; "
                              "add --prior-components 0 or leave out --free-bits")
        if self.binarize == "dynamic" and self.likelihood != "bernoulli":
            raise ConfigError("--binarize dynamic needs --likelihood bernoulli")


# The mlp recipe's schedule follows the run's length (README, "What the recipe tried"): short runs gain from a
# larger learning rate and every run from a KL warm-up over half of it (measured on Fashion-MNIST at 45 s to 300 s).
LR_SHORT, LR_SHORT_STEPS, LR_DECAY_POWER = 4e-3, 5_000, 0.5
CONV_LR = 2e-3  # the conv family's rate: the length-dependent schedule is measured on the mlp family only


def lr_for(model: str, steps: int) -> float:
    """The recipe's learning rate for a run of `steps` steps: for the mlp family 4e-3 up to 5,000 steps, then
    falling as 1/sqrt(steps) (1.8e-3 near 25,000 steps); 2e-3 for the conv family."""
    if model == "conv":
        return CONV_LR
    return LR_SHORT * min(1.0, LR_SHORT_STEPS / max(1, steps)) ** LR_DECAY_POWER


def kl_warmup_for(model: str, steps_per_epoch: int, epochs: int) -> float:
    """The KL warm-up in epochs: half the run for the mlp family; for the conv family about 2,000 steps (between
    1 and 10 epochs) and at most a quarter of the run. Either way the run ends at the full KL weight."""
    if model == "conv":
        return min(10.0, max(1.0, 2000 / steps_per_epoch), epochs / 4)
    return epochs / 2


# Long runs of the 28x28 mlp recipe get a larger network and batch (README, "What the recipe tried"): on Fashion-MNIST
# they were 0.5-0.7 nats better at 300 s (two seeds; about 3.5 M images seen), a tie at 60 s (0.7 M) and 1 nat worse
# on an 8,000-image subset at 45 s (0.5 M; a tie at 240 s, 3 M), at about the same images per second.
MLP_HIDDEN, LONG_RUN_HIDDEN, LONG_RUN_BATCH, LONG_RUN_IMAGES = [512, 256], [768, 384], 256, 2_000_000
LONG_RUN_WHY = ("768-384 and batch 256 for a run that sees at least 2 M images: 0.5-0.7 nats better than 512-256 and "
                "batch 128 on Fashion-MNIST at 300 s, a tie at 60 s and worse in shorter runs")
LONG_RUN_COMPONENTS = 64
# The 28x28 mlp recipe trains the importance-weighted bound with LATE_IWAE_K samples over the run's last quarter
# (README, "What the recipe tried"): 0.17-0.3 nats better test NLL on Fashion-MNIST at 60 s and 300 s, in fewer steps.
LATE_IWAE_K, LATE_IWAE_FROM = 4, 0.75
LATE_IWAE_WHY = (f"the ELBO, then the importance-weighted bound with {LATE_IWAE_K} samples over the last "
                 f"{1 - LATE_IWAE_FROM:.0%} of the run: 0.2-0.3 nats better test NLL on Fashion-MNIST at 60 s and 300 s "
                 "in float32, 0.17 in bf16 at 300 s, than the ELBO throughout, though its steps are about 2.5x slower")
ELBO_WHY = ("the ELBO: the importance-weighted bound late in the run is measured only on 28x28 Bernoulli images, "
            "without free bits")
LONG_RUN_COMPONENTS_WHY = (f"a learned mixture of {LONG_RUN_COMPONENTS} Gaussians for a run that sees at least 2 M images: "
                           f"0.2 nats better test NLL than {MIXTURE_COMPONENTS} on Fashion-MNIST at 300 s (227.90 vs 228.11 in "
                           "float32, 229.86 vs 230.0-230.25 in bf16), for about 4% fewer steps")


def long_run_applies(cfg: TrainConfig, why: dict[str, str], images: float) -> bool:
    """Whether a run that sees `images` training images (epochs x training images) should take the long-run network
    and batch: only where the recipe chose the 28x28 mlp's network and batch (`why` has a reason for each field the
    recipe filled)."""
    return cfg.hidden == MLP_HIDDEN and "hidden" in why and "batch_size" in why and images >= LONG_RUN_IMAGES


def take_long_run(cfg: TrainConfig, why: dict[str, str]) -> None:
    """Switch a config for which `long_run_applies` to the long-run network and batch, and the recipe's mixture prior
    (not one the user chose) to LONG_RUN_COMPONENTS, with the reasons."""
    cfg.hidden, cfg.batch_size = list(LONG_RUN_HIDDEN), LONG_RUN_BATCH
    why["hidden"] = why["batch_size"] = LONG_RUN_WHY
    if "prior_components" in why and cfg.prior_components == MIXTURE_COMPONENTS:
        cfg.prior_components = LONG_RUN_COMPONENTS
        why["prior_components"] = LONG_RUN_COMPONENTS_WHY


def recipe_for(image_shape: tuple[int, int, int], n_train: int, batch_size: int | None,
               model: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Defaults for data of this shape and size (and for `model` when the user chose it): the recommended
    recipe (measured by benchmarks/quality.py and benchmarks/conv_scaling.py), and why each value was chosen
    (config.json keeps the reasons). Images of 32x32 and more whose sides halve at least twice get the conv
    family, with a batch that shrinks as the images grow (training memory grows with the pixels)."""
    c, h, w = image_shape
    size = f"{c}x{h}x{w} images"
    if model is None:
        model = "conv" if min(h, w) >= 32 and conv_depth_for(h, w) >= 2 else "mlp"
    if model == "conv":
        recipe: dict[str, Any] = {
            "model": "conv", "latent_dim": 32 if h * w <= 32 * 32 else 64, "hidden": [], "activation": "silu",
            "batch_size": 128 if h * w <= 32 * 32 else 32 if h * w <= 64 * 64 else 16, "prior_components": 0,
            "center_inputs": False,
        }
        why = {"model": f"conv: {size} of 32x32 or more whose sides halve at least twice",
               "prior_components": "0, the standard normal prior: the mixture prior is measured on the mlp family only",
               "center_inputs": "no: centring the inputs is measured on the mlp family only",
               "batch_size": "training memory grows with the pixels: 128 up to 32x32, 32 up to 64x64, 16 above "
                             "(benchmarks/conv_scaling.py)"}
    elif c * h * w <= 256:  # tiny images such as the 8x8 digits
        recipe = {"model": "mlp", "latent_dim": 8, "hidden": [256, 128], "activation": "silu", "batch_size": 128}
        why = {"model": f"mlp 256-128, latent 8: {size} have at most 256 values"}
    else:
        recipe = {"model": "mlp", "latent_dim": 32, "hidden": list(MLP_HIDDEN), "activation": "silu", "batch_size": 128}
        why = {"model": f"mlp 512-256, latent 32: {size} below 32x32 (or sides that do not halve twice); the best "
                        "quality for time measured on Fashion-MNIST (benchmarks/quality.py)"}
        recipe.update(iwae_k=LATE_IWAE_K, iwae_from=LATE_IWAE_FROM)
        why.update(iwae_k=LATE_IWAE_WHY, iwae_from=LATE_IWAE_WHY)
    steps_per_epoch = max(1, math.ceil(n_train / (batch_size or recipe["batch_size"])))
    epochs = int(min(100, max(10, math.ceil(2000 / steps_per_epoch))))
    # lr and the warm-up follow the run's length, known only once the epochs are (resolve, or the trainer's probe)
    recipe.update(variance="shared", epochs=epochs, lr=None, kl_warmup_epochs=None)
    why.update(
        lr="AdamW with a cosine schedule to 5%; conv: 2e-3; mlp: 4e-3 for runs of up to 5,000 steps, less for "
           "longer ones (as 1/sqrt(steps): 1.8e-3 near 25,000): the best rates measured on Fashion-MNIST at 45 s to 300 s",
        variance="gaussian likelihoods learn one variance for all pixels (sigma-VAE): sharp samples",
        epochs=f"at least ~2,000 steps, between 10 and 100 epochs ({n_train} images, {steps_per_epoch} steps per epoch)",
        kl_warmup_epochs="mlp: half the run, 0.5-1.2 nats better than a quarter or less on Fashion-MNIST at 45 and "
                         "60 s (a tie at 300 s); conv: about 2,000 steps (1 to 10 epochs), at most a quarter of the run",
    )
    if model == "mlp":
        why["activation"] = ("silu: better test NLL than ELU for the same time a step, by 0.8-1.6 nats on Fashion-MNIST "
                             "at 45 s to 300 s and 0.1-0.2 on the 8x8 digits")
    recipe.setdefault("iwae_k", 1)
    recipe.setdefault("iwae_from", 0.0)
    why.setdefault("iwae_k", ELBO_WHY)
    why.setdefault("iwae_from", ELBO_WHY)
    recipe.setdefault("center_inputs", True)
    why.setdefault("center_inputs", CENTER_WHY)
    recipe.setdefault("prior_components", MIXTURE_COMPONENTS)
    why.setdefault("prior_components", f"a learned mixture of {MIXTURE_COMPONENTS} Gaussians: about 2 nats better test "
                                       "NLL than the standard normal at equal epochs on Fashion-MNIST, for about 4% more time a step")
    for key in ("latent_dim", "hidden", "activation"):
        why.setdefault(key, why["model"])
    why.setdefault("batch_size", "128: the largest batch that did not lose quality for time (benchmarks/quality.py)")
    return recipe, why


def resolve(cfg: TrainConfig, image_shape: tuple[int, int, int],
            n_train: int) -> tuple[TrainConfig, ModelConfig, dict[str, str]]:
    """Fill the config's None fields from `recipe_for`; return it, the ModelConfig it implies, and why each filled
    value was chosen. What follows the run's length (the learning rate, the KL warm-up, and the 28x28 recipe's network
    and batch for long runs) is chosen here from the epochs; with `max_time` and no `epochs`, epochs, rate and warm-up
    stay None and the trainer chooses all four once it has timed a few steps."""
    filled = TrainConfig.from_dict(cfg.to_dict())
    recipe, reasons = recipe_for(image_shape, n_train, cfg.batch_size, cfg.model)
    fit_to_time = cfg.epochs is None and cfg.max_time is not None
    if cfg.iwae_k is not None and cfg.iwae_from is None:  # the user's bound, over the whole run
        filled.iwae_from = 0.0
    if filled.likelihood != "bernoulli" or filled.free_bits > 0:  # the late bound is measured on neither
        recipe.update(iwae_k=1, iwae_from=0.0)
        reasons.update(iwae_k=ELBO_WHY, iwae_from=ELBO_WHY)
    why = {}
    for key, value in recipe.items():
        if getattr(filled, key) is None:
            why[key] = reasons[key]
            if not (fit_to_time and key in FITTED_TO_TIME):
                setattr(filled, key, value)
    if filled.epochs is not None:  # the user's --epochs or the recipe's: the network, rate and warm-up follow the run's length
        if long_run_applies(filled, why, filled.epochs * n_train):
            take_long_run(filled, why)
        steps_per_epoch = max(1, math.ceil(n_train / filled.batch_size))
        if filled.lr is None:
            filled.lr = lr_for(filled.model, steps_per_epoch * filled.epochs)
        if filled.kl_warmup_epochs is None:
            filled.kl_warmup_epochs = kl_warmup_for(filled.model, steps_per_epoch, filled.epochs)
    if filled.prior_components and cfg.prior_components is None and filled.free_bits > 0:
        filled.prior_components = 0
        why["prior_components"] = "0, the standard normal prior: --free-bits needs its per-dimension KL"
    if filled.binarize is None:
        filled.binarize = "dynamic" if filled.likelihood == "bernoulli" else "none"
    filled.validate()
    model = ModelConfig(
        kind=filled.model,
        image_shape=image_shape,
        latent_dim=filled.latent_dim,
        likelihood=filled.likelihood,
        hidden=filled.hidden,
        conv_channels=filled.conv_channels,
        conv_blocks=filled.conv_blocks,
        variance=filled.variance if filled.likelihood == "gaussian" else "pixel",  # the field's default
        activation=filled.activation,
        prior_components=filled.prior_components,
        center_inputs=filled.center_inputs,
    )
    return filled, model, why
