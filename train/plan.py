"""The planner: what the user asked (`TrainConfig`), the data's shape and size, the device, the time budget and the
measured speed of a step in; a frozen `Plan` out, holding every value the run uses and why it was chosen.

Nothing changes a plan once it is made: the loop and the chores only read it, config.json and every checkpoint
store it, and a resumed run reads it back. The recipe's choices are measured (benchmarks/quality.py,
benchmarks/conv_scaling.py; the figures are in docs/recipe-notebook.md); each reason lands in config.json's `why`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

import torch

from .budget import NLL_SHARE
from .config import TrainConfig
from .errors import ConfigError, RunError, TrainingError
from .models import ModelConfig, conv_depth_for, default_conv_channels

MIXTURE_COMPONENTS = 16  # the mlp family's prior: 16 beat the standard normal
# The conv family's prior is fitted after training: at most this many components, and this many codes for each
FITTED_COMPONENTS, FITTED_CODES_PER_COMPONENT = 64, 20
CENTER_WHY = ("the encoder subtracts the training images' mean image, and the decoder's output bias starts at its "
              "log-odds: 0.8-2.2 nats better test NLL on Fashion-MNIST at 45-60 s in float32 and bf16, a tie at 300 s")
# The mlp recipe's learning rate follows the run's length: short runs gain from a larger one
LR_SHORT, LR_SHORT_STEPS, LR_DECAY_POWER = 4e-3, 5_000, 0.5
CONV_LR = 1e-3  # the length-dependent rate is measured on the mlp family only
CONV_WHY = "measured on 64x64 photo crops at equal time (benchmarks/colour.py; docs/recipe-notebook.md)"
# Long runs of the 28x28 mlp recipe get a larger network, batch and mixture, as they gain from them
MLP_HIDDEN, LONG_RUN_HIDDEN, LONG_RUN_BATCH, LONG_RUN_IMAGES = (512, 256), (768, 384), 256, 2_000_000
LONG_RUN_COMPONENTS = 64
LONG_RUN_WHY = ("768-384 and batch 256 for a run that sees at least 2 M images: 0.5-0.7 nats better than 512-256 and "
                "batch 128 on Fashion-MNIST at 300 s, a tie at 60 s and worse in shorter runs")
LONG_RUN_COMPONENTS_WHY = (f"a learned mixture of {LONG_RUN_COMPONENTS} Gaussians for a run that sees at least 2 M images: "
                           f"0.2 nats better test NLL than {MIXTURE_COMPONENTS} on Fashion-MNIST at 300 s (227.90 vs 228.11 in "
                           "float32, 229.86 vs 230.0-230.25 in bf16), for about 4% fewer steps")
# The 28x28 mlp recipe trains the importance-weighted bound over the run's last quarter, which beat the ELBO throughout
LATE_IWAE_K, LATE_IWAE_FROM = 4, 0.75
LATE_IWAE_WHY = (f"the ELBO, then the importance-weighted bound with {LATE_IWAE_K} samples over the last "
                 f"{1 - LATE_IWAE_FROM:.0%} of the run: 0.2-0.3 nats better test NLL on Fashion-MNIST at 60 s and 300 s "
                 "in float32, 0.17 in bf16 at 300 s, than the ELBO throughout, though its steps are about 2.5x slower")
ELBO_WHY = ("the ELBO: the importance-weighted bound late in the run is measured only on 28x28 Bernoulli images, "
            "without free bits")
# Fitting a run to --max-time: planning allows this many times the epochs the measured speed fits, since the
# schedule follows the clock (the cap only matters if the machine gets much faster)
FIT_HEADROOM = 2.0
# The final test NLL estimate at its most (importance-weighted, k samples per image), and the images it keeps
# before it takes fewer samples: k sets the bound's bias, the images only its noise (which summary.json states)
NLL_K, NLL_IMAGES, NLL_MIN_IMAGES = 1000, 2000, 200


class Probe(NamedTuple):
    """What timing a few steps of a draft plan measured (averaged over the processes, so that all plan alike)."""

    step_seconds: float
    steps: int
    seconds_left: float  # for training, after start-up and the chores' share of the budget


Measure = Callable[["Plan"], Probe]


@dataclass(frozen=True)
class Plan:
    """Every value one run uses, chosen once before it starts (`make_plan`), and why (`why`)."""

    model: ModelConfig
    # data
    data: str
    image_size: int | None
    channels: int | None
    test_fraction: float
    skip_bad_images: bool
    train_images: int
    binarize: str
    # objective
    beta: float
    kl_warmup_epochs: float
    free_bits: float
    iwae_k: int
    iwae_from: float
    # optimisation
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str
    grad_clip: float | None
    # evaluation and outputs
    nll_k: int | None  # None: sized to the estimate's share of the run when training ends
    nll_images: int | None
    images_every: int | None
    # run
    seed: int
    device: str
    precision: str
    step_seconds: float | None  # measured when fitting to a budget: the loop's clock starts from it
    why: dict[str, str] = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_images / self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def to_dict(self) -> dict[str, Any]:
        """{"model", "train", "why"}: what config.json and checkpoints hold."""
        train = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("model", "why")}
        return {"model": self.model.to_dict(), "train": train, "why": dict(self.why)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Plan:
        try:
            return cls(model=ModelConfig.from_dict(d["model"]), why=dict(d["why"]), **d["train"])
        except (KeyError, TypeError) as e:
            raise RunError(f"the saved plan cannot be read ({e}); it comes from another vaekit version: "
                           "export the run as it is, or train again") from e


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when torch sees a GPU; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto, "
                            "or install a CUDA build of torch")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX) and torch may use it: False where torch's
    kernels are capped below AVX-512 (ATEN_CPU_CAPABILITY=avx2), or where torch lacks these probes."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and any(probe is not None and probe() for probe in probes)


def auto_precision(device_type: str, native_bf16: bool) -> tuple[str, str]:
    """The training precision `--precision auto` picks for this device, and why: bfloat16 only on a CPU with native
    bf16 (elsewhere on CPU it would be emulated and slower; CUDA keeps float32, as bf16 is not benchmarked there)."""
    if device_type == "cpu" and native_bf16:
        return "bfloat16", ("bfloat16: this CPU has native bf16 matmuls (avx512_bf16/AMX): about 1.3x faster steps at "
                            "equal test NLL (benchmarks/train_speed.py; docs/recipe-notebook.md)")
    if device_type == "cpu":
        return "float32", ("float32: this CPU has no native bf16 matmuls (avx512_bf16/AMX), or torch's kernels are capped "
                           "below AVX-512 (ATEN_CPU_CAPABILITY); emulated bf16 would be slower")
    return "float32", f"float32: auto keeps float32 on {device_type} (bf16 training is not benchmarked there)"


def lr_for(model: str, steps: int) -> float:
    """The recipe's learning rate for a run of `steps` steps: for the mlp family 4e-3 up to 5,000 steps, then
    falling as 1/sqrt(steps); 2e-3 for the conv family."""
    if model == "conv":
        return CONV_LR
    return LR_SHORT * min(1.0, LR_SHORT_STEPS / max(1, steps)) ** LR_DECAY_POWER


def kl_warmup_for(model: str, steps_per_epoch: int, epochs: float) -> float:
    """The KL warm-up in epochs: half the run for the mlp family; for the conv family about 2,000 steps (between
    1 and 10 epochs) and at most a quarter of the run. Either way the run ends at the full KL weight."""
    if model == "conv":
        return min(10.0, max(1.0, 2000 / steps_per_epoch), epochs / 4)
    return epochs / 2


def likelihood_for(channels: int, binarize: str | None) -> tuple[str, str]:
    """The likelihood for images with this many channels when --likelihood is left out, and why: colour images get
    the Gaussian (photos are continuous tones), grayscale ones Bernoulli on dynamically binarized pixels, which the
    recipe's measured choices on the digits and Fashion-MNIST assume; --binarize dynamic asks for Bernoulli."""
    if binarize == "dynamic":
        return "bernoulli", "bernoulli: --binarize dynamic asks for binary pixels"
    if channels == 3:
        return "gaussian", ("gaussian: colour images are continuous tones; on 64x64 photo crops (mlp) it reconstructed held-out "
                            "images 0.9 dB (PSNR) better than Bernoulli on binarized pixels in 60 s (docs/recipe-notebook.md)")
    return "bernoulli", ("bernoulli on dynamically binarized pixels: grayscale images; the recipe's measured choices "
                         "(digits, Fashion-MNIST) assume it; --likelihood gaussian for continuous-tone grayscale")


