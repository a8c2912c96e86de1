"""VAE networks: fully connected (`mlp`) and convolutional (`conv`) encoders and decoders.

The encoder maps images in [0, 1], shaped (N, C, H, W), to the Gaussian posterior's mean and
log-variance, each (N, D). The decoder maps latents (N, D) to the likelihood's parameters
(see `Decoder.likelihood_params`). Everything a model needs to be rebuilt lives in `ModelConfig`,
which checkpoints store as a plain dict.

The conv family follows the image size: one level per entry of `conv_channels`, each with
`conv_blocks` residual blocks (GroupNorm, activation, 3x3 conv, twice) and a stride-2 conv that
halves H and W, down to a small grid (about 4x4) that a linear layer maps to the posterior; the
decoder mirrors it with nearest-neighbour upsampling and 3x3 convs. Parameters grow with the
channels, not with the pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from vaekit.runtime.choices import ACTIVATIONS, LIKELIHOODS, MODEL_KINDS, VARIANCES

from .errors import ConfigError

LOG_2PI = math.log(2 * math.pi)
# Bounds of a Gaussian decoder's log-variance: keeps the likelihood finite on pixels
# that never vary (the black border of digits) without limiting real images.
LOGVAR_MIN, LOGVAR_MAX = -8.0, 4.0
# A shared log-variance is stored divided by this: Adam moves each parameter by about the learning rate
# per step, and the variance must fall from 1 to about the reconstruction error within a short run.
SHARED_LOGVAR_SPEED = 20.0
# An analytic variance is the batch's mean squared error while training; what inference uses is its running mean,
# updated by this share of each batch's value (as BatchNorm's running statistics are)
ANALYTIC_MOMENTUM = 0.1
ACTIVATION_MODULES = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}  # one per ACTIVATIONS
# Fitting a mixture prior to codes: EM iterations, and floors that keep a component that loses its codes finite
FIT_ITERATIONS, FIT_MIN_COUNT, FIT_MIN_VARIANCE = 50, 1e-3, 1e-4
MAX_GROUPS = 8  # GroupNorm groups: gcd(channels, 8), so any channel count works, and batch 1 too
GRID_MIN = 4  # the conv family downsamples while both sides stay at least this many pixels
CHANNELS_BASE, CHANNELS_CAP = 16, 256  # default widths: 16, 32, 64, 128, 256, ... one per level


def conv_depth_for(h: int, w: int) -> int:
    """The default number of conv levels for HxW images: halve while both sides stay even and at least GRID_MIN."""
    depth = 0
    while h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= GRID_MIN:
        h, w, depth = h // 2, w // 2, depth + 1
    return depth


def default_conv_channels(image_shape: tuple[int, int, int]) -> list[int]:
    """The conv family's default widths for this image shape: doubling from 16 per level, capped at 256."""
    _, h, w = image_shape
    return [min(CHANNELS_CAP, CHANNELS_BASE * 2**i) for i in range(conv_depth_for(h, w))]


def nearest_sizes(size: int, factor: int) -> list[int]:
    """The multiples of `factor` nearest to `size` (below and above; one when `size` is below `factor`)."""
    below = size // factor * factor
    return [s for s in (below, below + factor) if s > 0]


