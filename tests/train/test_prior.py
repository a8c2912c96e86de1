"""The learned mixture prior: its density and samples against torch.distributions, its KL in the ELBO, and the
recipe that chooses it."""

from __future__ import annotations

import math

import torch
from torch import distributions as D
from train_helpers import planned

from vaekit.train import TrainConfig
from vaekit.train.models import ModelConfig, build_model
from vaekit.train.objectives import elbo_terms, iwae_bound
from vaekit.train.plan import MIXTURE_COMPONENTS


def mixture_model(components: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=[16], prior_components=components))
    with torch.no_grad():
        model.prior.logits.uniform_(-2.0, 2.0)
        model.prior.logvars.uniform_(-2.0, 1.0)
    return model


def as_distribution(prior: torch.nn.Module) -> D.Distribution:
    """The same mixture built from torch.distributions, as an independent reference."""
    components = D.Independent(D.Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1)
    return D.MixtureSameFamily(D.Categorical(logits=prior.logits), components)


def test_log_prob_matches_torch_distributions() -> None:
    prior = mixture_model().prior
    z = torch.randn(4, 6, 3) * 2  # any leading shape
    torch.testing.assert_close(prior.log_prob(z), as_distribution(prior).log_prob(z), rtol=1e-5, atol=1e-5)


def test_samples_follow_the_mixture() -> None:
    prior = mixture_model(3).prior
    z = prior.sample(20_000, torch.Generator().manual_seed(1))
    reference = as_distribution(prior)
    torch.testing.assert_close(z.mean(0), reference.mean.detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.var(0), reference.variance.detach(), atol=0.1, rtol=0.05)
    # seeded: the same generator state gives the same latents
    torch.testing.assert_close(prior.sample(5, torch.Generator().manual_seed(2)), prior.sample(5, torch.Generator().manual_seed(2)))


def test_elbo_kl_is_the_one_sample_estimate_and_iwae_uses_the_prior() -> None:
    model = mixture_model()
    x = (torch.rand(7, 1, 8, 8, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    eps = torch.randn(7, 3, generator=torch.Generator().manual_seed(3))
    recon, kl, kl_dims = elbo_terms(model, x, eps)
    mean, logvar = model.encoder(x)
    z = mean + torch.exp(0.5 * logvar) * eps
    q = D.Independent(D.Normal(mean, torch.exp(0.5 * logvar)), 1)
    assert kl_dims is None  # no closed form, so no per-dimension KL (free bits refuse this prior)
    torch.testing.assert_close(kl, q.log_prob(z) - as_distribution(model.prior).log_prob(z), rtol=1e-5, atol=1e-4)
    # IWAE with k=1 and the same noise is the ELBO's one-sample estimate
    torch.testing.assert_close(iwae_bound(model, x, eps[None]), recon - kl, rtol=1e-5, atol=1e-4)
    assert math.isfinite(float(iwae_bound(model, x, torch.randn(5, 7, 3)).mean().detach()))


def test_recipe_gives_mlps_a_learned_mixture_and_conv_a_fitted_one() -> None:
    mlp = planned(TrainConfig(epochs=2), (1, 28, 28), 1000)
    assert mlp.model.prior_components == MIXTURE_COMPONENTS and "mixture" in mlp.why["prior_components"]
    assert not mlp.model.prior_fit
    conv = planned(TrainConfig(epochs=2), (3, 32, 32), 1000)
    assert conv.model.prior_fit and conv.model.prior_components == 1000 // 20 and "samples" in conv.why["prior_fit"]
    assert planned(TrainConfig(epochs=2), (3, 32, 32), 100_000).model.prior_components == 64
    assert not planned(TrainConfig(epochs=2, prior_components=0), (3, 32, 32), 1000).model.prior_fit
    free = planned(TrainConfig(epochs=2, free_bits=0.5), (1, 28, 28), 1000)
    assert free.model.prior_components == 0 and "--free-bits" in free.why["prior_components"]
    assert planned(TrainConfig(epochs=2, prior_components=0), (1, 28, 28), 1000).model.prior_components == 0


def test_fitted_mixture_finds_the_codes_clusters() -> None:
    """EM on codes from two far-apart Gaussians recovers their means, spreads and weights."""
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(300, 2, generator=g) * 0.5 + torch.tensor([4.0, 0.0]),
                   torch.randn(100, 2, generator=g) * 0.2 + torch.tensor([-4.0, 1.0])])
    prior = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=[8], prior_components=2,
                                    prior_fit=True)).prior
    prior.fit(z, torch.Generator().manual_seed(1))
    order = prior.means[:, 0].argsort(descending=True)
    assert torch.allclose(prior.means[order], torch.tensor([[4.0, 0.0], [-4.0, 1.0]]), atol=0.1)
    assert torch.allclose(torch.exp(0.5 * prior.logvars[order]), torch.tensor([[0.5, 0.5], [0.2, 0.2]]), rtol=0.15)
    assert torch.allclose(torch.softmax(prior.logits[order], 0), torch.tensor([0.75, 0.25]), atol=0.01)


def test_a_fitted_prior_is_the_standard_normal_until_fitted() -> None:
    from vaekit.train.models import log_standard_normal
    from vaekit.train.prior_fit import fit_prior

    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=[16], prior_components=4,
                                    prior_fit=True))
    z = torch.randn(5, 3)
    assert model.mixture is None and torch.equal(model.log_prior(z), log_standard_normal(z))
    assert not any(p.requires_grad for p in model.prior.parameters())  # training leaves it alone
    fit_prior(model, torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8), seed=0)
    assert model.mixture is model.prior and bool(model.prior_fitted)
    assert torch.allclose(model.log_prior(z), as_distribution(model.prior).log_prob(z), atol=1e-5)
    assert "prior_fitted" in model.state_dict()  # checkpoints (and the bundle's prior) keep the fit
