"""A prior fitted after training: the mixture that best matches the training images' codes (the aggregate posterior),
so that samples from the prior land where the codes of real images are, not in the holes a standard normal leaves."""

from __future__ import annotations

import torch

from . import rng
from .models import VAEModule
from .objectives import eval_chunk, unit


@torch.no_grad()
def fit_prior(model: VAEModule, images: torch.Tensor, seed: int) -> None:
    """Fit a `prior_fit` model's mixture to one posterior sample of each training image (uint8 or float in [0, 1]),
    by EM (`MixturePrior.fit`), and mark it fitted: from then on the model's prior, and the bundle's."""
    generator = rng.generator(seed, rng.Stream.PRIOR_FIT)
    was_training = model.training
    model.eval()
    codes = []
    for x in images.split(eval_chunk(model.config)):
        mean, logvar = model.encoder(unit(x))
        eps = torch.randn(mean.shape, generator=generator).to(mean.device)
        codes.append((mean + torch.exp(0.5 * logvar) * eps).float())
    model.prior.fit(torch.cat(codes), generator)
    model.prior_fitted.fill_(True)
    model.train(was_training)
