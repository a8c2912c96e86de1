"""pythae's default VAE as a peer recipe for benchmarks/quality.py (used when `pip install pythae` has been run).

Its defaults: VAEConfig (MLP 784-512-10, ReLU) and BaseTrainerConfig (Adam, learning rate 1e-4, batch 64).
Two changes, the same as the reference's: its Bernoulli loss (`reconstruction_loss="bce"`, as the images are
binarized) and dynamic binarization of each batch. Its own training loop is used for the steps, our clock stops it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from reference import one_hidden_layer_vae
from torch.utils.data import DataLoader, TensorDataset


def available() -> bool:
    try:
        import pythae  # noqa: F401
    except ImportError:
        return False
    return True


class PythaeDefault:
    """A pythae VAE with its default configuration; `train_epoch` and `as_vaekit` as in `reference.Reference`."""

    def __init__(self, train: np.ndarray, seed: int = 0) -> None:
        from pythae.models import VAE, VAEConfig
        from pythae.trainers import BaseTrainerConfig

        torch.manual_seed(seed)
        defaults = BaseTrainerConfig()
        self.model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=10, reconstruction_loss="bce"))
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=defaults.learning_rate)
        x = torch.from_numpy(train).float().div(255).unsqueeze(1)
        self.loader = DataLoader(TensorDataset(x), batch_size=defaults.per_device_train_batch_size, shuffle=True,
                                 generator=torch.Generator().manual_seed(seed))

    def train_epoch(self, stop: Callable[[], bool] = lambda: False) -> tuple[float, int]:
        self.model.train()
        total, seen = 0.0, 0
        for (data,) in self.loader:
            out = self.model({"data": torch.bernoulli(data)})
            self.optimizer.zero_grad()
            out.loss.backward()
            self.optimizer.step()
            total += float(out.loss.detach()) * len(data)
            seen += len(data)
            if stop():
                break
        return total / max(1, seen), seen

    def as_vaekit(self):
        enc, dec = self.model.encoder, self.model.decoder
        return one_hidden_layer_vae([enc.layers[0][0], enc.embedding, enc.log_var, dec.layers[0][0], dec.layers[1][0]],
                                    hidden=512, latent=10)


class VanillaVAE(torch.nn.Module):
    """AntixK/PyTorch-VAE's VanillaVAE for 64x64 RGB (stride-2 convs 32-64-128-256-512 with BatchNorm and LeakyReLU,
    latent 128, mirrored transposed convs, a Tanh output mapped to [0, 1] here) as a measuring instrument."""

    def __init__(self, latent: int = 128, dims: tuple[int, ...] = (32, 64, 128, 256, 512), size: int = 64) -> None:
        from torch import nn

        super().__init__()
        layers, prev = [], 3
        for h in dims:
            layers += [nn.Conv2d(prev, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()]
            prev = h
        self.encoder = nn.Sequential(*layers, nn.Flatten())
        self.grid = size // 2 ** len(dims)
        flat = dims[-1] * self.grid**2
        self.fc_mu, self.fc_var = nn.Linear(flat, latent), nn.Linear(flat, latent)
        self.decoder_input = nn.Linear(latent, flat)
        up, rev = [], list(reversed(dims))
        for a, b in zip(rev[:-1], rev[1:]):
            up += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(b), nn.LeakyReLU()]
        self.decoder = nn.Sequential(
            *up, nn.ConvTranspose2d(rev[-1], rev[-1], 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(rev[-1]),
            nn.LeakyReLU(), nn.Conv2d(rev[-1], 3, 3, padding=1), nn.Tanh())
        self.dims = dims

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> images in [0, 1] (the Tanh output mapped from [-1, 1])."""
        h = self.decoder_input(z).view(len(z), self.dims[-1], self.grid, self.grid)
        return (self.decoder(h) + 1) / 2


def sigma_vae_loss(x: torch.Tensor, mean: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The negative ELBO per image with the sigma-VAE's analytic variance (Rybkin et al., 2021): one variance for all
    pixels, the batch's mean squared error, its log soft-clipped at log sigma >= -6 as in the paper's code."""
    import math

    mse = (x - mean).pow(2).mean()
    log_sigma = -6 + torch.nn.functional.softplus(0.5 * torch.log(mse) + 6)
    rec = (0.5 * (x - mean).pow(2) / torch.exp(2 * log_sigma) + log_sigma + 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
    return (rec + kl).mean()


class VanillaPeer:
    """VanillaVAE trained as AntixK's config has it (Adam 5e-3, batch 64, ExponentialLR 0.95 a epoch), on the
    sigma-VAE ELBO; `train_for` stops on the clock."""

    def __init__(self, train: np.ndarray, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = VanillaVAE(size=train.shape[-1])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=5e-3)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=0.95)
        self.train = torch.from_numpy(train)
        self.generator = torch.Generator().manual_seed(seed)

    def train_for(self, seconds: float) -> dict[str, float]:
        """Train until `seconds` have passed; the epochs and images seen."""
        import time

        began, seen = time.perf_counter(), 0
        self.model.train()
        while time.perf_counter() - began < seconds:
            for idx in torch.randperm(len(self.train), generator=self.generator).split(64):
                x = self.train[idx].float().div(255)
                mu, logvar = self.model.encode(x)
                z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=self.generator)
                loss = sigma_vae_loss(x, self.model.decode(z), mu, logvar)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                seen += len(x)
                if time.perf_counter() - began >= seconds:
                    break
            else:
                self.scheduler.step()
        self.model.eval()
        return {"train_s": time.perf_counter() - began, "epochs": seen / len(self.train)}
