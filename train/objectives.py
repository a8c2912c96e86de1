"""Training objectives and evaluation bounds, all in nats per image summed over pixels.

`elbo_terms` gives the ELBO's reconstruction and KL terms; `iwae_bound` the importance-weighted
bound of Burda et al. (2015), which `nll_estimate` uses with many samples as the test NLL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .models import VAEModule

LOG_2PI = math.log(2 * math.pi)


def log_likelihood(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """log p(x|z) per image from the decoder's parameters (see `Decoder.likelihood_params`); the same
    argument order as the runtime's `likelihood.log_likelihood`."""
    if "logits" in params:
        ll = -F.binary_cross_entropy_with_logits(params["logits"], x, reduction="none")
    else:
        logvar = params["logvar"]
        ll = -0.5 * (LOG_2PI + logvar + (x - params["image"]) ** 2 * torch.exp(-logvar))
    return ll.flatten(1).sum(1)


def kl_per_dim(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) for each latent dimension, shape (N, D)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def elbo_terms(
    model: VAEModule, x: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reconstruction log-likelihood, KL per dim, mean) for one reparameterised sample z = mu + sigma*eps."""
    mean, logvar = model.encoder(x)
    z = mean + torch.exp(0.5 * logvar) * eps
    recon = log_likelihood(x, model.decoder.likelihood_params(z))
    return recon, kl_per_dim(mean, logvar), mean


def training_loss(
    model: VAEModule, x: torch.Tensor, eps: torch.Tensor, *, beta: float = 1.0, free_bits: float = 0.0, iwae_k: int = 1
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean loss over the batch and its parts (detached). `eps` is (N, D) for the ELBO or (k, N, D) for IWAE."""
    if iwae_k > 1:
        bound = iwae_bound(model, x, eps)
        return -bound.mean(), {"loss": -bound.mean().detach(), "iwae": bound.mean().detach()}
    recon, kl_dims, _ = elbo_terms(model, x, eps)
    kl = kl_dims.sum(1)
    kl_for_loss = kl_dims.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.mean()
    loss = -recon.mean() + beta * kl_for_loss
    return loss, {
        "loss": loss.detach(),
        "elbo": (recon - kl).mean().detach(),
        "recon": -recon.mean().detach(),
        "kl": kl.mean().detach(),
    }


def iwae_bound(model: VAEModule, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i|x) per image; eps is (k, N, D)."""
    k, n, d = eps.shape
    mean, logvar = model.encoder(x)
    std = torch.exp(0.5 * logvar)
    z = mean + std * eps  # (k, N, D)
    params = model.decoder.likelihood_params(z.reshape(k * n, d))
    log_px = log_likelihood(x.repeat(k, 1, 1, 1), params).view(k, n)
    log_pz = -0.5 * (LOG_2PI + z.pow(2)).sum(-1)
    log_qz = -0.5 * (LOG_2PI + logvar + eps.pow(2)).sum(-1)
    return torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(k)


@torch.no_grad()
def nll_estimate(
    model: VAEModule, x: torch.Tensor, *, k: int = 1000, generator: torch.Generator, max_points: int = 100_000
) -> torch.Tensor:
    """Per-image NLL upper bound (-IWAE with k samples), chunked so at most `max_points` z's are decoded at once."""
    d = model.config.latent_dim
    images_per_chunk = max(1, max_points // k)
    out = []
    for start in range(0, len(x), images_per_chunk):
        xb = x[start : start + images_per_chunk]
        samples_per_chunk = max(1, max_points // len(xb))
        log_ws = []
        for s in range(0, k, samples_per_chunk):
            ks = min(samples_per_chunk, k - s)
            eps = torch.randn(ks, len(xb), d, generator=generator, device=x.device)
            log_ws.append(iwae_bound(model, xb, eps) + math.log(ks))  # log sum of this chunk's weights
        out.append(-(torch.logsumexp(torch.stack(log_ws), dim=0) - math.log(k)))
    return torch.cat(out)


class Objective(nn.Module):
    """The training loss as a module, so that DistributedDataParallel can wrap it and sync gradients."""

    def __init__(self, model: VAEModule, *, free_bits: float = 0.0, iwae_k: int = 1) -> None:
        super().__init__()
        self.model, self.free_bits, self.iwae_k = model, free_bits, iwae_k

    def forward(self, x: torch.Tensor, eps: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return training_loss(self.model, x, eps, beta=beta, free_bits=self.free_bits, iwae_k=self.iwae_k)
