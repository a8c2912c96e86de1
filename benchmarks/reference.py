"""The reference: the pytorch/examples VAE recipe (github.com/pytorch/examples, vae/main.py), as users write it.

MLP 784-400-20, Adam 1e-3, batch 128, a torch DataLoader over per-sample tensors, Bernoulli
(binary cross-entropy) loss; the only change is dynamic binarization of each batch, the protocol
vaekit uses, so that both are scored on the same binarized test images.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset

BATCH_SIZE = 128
LR = 1e-3


class ReferenceVAE(nn.Module):
    """The example's network, unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The example's loss: summed BCE plus the Gaussian KL."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def make_loader(train: np.ndarray, seed: int = 0) -> DataLoader:
    """The example's loader: per-sample float tensors in [0, 1], shuffled, batch 128."""
    x = torch.from_numpy(train).float().div(255)
    dataset = TensorDataset(x, torch.zeros(len(x)))
    return DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(seed))


class Reference:
    """A model, its optimizer and loader; `train_epoch` is the example's `train(epoch)`."""

    def __init__(self, train: np.ndarray, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = ReferenceVAE()
        self.optimizer = optim.Adam(self.model.parameters(), lr=LR)
        self.loader = make_loader(train, seed)

    def train_epoch(self, stop: Callable[[], bool] = lambda: False) -> tuple[float, int]:
        """One pass (or until `stop()`); returns (mean loss per image, images seen)."""
        self.model.train()
        train_loss, seen = 0.0, 0
        for data, _ in self.loader:
            data = torch.bernoulli(data)  # dynamic binarization
            self.optimizer.zero_grad()
            recon_batch, mu, logvar = self.model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            self.optimizer.step()
            seen += len(data)
            if stop():
                break
        return train_loss / max(1, seen), seen

    def as_vaekit(self):
        """The same weights in vaekit's VAE (mlp, hidden [400], latent 20, relu), for vaekit's evaluation and export."""
        m = self.model
        return one_hidden_layer_vae(
            [m.fc1, m.fc21, m.fc22, m.fc3, m.fc4], hidden=400, latent=20)


def one_hidden_layer_vae(layers: list[nn.Linear], hidden: int, latent: int):
    """vaekit's VAE (mlp, one hidden layer, relu) holding the weights of a peer's encoder input, posterior mean and
    log-variance heads, decoder input and (pre-sigmoid) output layers: so every recipe is scored by vaekit's code."""
    from vaekit.train.models import ModelConfig, build_model

    enc_in, mean, logvar, dec_in, dec_out = layers
    vae = build_model(ModelConfig(kind="mlp", hidden=[hidden], latent_dim=latent, activation="relu"))
    with torch.no_grad():
        for target, source in ((vae.encoder.head[0], enc_in), (vae.decoder.body[0][0], dec_in), (vae.decoder.body[0][2], dec_out)):
            target.weight.copy_(source.weight), target.bias.copy_(source.bias)
        head = vae.encoder.head[2]
        head.weight.copy_(torch.cat([mean.weight, logvar.weight])), head.bias.copy_(torch.cat([mean.bias, logvar.bias]))
    return vae.eval()


def timed_epoch(ref: Reference) -> float:
    """Seconds for one training epoch of the reference."""
    t = time.perf_counter()
    ref.train_epoch()
    return time.perf_counter() - t
