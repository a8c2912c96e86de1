"""VAE networks: fully connected (`mlp`) and convolutional (`conv`) encoders and decoders.

The encoder maps images in [0, 1], shaped (N, C, H, W), to the Gaussian posterior's mean and
log-variance, each (N, D). The decoder maps latents (N, D) to the likelihood's parameters
(see `likelihoods.py`). Everything a model needs to be rebuilt lives in `ModelConfig`, which
checkpoints store as a plain dict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from vaekit.runtime.choices import ACTIVATIONS, CONV_DECODERS, LIKELIHOODS, MODEL_KINDS

from .errors import ConfigError

# Bounds of a Gaussian decoder's per-pixel log-variance: keeps the likelihood finite on pixels
# that never vary (the black border of digits) without limiting real images.
LOGVAR_MIN, LOGVAR_MAX = -8.0, 4.0
ACTIVATION_MODULES = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh}  # one per ACTIVATIONS


@dataclass
class ModelConfig:
    """Architecture of a VAE; `image_shape` is (C, H, W)."""

    kind: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    hidden: list[int] = field(default_factory=lambda: [400])
    conv_channels: list[int] = field(default_factory=lambda: [32, 64])
    conv_decoder: str = "transpose"  # or "upsample"
    activation: str = "relu"

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)  # type: ignore[assignment]
        self.hidden = [int(h) for h in self.hidden]
        self.conv_channels = [int(c) for c in self.conv_channels]
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the bad field and what it accepts."""
        if self.kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {self.kind!r}; choose one of {MODEL_KINDS}")
        if self.likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {self.likelihood!r}; choose one of {LIKELIHOODS}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation {self.activation!r}; choose one of {ACTIVATIONS}")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ConfigError(f"image_shape must be (C, H, W) with positive sizes, got {self.image_shape}")
        if self.image_shape[0] not in (1, 3):
            raise ConfigError(f"images must have 1 (grayscale) or 3 (RGB) channels, got {self.image_shape[0]}")
        if self.latent_dim < 1:
            raise ConfigError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"hidden sizes must be positive, got {self.hidden}")
        if self.kind == "conv":
            _, h, w = self.image_shape
            factor = 2 ** len(self.conv_channels)
            if h != w or h % factor:
                raise ConfigError(
                    f"the conv model needs square images whose size is a multiple of {factor} "
                    f"({len(self.conv_channels)} stride-2 layers), got {h}x{w}; "
                    f"pass --image-size with a multiple of {factor} or use --model mlp"
                )
            if self.conv_decoder not in CONV_DECODERS:
                raise ConfigError(f"conv_decoder must be one of {CONV_DECODERS}, got {self.conv_decoder!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    """Linear layers with an activation between each pair (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


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
            convs: list[nn.Module] = []
            prev = c
            for ch in cfg.conv_channels:
                convs += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), act()]
                prev = ch
            convs.append(nn.Flatten())
            self.features = nn.Sequential(*convs)
            factor = 2 ** len(cfg.conv_channels)
            n_in = prev * (h // factor) * (w // factor)
        self.head = _mlp([n_in, *cfg.hidden, 2 * cfg.latent_dim], act)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.head(self.features(x)).chunk(2, dim=-1)
        return mean, logvar


class Decoder(nn.Module):
    """p(x|z): latents (N, D) -> per-pixel parameters (N, C, H, W): Bernoulli logits, or the
    Gaussian mean's pre-sigmoid value. A Gaussian decoder also learns a per-pixel log-variance."""

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
            factor = 2 ** len(cfg.conv_channels)
            chans = list(reversed(cfg.conv_channels))
            s = h // factor
            layers: list[nn.Module] = [
                _mlp([cfg.latent_dim, *reversed(cfg.hidden), chans[0] * s * s], act),
                act(),
                nn.Unflatten(1, (chans[0], s, s)),
            ]
            outs = chans[1:] + [c]
            for i, (a, b) in enumerate(zip(chans, outs)):
                if cfg.conv_decoder == "transpose":
                    layers.append(nn.ConvTranspose2d(a, b, 4, stride=2, padding=1))
                else:
                    layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1)]
                if i < len(chans) - 1:
                    layers.append(act())
            self.body = nn.Sequential(*layers)
        self.logvar = nn.Parameter(torch.zeros(1, c, h, w)) if cfg.likelihood == "gaussian" else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)

    def likelihood_params(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """The likelihood's parameters, named as in the ONNX bundle: `image` (the mean, in [0, 1])
        and `logits` (Bernoulli) or `logvar` (Gaussian, per pixel, clamped for stability)."""
        out = self.body(z)
        image = torch.sigmoid(out)
        if self.logvar is None:
            return {"image": image, "logits": out}
        logvar = self.logvar.clamp(LOGVAR_MIN, LOGVAR_MAX).expand_as(out)
        return {"image": image, "logvar": logvar}


class VAEModule(nn.Module):
    """Encoder and decoder of one model, built from a `ModelConfig`: the torch module that training updates
    (`vaekit.runtime.VAE` is its exported, torch-free counterpart)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)


def build_model(cfg: ModelConfig | dict[str, Any]) -> VAEModule:
    """A fresh VAE for `cfg` (a ModelConfig or its dict form, as stored in checkpoints)."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return VAEModule(cfg)