def recipe_for(image_shape: tuple[int, int, int], n_train: int, batch_size: int | None,
               model: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Defaults for data of this shape and size (and for `model` when the user chose it), and why each was chosen.
    Images of 32x32 and more whose sides halve at least twice get the conv family, with a batch that shrinks as the
    images grow (training memory grows with the pixels). The learning rate and KL warm-up follow the run's length and
    are chosen once it is known (`_for_length`)."""
    c, h, w = image_shape
    size = f"{c}x{h}x{w} images"
    if model is None:
        model = "conv" if min(h, w) >= 32 and conv_depth_for(h, w) >= 2 else "mlp"
    if model == "conv":
        recipe: dict[str, Any] = {
            "model": "conv", "latent_dim": 32 if h * w <= 32 * 32 else 128, "hidden": (), "activation": "silu",
            "conv_channels": tuple(default_conv_channels(image_shape)), "conv_blocks": 0,
            "batch_size": 128 if h * w <= 32 * 32 else 64 if h * w <= 64 * 64 else 32, "center_inputs": False,
            "variance": "analytic", "prior_fit": True,
            "prior_components": min(FITTED_COMPONENTS, max(1, n_train // FITTED_CODES_PER_COMPONENT)),
        }
        why = {"model": f"conv: {size} of 32x32 or more whose sides halve at least twice",
               "conv_channels": f"{CONV_WHY}: widths from 16, doubling a level, beat widths from 32 (fewer images a "
                                "second); about 4x4 at the smallest level",
               "conv_blocks": f"{CONV_WHY}: a stride-2 conv a level and no residual blocks; blocks at full resolution "
                              "cost 2-3x the time a step",
               "latent_dim": f"{CONV_WHY}: 128 beat 256 (64x64); 32 up to 32x32 (not measured)",
               "prior_components": f"a mixture of up to {FITTED_COMPONENTS} Gaussians, one per {FITTED_CODES_PER_COMPONENT} "
                                   f"training images: {CONV_WHY}, 64 beat 16 and tied 256",
               "prior_fit": f"yes: {CONV_WHY}, a mixture fitted to the training codes after training gave samples that "
                            "look like the data (the standard normal's are saturated blobs) and a smaller KL; one learned "
                            "with the weights lost 0.23 bits/dim",
               "center_inputs": "no: centring the inputs is measured on the mlp family only",
               "variance": f"analytic: {CONV_WHY}, the batch's mean squared error as the one variance (sigma-VAE) "
                           "beat a learned one by 1.1 bits/dim and 6.8 dB (held-out PSNR) in 60 s",
               "batch_size": f"{CONV_WHY}: 64 up to 64x64; 128 up to 32x32 and 32 above, for memory "
                             "(benchmarks/conv_scaling.py)"}
    elif c * h * w <= 256:  # tiny images such as the 8x8 digits
        recipe = {"model": "mlp", "latent_dim": 8, "hidden": (256, 128), "activation": "silu", "batch_size": 128}
        why = {"model": f"mlp 256-128, latent 8: {size} have at most 256 values"}
    else:
        recipe = {"model": "mlp", "latent_dim": 32, "hidden": MLP_HIDDEN, "activation": "silu", "batch_size": 128,
                  "iwae_k": LATE_IWAE_K, "iwae_from": LATE_IWAE_FROM}
        why = {"model": f"mlp 512-256, latent 32: {size} below 32x32 (or sides that do not halve twice); the best "
                        "quality for time measured on Fashion-MNIST (benchmarks/quality.py)",
               "iwae_k": LATE_IWAE_WHY, "iwae_from": LATE_IWAE_WHY}
    steps_per_epoch = max(1, math.ceil(n_train / (batch_size or recipe["batch_size"])))
    recipe.setdefault("variance", "shared")
    recipe.update(epochs=int(min(100, max(10, math.ceil(2000 / steps_per_epoch)))),
                  lr=None, kl_warmup_epochs=None)
    why.setdefault("variance", "shared: a gaussian likelihood learns one variance for all pixels: 0.2-0.3 dB better "
                               "held-out PSNR and 2.1 bits/dim better held-out ELBO than one per pixel on 64x64 photo "
                               "crops (mlp) in 60 s (docs/recipe-notebook.md)")
    why.update(
        lr=f"AdamW with a cosine schedule to 5%; conv: 1e-3, which beat 2e-3 and 4e-3 ({CONV_WHY}); mlp: 4e-3 for runs of "
           "up to 5,000 steps, less for longer ones (as 1/sqrt(steps): 1.8e-3 near 25,000): the best rates measured on "
           "Fashion-MNIST at 45 s to 300 s",
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
    recipe.setdefault("prior_fit", False)
    why.setdefault("prior_fit", "no: the mixture is learned with the weights (measured on Fashion-MNIST)")
    recipe.setdefault("prior_components", MIXTURE_COMPONENTS)
    why.setdefault("prior_components", f"a learned mixture of {MIXTURE_COMPONENTS} Gaussians: about 2 nats better test "
                                       "NLL than the standard normal at equal epochs on Fashion-MNIST, for about 4% more time a step")
    for key in ("latent_dim", "hidden", "activation"):
        why.setdefault(key, why["model"])
    why.setdefault("batch_size", "128: the largest batch that did not lose quality for time (benchmarks/quality.py)")
    return recipe, why


def make_plan(cfg: TrainConfig, image_shape: tuple[int, int, int], n_train: int, device: torch.device,
              measure: Measure) -> Plan:
    """The run's plan: `cfg` with every None filled from the recipe, the precision for `device`, and the run's length.
    With --max-time and no --epochs, `measure` times a few steps of a draft and the epochs are fitted to the budget
    (the rate, warm-up, and for long runs the network and batch, follow)."""
    cfg.validate()
    values, why = _filled(cfg, image_shape, n_train)
    if cfg.precision is None:
        values["precision"], why["precision"] = auto_precision(device.type, cpu_has_native_bf16())
    if values["precision"] == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported(False):
        raise ConfigError(f"--precision bfloat16: this GPU ({torch.cuda.get_device_name(device)}) has no native "
                          "bf16 (it needs compute capability 8.0 or newer); use --precision float32 or auto")
    if values["epochs"] is not None:
        return _build(_for_length(values, why, values["epochs"], n_train), why, image_shape, n_train)
    return _fitted_to_time(values, why, image_shape, n_train, cfg.max_time, measure)


def _filled(cfg: TrainConfig, image_shape: tuple[int, int, int], n_train: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The config's values with its None fields filled from `recipe_for` (but the rate and warm-up, which follow
    the run's length), and why each filled value was chosen."""
    values = cfg.to_dict()
    recipe, reasons = recipe_for(image_shape, n_train, cfg.batch_size, cfg.model)
    recipe["likelihood"], reasons["likelihood"] = likelihood_for(image_shape[0], cfg.binarize)
    likelihood = cfg.likelihood or recipe["likelihood"]
    if cfg.iwae_k is not None and cfg.iwae_from is None:  # the user's bound, over the whole run
        values["iwae_from"] = 0.0
    if likelihood != "bernoulli" or cfg.free_bits > 0:  # the late bound is measured on neither
        recipe.update(iwae_k=1, iwae_from=0.0)
        reasons.update(iwae_k=ELBO_WHY, iwae_from=ELBO_WHY)
    if cfg.max_time is not None and cfg.epochs is None:
        recipe["epochs"] = None  # fitted to the budget once a step is timed
    recipe["binarize"] = "dynamic" if likelihood == "bernoulli" else "none"
    reasons["binarize"] = ("dynamic: the bernoulli likelihood's binarized-MNIST protocol" if likelihood == "bernoulli"
                           else "none: the gaussian likelihood models the pixels' values")
    why = {}
    for key, value in recipe.items():
        if values[key] is None:
            values[key], why[key] = value, reasons[key]
    if likelihood != "gaussian":  # the variance is the Gaussian's alone
        why.pop("variance", None)
    if values["prior_components"] and cfg.prior_components is None and cfg.free_bits > 0:
        values["prior_components"] = 0
        why["prior_components"] = "0, the standard normal prior: --free-bits needs its per-dimension KL"
    for key in ("nll_k", "nll_images"):
        if values[key] is None:
            why[key] = (f"sized when training ends to at most {NLL_SHARE:.0%} of --max-time (or of the training time): "
                        f"k={NLL_K} on up to {NLL_IMAGES} held-out images where that holds them, else fewer images "
                        f"(down to {NLL_MIN_IMAGES}), then fewer samples; summary.json gives the standard error")
    return values, why


def _long_run_applies(values: dict[str, Any], why: dict[str, str], images: float) -> bool:
    """Whether a run that sees `images` training images takes the long-run network and batch: only where the recipe
    chose the 28x28 mlp's network and batch (not the user)."""
    return values["hidden"] == MLP_HIDDEN and "hidden" in why and "batch_size" in why and images >= LONG_RUN_IMAGES


def _long_run(values: dict[str, Any], why: dict[str, str]) -> dict[str, Any]:
    """`values` with the long-run network and batch, and the long-run mixture where the recipe chose the prior."""
    values = values | {"hidden": LONG_RUN_HIDDEN, "batch_size": LONG_RUN_BATCH}
    why["hidden"] = why["batch_size"] = LONG_RUN_WHY
    if "prior_components" in why and values["prior_components"] == MIXTURE_COMPONENTS:
        values["prior_components"] = LONG_RUN_COMPONENTS
        why["prior_components"] = LONG_RUN_COMPONENTS_WHY
    return values


def _for_length(values: dict[str, Any], why: dict[str, str], epochs: float, n_train: int) -> dict[str, Any]:
    """`values` for a run of `epochs` epochs: the long-run network, batch and mixture where they apply, then the
    learning rate and KL warm-up for that many steps (unless given)."""
    if _long_run_applies(values, why, epochs * n_train):
        values = _long_run(values, why)
    values = dict(values)
    steps_per_epoch = max(1, math.ceil(n_train / values["batch_size"]))
    if values["lr"] is None:
        values["lr"] = lr_for(values["model"], steps_per_epoch * epochs)
    if values["kl_warmup_epochs"] is None:
        values["kl_warmup_epochs"] = kl_warmup_for(values["model"], steps_per_epoch, epochs)
    return values


def _fitted_to_time(values: dict[str, Any], why: dict[str, str], image_shape: tuple[int, int, int], n_train: int,
                    max_time: float, measure: Measure) -> Plan:
    """Time a few steps of a one-epoch draft, plan as many epochs as the rest of the budget holds (less the chores'
    share), and choose the length-dependent values for that; a run long enough for the long-run network and batch
    takes them and is timed again."""
    def probe(values: dict[str, Any]) -> tuple[Probe, int]:
        draft = _build(values | {"epochs": 1, "lr": values["lr"] or lr_for(values["model"], 1),
                                 "kl_warmup_epochs": values["kl_warmup_epochs"] or 0.0}, why, image_shape, n_train)
        measured = measure(draft)
        return measured, max(1, int(measured.seconds_left / measured.step_seconds / draft.steps_per_epoch))

    measured, fits = probe(values)
    if _long_run_applies(values, why, fits * n_train):
        values = _long_run(values, why)
        measured, fits = probe(values)
    values = _for_length(values, why, fits, n_train)
    values["epochs"] = max(1, math.ceil(FIT_HEADROOM * fits))
    values["step_seconds"] = measured.step_seconds
    why["epochs"] = (f"fitted to --max-time {max_time:g}: {1 / measured.step_seconds:.1f} steps/s measured over "
                     f"{measured.steps} steps and {measured.seconds_left:.1f} s left for training (after start-up, "
                     f"the chores' share and the final estimate's) fit about {fits} epochs; at most {values['epochs']} are allowed, as the "
                     "learning-rate schedule follows the clock and ends with the budget")
    return _build(values, why, image_shape, n_train)


def _build(values: dict[str, Any], why: dict[str, str], image_shape: tuple[int, int, int], n_train: int) -> Plan:
    """The Plan (and its ModelConfig) from filled values."""
    likelihood = values["likelihood"]
    model = ModelConfig(
        kind=values["model"], image_shape=image_shape, latent_dim=values["latent_dim"], likelihood=likelihood,
        hidden=list(values["hidden"]), conv_channels=values["conv_channels"], conv_blocks=values["conv_blocks"] or 0,
        variance=values["variance"] if likelihood == "gaussian" else "pixel",  # the field's default
        activation=values["activation"], prior_components=values["prior_components"],
        prior_fit=bool(values["prior_fit"] and values["prior_components"]), center_inputs=values["center_inputs"])
    names = {f.name for f in fields(Plan)} - {"model", "why", "train_images", "step_seconds"}
    return Plan(model=model, train_images=n_train, step_seconds=values.get("step_seconds"), why=dict(why),
                **{k: v for k, v in values.items() if k in names})
