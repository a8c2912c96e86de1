"""Training objectives and evaluation bounds, all in nats per image summed over pixels.

`elbo_terms` gives the ELBO's reconstruction and KL terms; `iwae_bound` the importance-weighted
bound of Burda et al. (2015), which `nll_estimate` uses with many samples as the test NLL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.runtime.chunks import DEFAULT_BUDGET_BYTES, items_per_chunk

from .models import LOG_2PI, ModelConfig, VAEModule

# What one evaluation chunk may hold: vaekit.runtime.chunks.DEFAULT_BUDGET_BYTES, which train does not
# import (it needs torch only, not onnxruntime); a test checks that the two planners agree.
EVAL_BUDGET_BYTES = DEFAULT_BUDGET_BYTES
# Tensors of one image alive at once while it is evaluated without gradients: activations of its widest
# layer (input, output, residual, normalisation) and the likelihood's per-pixel terms.
EVAL_LIVE_ACTIVATIONS, EVAL_LIVE_IMAGES = 6, 8


def eval_bytes_per_item(cfg: ModelConfig) -> int:
    """Memory one image (or one latent of the IWAE estimate) takes while evaluated: what sizes chunks."""
    c, h, w = cfg.image_shape
    return 4 * (EVAL_LIVE_ACTIVATIONS * cfg.activation_floats() + EVAL_LIVE_IMAGES * c * h * w)


def eval_chunk(cfg: ModelConfig, budget_bytes: int = EVAL_BUDGET_BYTES) -> int:
    """Images (or latents) per evaluation chunk of this model within `budget_bytes` (at least one)."""
    return items_per_chunk(budget_bytes, eval_bytes_per_item(cfg))


def unit(x: torch.Tensor) -> torch.Tensor:
    """Images as float in [0, 1]: uint8 ones divided by 255, float ones as they are."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def bits_per_dim(nll_nats: float, image_shape: tuple[int, int, int]) -> float:
    """An NLL in nats per image as bits per dimension, NLL / (C*H*W*ln 2), the usual figure for colour images.
    Caveat: a Gaussian likelihood is a density of pixels scaled to [0, 1], not the discrete 8-bit likelihood
    papers report; adding 8 bits (the change of scale to 256 levels) approximates that one, and only for a
    density that is smooth at the scale of one grey level (vaekit does not train on dequantised pixels)."""
    c, h, w = image_shape
    return nll_nats / (c * h * w * math.log(2))


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


def log_posterior(logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """log q(z|x) of z = mean + exp(logvar / 2) * eps, over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + eps.pow(2)).sum(-1)


def elbo_terms(
    model: VAEModule, x: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(reconstruction log-likelihood, KL, KL per dim) per image for one reparameterised sample
    z = mu + sigma*eps. The standard normal prior's KL is in closed form, per dimension; a learned mixture's
    has none, so it is the one-sample estimate log q(z|x) - log p(z) and the per-dim KL is None."""
    mean, logvar = model.encoder(x)
    z = mean + torch.exp(0.5 * logvar) * eps
    recon = log_likelihood(x, model.decoder.fit_variance(x, model.decoder.likelihood_params(z, image=False)))
    return recon, *kl_terms(model, mean, logvar, eps, z)


def kl_terms(
    model: VAEModule, mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(KL, KL per dim) per image of the posterior (mean, logvar) for the sample z = mean + exp(logvar / 2) * eps:
    in closed form per dimension for the standard normal prior, the one-sample estimate for a mixture (no per dim)."""
    if model.mixture is not None:
        return log_posterior(logvar, eps) - model.mixture.log_prob(z), None
    kl_dims = kl_per_dim(mean, logvar)
    return kl_dims.sum(1), kl_dims


def kl_loss(kl: torch.Tensor, kl_dims: torch.Tensor | None, free_bits: float) -> torch.Tensor:
    """The KL part of the training loss (before beta): the batch mean, or with free bits the sum over dimensions of
    each one's batch mean, held at least `free_bits` (no gradient pushes a dimension below it)."""
    return kl_dims.mean(0).clamp(min=free_bits).sum() if free_bits > 0 else kl.mean()


def training_loss(
    model: VAEModule, x: torch.Tensor, eps: torch.Tensor, *, beta: float = 1.0, free_bits: float = 0.0, iwae_k: int = 1
) -> torch.Tensor:
    """Mean loss over the batch. `eps` is (N, D) for the ELBO or (k, N, D) for IWAE."""
    if iwae_k > 1:
        return -iwae_bound(model, x, eps).mean()
    recon, kl, kl_dims = elbo_terms(model, x, eps)
    return -recon.mean() + beta * kl_loss(kl, kl_dims, free_bits)


def iwae_bound(model: VAEModule, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i|x) per image; eps is (k, N, D)."""
    k, n, d = eps.shape
    mean, logvar = model.encoder(x)
    std = torch.exp(0.5 * logvar)
    z = mean + std * eps  # (k, N, D)
    params = model.decoder.likelihood_params(z.reshape(k * n, d), image=False)
    log_px = log_likelihood(x.repeat(k, 1, 1, 1), params).view(k, n)
    return torch.logsumexp(log_px + model.log_prior(z) - log_posterior(logvar, eps), dim=0) - math.log(k)


@torch.no_grad()
def nll_estimate(
    model: VAEModule, x: torch.Tensor, *, k: int = 1000, generator: torch.Generator, budget_bytes: int = EVAL_BUDGET_BYTES
) -> torch.Tensor:
    """Per-image NLL upper bound (-IWAE with k samples) of images `x` (uint8 or float in [0, 1]), in
    chunks of as many decoded latents as `budget_bytes` holds at this image size (see `eval_chunk`)."""
    d = model.config.latent_dim
    max_points = eval_chunk(model.config, budget_bytes)
    images_per_chunk = max(1, max_points // k)
    out = []
    for start in range(0, len(x), images_per_chunk):
        xb = unit(x[start : start + images_per_chunk])
        samples_per_chunk = max(1, max_points // len(xb))
        log_ws = []
        for s in range(0, k, samples_per_chunk):
            ks = min(samples_per_chunk, k - s)
            eps = torch.randn(ks, len(xb), d, generator=generator, device=x.device)
            log_ws.append(iwae_bound(model, xb, eps) + math.log(ks))  # log sum of this chunk's weights
        out.append(-(torch.logsumexp(torch.stack(log_ws), dim=0) - math.log(k)))
    return torch.cat(out)


class Objective(nn.Module):
    """The training loss as a module, so that DistributedDataParallel can wrap it and sync gradients: the ELBO for
    noise eps (N, D), the IWAE bound with k samples for eps (k, N, D), so that one run can take both."""

    def __init__(self, model: VAEModule, *, free_bits: float = 0.0) -> None:
        super().__init__()
        self.model, self.free_bits = model, free_bits

    def forward(self, x: torch.Tensor, eps: torch.Tensor, beta: float) -> torch.Tensor:
        iwae_k = len(eps) if eps.dim() == 3 else 1
        return training_loss(self.model, x, eps, beta=beta, free_bits=self.free_bits, iwae_k=iwae_k)