@dataclass
class ModelConfig:
    """Architecture of a VAE; `image_shape` is (C, H, W). `conv_channels` None means the default for
    the image shape; `hidden` are dense layers (between the conv grid and the latent for `conv`)."""

    kind: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    hidden: list[int] = field(default_factory=lambda: [400])
    conv_channels: list[int] | None = None
    conv_blocks: int = 0
    variance: str = "pixel"  # Gaussian only: a learned log-variance per pixel, one shared by all, or `analytic` (sigma-VAE)
    activation: str = "relu"
    prior_components: int = 0  # 0: the standard normal prior; K: a learned mixture of K diagonal Gaussians
    prior_fit: bool = False  # the mixture is fitted to the training codes once training ends, not learned with it
    center_inputs: bool = False  # the encoder subtracts the training images' mean image (a buffer, see `fit_to_data`)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)  # type: ignore[assignment]
        self.hidden = [int(h) for h in self.hidden]
        if self.kind == "conv" and self.conv_channels is None and len(self.image_shape) == 3:
            self.conv_channels = default_conv_channels(self.image_shape)
        if self.conv_channels is not None:
            self.conv_channels = [int(c) for c in self.conv_channels]
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the bad field and what it accepts."""
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {MODEL_KINDS}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {self.likelihood!r}; choose one of {LIKELIHOODS}")
        if self.variance not in VARIANCES:
            raise ConfigError(f"unknown variance {self.variance!r}; choose one of {VARIANCES}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {ACTIVATIONS}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ConfigError(f"image_shape must be (C, H, W) with positive sizes, got {self.image_shape}")
        if self.image_shape[0] not in (1, 3):
            raise ConfigError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {self.image_shape[0]}")
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.prior_components < 0:
            raise ConfigError(f"prior_components must be 0 (the standard normal) or more, got {self.prior_components}")
        if self.prior_fit and not self.prior_components:
            raise ConfigError("prior_fit needs a mixture to fit: prior_components of 1 or more")
        if (self.kind == "mlp" and not self.hidden) or (self.hidden and min(self.hidden) < 1):
            raise ConfigError(f"hidden sizes must be positive (and at least one for mlp), got {self.hidden}")
        if self.kind == "conv":
            self._validate_conv()

    def _validate_conv(self) -> None:
        _, h, w = self.image_shape
        channels = self.conv_channels or []
        if not channels:
            sizes = ", ".join(f"{s}x{s}" for s in (16, 32, 64, 128))
            raise ConfigError(f"the conv model cannot downsample {h}x{w} images (a side is odd or below "
                             f"{2 * GRID_MIN}); use sizes divisible by a power of 2 such as {sizes} "
                             "(--image-size N for folders), or --model mlp")
        if min(channels) < 1 or self.conv_blocks < 0:
            raise ConfigError(f"conv_channels must be positive and conv_blocks >= 0, got {channels}, {self.conv_blocks}")
        factor = 2 ** len(channels)
        if h % factor or w % factor:
            pairs = [(a, b) for a in nearest_sizes(h, factor) for b in nearest_sizes(w, factor) if h != w or a == b]
            fits = " or ".join(f"{a}x{b}" for a, b in pairs)
            raise ConfigError(
                f"the conv model with {len(channels)} levels (--conv-channels {','.join(map(str, channels))}) needs "
                f"H and W divisible by {factor}, got {h}x{w}; nearest sizes that fit: {fits}. Resize the images "
                "(--image-size N for folders), give fewer --conv-channels, or use --model mlp")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def grid(self) -> tuple[int, int]:
        """(H, W) of the conv family's smallest feature map."""
        factor = 2 ** len(self.conv_channels or [])
        return self.image_shape[1] // factor, self.image_shape[2] // factor

    def activation_floats(self) -> int:
        """The largest activation of one image, in floats: what sizes evaluation chunks (see objectives)."""
        c, h, w = self.image_shape
        if self.kind == "mlp":
            return max(c * h * w, *self.hidden)
        return max(c, (self.conv_channels or [c])[0]) * h * w


