"""The hand-differentiated mlp step gives autograd's loss and gradients, and the trainer takes it only where it applies."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vaekit.runtime.choices import ACTIVATIONS
from vaekit.train.distributed import Distributed
from vaekit.train.mlp_step import ACTIVATION_BACKWARD, bernoulli_loss_and_grad, mlp_step, mlp_step_applies, sum_of_logs
from vaekit.train.models import ModelConfig, build_model
from vaekit.train.objectives import kl_per_dim, training_loss
from vaekit.train.trainer import Trainer

CASES = {  # activation, hidden, mixture components, centred, free bits ("mixed": some dims held, some not), binary
    "relu, one layer": ("relu", [24], 0, False, 0.0, True),
    "silu, mixture prior, centred": ("silu", [24, 12], 4, True, 0.0, True),
    "elu, free bits (some dims held)": ("elu", [24, 12], 0, True, "mixed", True),
    "gelu, grey targets": ("gelu", [24], 0, False, 0.0, False),
    "tanh, mixture prior, three layers": ("tanh", [24, 16, 8], 3, False, 0.0, True),
}


def _autograd(model, x, eps, beta, free_bits):
    for p in model.parameters():
        p.grad = None
    loss = training_loss(model, x, eps, beta=beta, free_bits=free_bits)
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_loss_and_gradients_match_autograd(case) -> None:
    activation, hidden, components, centred, free_bits, binary = case
    torch.manual_seed(0)
    cfg = ModelConfig(kind="mlp", image_shape=(1, 6, 5), latent_dim=4, hidden=hidden, activation=activation,
                      prior_components=components, center_inputs=centred)
    model = build_model(cfg)
    model.fit_to_data(torch.rand(1, 6, 5), 50)
    for step in range(2):  # the second step overwrites the first one's gradient buffers
        x, eps = torch.rand(9, 1, 6, 5), torch.randn(9, 4)
        x = torch.bernoulli(x) if binary else x
        if free_bits == "mixed":  # between the dimensions' KLs, so that the clamp holds some and not others
            with torch.no_grad():
                kl = kl_per_dim(*model.encoder(x)).mean(0).sort().values
            free_bits = float(kl[1:3].mean())
        loss, grads = _autograd(model, x, eps, 0.7, free_bits)
        for p in model.parameters():  # gradients left from autograd must not leak into the hand-written ones
            p.grad = torch.full_like(p, float("nan")) if step else None
        by_hand = mlp_step(model, x, eps, 0.7, free_bits)
        torch.testing.assert_close(by_hand, loss, rtol=1e-5, atol=1e-4)
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-6, msg=f"{name} differs")


def test_without_the_loss_the_gradients_are_the_same_to_the_bit() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", image_shape=(1, 6, 5), latent_dim=4, hidden=[24]))
    x, eps = torch.bernoulli(torch.rand(9, 1, 6, 5)), torch.randn(9, 4)
    assert mlp_step(model, x, eps, 1.0, 0.0) is not None
    with_loss = [p.grad.clone() for p in model.parameters()]
    assert mlp_step(model, x, eps, 1.0, 0.0, with_loss=False) is None
    for p, g in zip(model.parameters(), with_loss):
        assert torch.equal(p.grad, g)


def test_every_activation_has_a_backward() -> None:
    assert set(ACTIVATION_BACKWARD) == set(ACTIVATIONS)


def test_the_bernoulli_loss_is_exact_for_extreme_logits() -> None:
    """Logits far beyond where sigmoid rounds to 0 or 1 in float32 still give the cross-entropy to float rounding."""
    logits = torch.linspace(-100, 100, 801).reshape(3, 267)
    x = torch.bernoulli(torch.full_like(logits, 0.5), generator=torch.Generator().manual_seed(0))
    loss, grad = bernoulli_loss_and_grad(logits, x)
    expected = F.binary_cross_entropy_with_logits(logits.double(), x.double(), reduction="sum") / 3
    assert torch.isfinite(loss) and abs(float(loss) - float(expected)) < 1e-5 * float(expected)
    torch.testing.assert_close(grad, (torch.sigmoid(logits.double()) - x.double()).float() / 3)


@pytest.mark.parametrize("n", [1, 63, 64, 1000, 128 * 784])
def test_the_sum_of_logs_by_groups_equals_the_sum_of_each_log(n: int) -> None:
    """Products of up to 64 values in [1/2, 1] (the smallest, 2^-64, far from underflow) and a remainder that fills
    no group give the float64 sum of the logs to float32 rounding."""
    values = torch.rand(n, generator=torch.Generator().manual_seed(n)) / 2 + 0.5
    values[: n // 2] = 0.5  # the smallest products there are
    expected = float(values.double().log().sum())
    assert abs(float(sum_of_logs(values)) - expected) <= 1e-6 * abs(expected) + 1e-6


@pytest.mark.parametrize("change, applies", [
    ({}, True),
    ({"precision": "bfloat16"}, False),
    ({"likelihood": "gaussian"}, False),
    ({"kind": "conv", "image_shape": (1, 16, 16)}, False),
    ({"iwae_k": 2}, False),
    ({"world_size": 2}, False),
    ({"device": torch.device("cuda")}, False),
], ids=["mlp, bernoulli, float32, cpu", "bfloat16", "gaussian", "conv", "iwae", "torchrun", "cuda"])
def test_the_hand_step_applies_to_float32_mlp_bernoulli_elbo_on_one_cpu_process(change: dict, applies: bool) -> None:
    settings = {"precision": "float32", "iwae_k": 1, "world_size": 1, "device": torch.device("cpu")}
    model_fields = {k: change.pop(k) for k in list(change) if k not in settings}
    cfg = ModelConfig(**{"kind": "mlp", "image_shape": (1, 8, 8), **model_fields})
    assert mlp_step_applies(cfg, **(settings | change)) is applies


def test_the_trainer_takes_the_hand_step_in_float32_only(tmp_path: Path) -> None:
    from train_helpers import tiny_config

    from vaekit.train.config import resolve
    from vaekit.train.data import load_data

    for precision, by_hand in (("float32", True), ("bfloat16", False)):
        cfg = tiny_config(tmp_path, precision=precision)
        data = load_data(cfg.data, image_size=None, channels=None, test_fraction=0.1, seed=0, progress=False)
        cfg, model_cfg, _ = resolve(cfg, data.image_shape, len(data.train))
        assert Trainer(cfg, tmp_path, data, model_cfg, Distributed()).by_hand(1) is by_hand


def test_the_hand_step_writes_one_gradient_buffer_and_clipping_reads_it() -> None:
    """Every `.grad` is a view of one flat buffer; clipping by that buffer's norm gives `clip_grad_norm_`'s
    gradients, over the limit (rescaled) and under it (untouched)."""
    from vaekit.train.mlp_step import flat_gradients
    from vaekit.train.optimizer import clip_gradients, gradient_norm

    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="mlp", image_shape=(1, 6, 5), latent_dim=4, hidden=[24], prior_components=3))
    x, eps = torch.bernoulli(torch.rand(9, 1, 6, 5)), torch.randn(9, 4)
    mlp_step(model, x, eps, 1.0, 0.0)
    flat, params = flat_gradients(model), list(model.parameters())
    assert flat.numel() == sum(p.numel() for p in params)
    assert all(p.grad.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr() for p in params)
    norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    assert abs(float(torch.linalg.vector_norm(flat)) - norm) < 1e-5 * norm
    for limit in (norm / 3, norm * 3):
        expected = [p.grad * min(1.0, limit / (norm + 1e-6)) for p in params]  # clip_grad_norm_'s rescaling
        clip_gradients(params, limit, gradient_norm(params, flat_gradients(model)))
        for p, e in zip(params, expected):
            torch.testing.assert_close(p.grad, e)
        mlp_step(model, x, eps, 1.0, 0.0)  # the same gradients again, in the same buffer
        assert flat_gradients(model) is flat
