"""The optimiser step: the fused AdamW kernel called directly gives `optimizer.step()`'s update to the bit, with the
clipping of `clip_grad_norm_` inside it, and anything it does not cover goes through `optimizer.step()`."""

from __future__ import annotations

import pytest
import torch

from vaekit.train.optimizer import FUSED_ADAMW, _direct_applies, clip_gradients, clipped_step, gradient_norm


def _pair(fused: bool = True) -> tuple[list[torch.nn.Parameter], list[torch.nn.Parameter], torch.optim.AdamW,
                                       torch.optim.AdamW]:
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(shape)) for shape in ((30, 7), (30,), (5, 30))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    make = lambda ps: torch.optim.AdamW(ps, lr=3e-3, weight_decay=0.01, fused=fused)  # noqa: E731
    return a, b, make(a), make(b)


def _set_grads(a: list[torch.nn.Parameter], b: list[torch.nn.Parameter], scale: float) -> None:
    for p, q in zip(a, b):
        g = torch.randn_like(p) * scale
        p.grad, q.grad = g.clone(), g.clone()


def _assert_same(a: list[torch.nn.Parameter], b: list[torch.nn.Parameter], oa: torch.optim.Optimizer,
                 ob: torch.optim.Optimizer, exact: bool) -> None:
    check = torch.equal if exact else (lambda x, y: torch.allclose(x, y, rtol=1e-5, atol=1e-7))
    assert all(check(p, q) and check(p.grad, q.grad) for p, q in zip(a, b))
    for p, q in zip(a, b):
        sa, sb = oa.state[p], ob.state[q]
        assert torch.equal(sa["step"], sb["step"])
        assert check(sa["exp_avg"], sb["exp_avg"]) and check(sa["exp_avg_sq"], sb["exp_avg_sq"])


@pytest.mark.skipif(FUSED_ADAMW is None, reason="this torch has no fused AdamW kernel")
def test_the_direct_kernel_call_is_optimizer_step_to_the_bit() -> None:
    a, b, oa, ob = _pair()
    for step in range(6):
        _set_grads(a, b, 1.0)
        for group in (*oa.param_groups, *ob.param_groups):
            group["lr"] = 3e-3 * (1 - step / 10)  # the trainer's schedule sets the rate every step
        assert _direct_applies(ob) is (step > 0)  # the first step makes the state
        clip_gradients(a, 1e9, gradient_norm(a))
        oa.step()
        clipped_step(ob, 1e9, gradient_norm(b))
        _assert_same(a, b, oa, ob, exact=True)
    assert str(oa.state_dict()) == str(ob.state_dict())


@pytest.mark.skipif(FUSED_ADAMW is None, reason="this torch has no fused AdamW kernel")
def test_clipping_inside_the_kernel_is_clip_grad_norm() -> None:
    """Over the limit the kernel divides by norm / limit where clip_grad_norm_ multiplies by its inverse: the same
    update up to float rounding, and `.grad` holds the clipped gradients afterwards in both."""
    a, b, oa, ob = _pair()
    for step in range(6):
        _set_grads(a, b, 50.0)
        limit = float(gradient_norm(a)) / 4
        torch.nn.utils.clip_grad_norm_(a, limit)
        oa.step()
        clipped_step(ob, limit, gradient_norm(b))
        _assert_same(a, b, oa, ob, exact=step == 0)  # the first step is optimizer.step()'s own, after clipping
        assert abs(float(gradient_norm(b)) - limit) < 1e-4 * limit


def test_what_the_direct_call_does_not_cover_goes_through_optimizer_step() -> None:
    for fused in (False, True):
        a, b, oa, ob = _pair(fused)
        _set_grads(a, b, 1.0)
        oa.step(), ob.step()
        _set_grads(a, b, 1.0)
        b[1].grad = a[1].grad = None  # a parameter without a gradient this step
        assert not _direct_applies(ob)
        oa.step()
        clipped_step(ob)
        _assert_same([a[0], a[2]], [b[0], b[2]], oa, ob, exact=True)
        assert torch.equal(a[1], b[1])
