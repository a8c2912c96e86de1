"""A prior fitted after training: the mixture that best matches the training images' codes (the aggregate posterior),
so that samples from the prior land where the codes of real images are, not in the holes a standard normal leaves."""

from __future__ import annotations

import torch

from . import rng
from .models import VAEModule
from .objectives import eval_chunk, unit

FIT_MAX_IMAGES = 10_000  # codes the mixture is fitted to at most (a random subset): bounds its time and memory


@torch.no_grad()
def fit_prior(model: VAEModule, images: torch.Tensor, seed: int) -> None:
    """Fit a `prior_fit` model's mixture to one posterior sample of each training image (uint8 or float in [0, 1];
    of FIT_MAX_IMAGES of them drawn at random where there are more), by EM (`MixturePrior.fit`), and mark it fitted:
    from then on the model's prior, and the bundle's."""
    generator = rng.generator(seed, rng.Stream.PRIOR_FIT)
    if len(images) > FIT_MAX_IMAGES:
        images = images[torch.randperm(len(images), generator=generator)[:FIT_MAX_IMAGES].to(images.device)]
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