def _mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    """Linear layers with an activation between each pair (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, MAX_GROUPS), channels)


def _conv3(a: int, b: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(a, b, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    """x + (norm, act, conv3x3) twice: the residual block of the conv family (as in diffusers' AutoencoderKL)."""

    def __init__(self, channels: int, act: type[nn.Module]) -> None:
        super().__init__()
        self.body = nn.Sequential(_norm(channels), act(), _conv3(channels, channels),
                                  _norm(channels), act(), _conv3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _conv_encoder(cfg: ModelConfig, act: type[nn.Module]) -> nn.Sequential:
    """Images -> flattened grid features: a stem conv, then per level residual blocks and a stride-2 conv."""
    channels = cfg.conv_channels or []
    layers: list[nn.Module] = [_conv3(cfg.image_shape[0], channels[0])]
    for i, ch in enumerate(channels):
        layers += [ResBlock(ch, act) for _ in range(cfg.conv_blocks)]
        layers.append(_conv3(ch, channels[min(i + 1, len(channels) - 1)], stride=2))
    return nn.Sequential(*layers, _norm(channels[-1]), act(), nn.Flatten())


def _conv_decoder(cfg: ModelConfig, act: type[nn.Module]) -> nn.Sequential:
    """Grid features (N, c, h, w) -> pre-sigmoid images: the encoder mirrored, upsampling x2 then a 3x3 conv."""
    channels = cfg.conv_channels or []
    layers: list[nn.Module] = []
    prev = channels[-1]
    for ch in reversed(channels):
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv3(prev, ch)]
        layers += [ResBlock(ch, act) for _ in range(cfg.conv_blocks)]
        prev = ch
    return nn.Sequential(*layers, _norm(prev), act(), _conv3(prev, cfg.image_shape[0]))


class Encoder(nn.Module):
    """q(z|x): images (N, C, H, W) in [0, 1] -> (mean, logvar), each (N, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        act = ACTIVATION_MODULES[cfg.activation]
        c, h, w = cfg.image_shape
        if cfg.kind == "mlp":
            self.features: nn.Module = nn.Flatten()
            n_in = c * h * w
        else:
            self.features = _conv_encoder(cfg, act)
            n_in = (cfg.conv_channels or [])[-1] * cfg.grid[0] * cfg.grid[1]
        self.head = _mlp([n_in, *cfg.hidden, 2 * cfg.latent_dim], act)
        # the training images' mean, (C, H, W): set by `VAEModule.fit_to_data`, then saved and exported with the weights
        self.input_mean = nn.Buffer(torch.zeros(c, h, w)) if cfg.center_inputs else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_mean is not None:
            x = x - self.input_mean
        mean, logvar = self.head(self.features(x)).chunk(2, dim=-1)
        return mean, logvar


class Decoder(nn.Module):
    """p(x|z): latents (N, D) -> per-pixel parameters (N, C, H, W): Bernoulli logits, or the
    Gaussian mean's pre-sigmoid value. A Gaussian decoder also learns a log-variance, per pixel or
    one shared by all pixels (`variance="shared"`), or takes one shared variance in closed form: the batch's mean
    squared error, the maximum-likelihood value (`variance="analytic"`, the sigma-VAE of Rybkin et al., 2021)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        act = ACTIVATION_MODULES[cfg.activation]
        c, h, w = cfg.image_shape
        self.image_shape = (c, h, w)
        if cfg.kind == "mlp":
            self.body: nn.Module = nn.Sequential(
                _mlp([cfg.latent_dim, *reversed(cfg.hidden), c * h * w], act), nn.Unflatten(1, (c, h, w))
            )
        else:
            top = (cfg.conv_channels or [])[-1]
            self.body = nn.Sequential(
                _mlp([cfg.latent_dim, *reversed(cfg.hidden), top * cfg.grid[0] * cfg.grid[1]], act),
                nn.Unflatten(1, (top, *cfg.grid)),
                _conv_decoder(cfg, act),
            )
        self.logvar_scale = SHARED_LOGVAR_SPEED if cfg.variance == "shared" else 1.0
        shape = (1, c, h, w) if cfg.variance == "pixel" else (1, 1, 1, 1)
        self.analytic = cfg.likelihood == "gaussian" and cfg.variance == "analytic"
        # the analytic variance's running value is state, not a weight: a buffer that training sets (`fit_variance`)
        self.logvar = (None if cfg.likelihood != "gaussian" else nn.Buffer(torch.zeros(shape)) if self.analytic
                       else nn.Parameter(torch.zeros(shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)

    def likelihood_params(self, z: torch.Tensor, image: bool = True) -> dict[str, torch.Tensor]:
        """The likelihood's parameters, named as in the ONNX bundle: `image` (the mean, in [0, 1])
        and `logits` (Bernoulli) or `logvar` (Gaussian, per pixel, clamped for stability). `image=False`
        leaves out a Bernoulli decoder's mean, which its log-likelihood does not need (a pass saved per step)."""
        out = self.body(z)
        if self.logvar is None:
            return {"image": torch.sigmoid(out), "logits": out} if image else {"logits": out}
        logvar = (self.logvar * self.logvar_scale).clamp(LOGVAR_MIN, LOGVAR_MAX).expand_as(out)
        return {"image": torch.sigmoid(out), "logvar": logvar}

    def fit_variance(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """An analytic decoder's parameters for training on images `x`: the log of the batch's mean squared error (the
        variance that maximises the likelihood) in place of the running value, which moves toward it."""
        if not (self.analytic and self.training):
            return params
        logvar = torch.log((x - params["image"]).pow(2).mean()).clamp(LOGVAR_MIN, LOGVAR_MAX)
        with torch.no_grad():
            self.logvar.lerp_(logvar.detach().to(self.logvar.dtype).view(1, 1, 1, 1), ANALYTIC_MOMENTUM)
        return params | {"logvar": logvar.expand_as(params["image"])}


class MixturePrior(nn.Module):
    """p(z) as a learned mixture of K diagonal Gaussians (a VampPrior-like prior in the form a bundle stores):
    the posteriors of different images need not crowd around one point, which lowered the test NLL on
    Fashion-MNIST at equal epochs (docs/recipe-notebook.md)."""

    def __init__(self, components: int, latent_dim: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(components, latent_dim))  # spread out, so components differ from the start
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))  # mixture weights: softmax(logits)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) for latents (..., D), shape (...)."""
        z = z.unsqueeze(-2)  # (..., 1, D) against the components' (K, D)
        log_normal = -0.5 * (LOG_2PI + self.logvars + (z - self.means) ** 2 * torch.exp(-self.logvars)).sum(-1)
        return torch.logsumexp(log_normal + torch.log_softmax(self.logits, 0), -1)

    @torch.no_grad()
    def fit(self, z: torch.Tensor, generator: torch.Generator, iterations: int = FIT_ITERATIONS) -> None:
        """Fit the mixture to latents z (N, D) by expectation-maximisation, from K of them drawn with `generator`: the
        maximum-likelihood prior for those codes, so that samples land where the codes are."""
        z = z.float()
        k = len(self.logits)
        means = z[torch.randperm(len(z), generator=generator)[:k].to(z.device)]
        variances = z.var(0, unbiased=False).expand_as(means).clone()
        log_weights = torch.full((k,), -math.log(k), device=z.device)
        for _ in range(iterations):
            log_normal = -0.5 * (LOG_2PI + variances.log() + (z[:, None] - means) ** 2 / variances).sum(-1)
            resp = torch.softmax(log_normal + log_weights, 1)  # (N, K): each code's share in each component
            counts = resp.sum(0) + FIT_MIN_COUNT
            means = resp.T @ z / counts[:, None]
            variances = (resp.T @ z.pow(2) / counts[:, None] - means.pow(2)).clamp_min(FIT_MIN_VARIANCE)
            log_weights = torch.log(counts / counts.sum())
        self.means.copy_(means)
        self.logvars.copy_(variances.log())
        self.logits.copy_(log_weights)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latents drawn from the mixture (on the CPU generator's device; callers move them)."""
        weights = torch.softmax(self.logits.detach().float().cpu(), 0)
        component = torch.multinomial(weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.means.shape[1], generator=generator)
        means, stds = self.means.detach().cpu(), torch.exp(0.5 * self.logvars.detach().cpu())
        return means[component] + stds[component] * eps


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) for latents (..., D), shape (...)."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


class VAEModule(nn.Module):
    """Encoder and decoder of one model, built from a `ModelConfig`: the torch module that training updates
    (`vaekit.runtime.VAE` is its exported, torch-free counterpart)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.prior = MixturePrior(cfg.prior_components, cfg.latent_dim) if cfg.prior_components else None
        if cfg.prior_fit:  # fitted once training ends (`fit_prior`); the standard normal until then
            self.prior.requires_grad_(False)
            self.prior_fitted = nn.Buffer(torch.tensor(False))

    @property
    def mixture(self) -> MixturePrior | None:
        """The mixture prior in use, or None for the standard normal (also while a fitted prior awaits its fit)."""
        if self.prior is None or (self.config.prior_fit and not bool(self.prior_fitted)):
            return None
        return self.prior

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    @torch.no_grad()
    def fit_to_data(self, mean_image: torch.Tensor, n_images: int) -> None:
        """Start a fresh model from its training images' per-pixel mean (C, H, W, in [0, 1]) over `n_images`: the
        encoder subtracts it (when `center_inputs`), and an mlp decoder's output bias starts at its log-odds, so that
        the first steps need not learn the average image (docs/recipe-notebook.md). The log-odds are of
        (n * mean + 1/2) / (n + 1), finite for pixels that are always 0 or 1, taken in float64: torch's float32 logit
        did not always give the same bits in a fresh process, so two runs of one seed started apart."""
        if self.encoder.input_mean is not None:
            self.encoder.input_mean.copy_(mean_image)
        if self.config.kind == "mlp":  # its last layer's bias is each pixel's pre-sigmoid value (conv: one per channel)
            odds = torch.logit((mean_image.double() * n_images + 0.5) / (n_images + 1))
            self.decoder.body[0][-1].bias.copy_(odds.flatten())

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) for latents (..., D): the mixture's, or the standard normal's."""
        return self.mixture.log_prob(z) if self.mixture is not None else log_standard_normal(z)

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n latents drawn from the prior with `generator` (a CPU one), on the CPU."""
        if self.mixture is not None:
            return self.mixture.sample(n, generator)
        return torch.randn(n, self.config.latent_dim, generator=generator)


def build_model(cfg: ModelConfig | dict[str, Any]) -> VAEModule:
    """A fresh VAE for `cfg` (a ModelConfig or its dict form, as stored in checkpoints)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return VAEModule(cfg)
