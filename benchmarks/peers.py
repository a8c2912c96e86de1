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
