"""The optimiser step: AdamW on the gradients clipped to a norm, with the clipping inside the fused kernel.

`torch.optim.AdamW(fused=True)` runs one kernel per step, and `Optimizer.step` spends about 40 us of Python around it
(hooks, grouping the tensors by device, checking each parameter's state); clipping with `clip_grad_norm_` is a pass of
its own over every gradient. Once every parameter has its state, `clipped_step` calls the kernel itself on the
optimizer's own tensors and hands it the clipping as the gradients' divisor (`grad_scale`, the same argument AMP's
unscaling uses), which the kernel also writes back into `.grad`. Together: 1-2% of a float32 step of the 784-400-20
MLP on one CPU core (README: "What the recipe tried"). The state and checkpoints are `optimizer.step()`'s.
"""

from __future__ import annotations

import torch

FUSED_ADAMW = getattr(torch, "_fused_adamw_", None)  # the kernel AdamW(fused=True) calls; absent: optimizer.step()
CLIP_EPS = 1e-6  # clip_grad_norm_'s: the gradients are scaled by max_norm / (norm + CLIP_EPS) when that is below 1


def gradient_norm(params: list[torch.nn.Parameter], flat: torch.Tensor | None = None) -> torch.Tensor:
    """The 2-norm of all of `params`' gradients; where they are views of one buffer `flat` (the hand step's), the
    root of its dot product with itself (BLAS's: 53 vs 71 us for `vector_norm` over 650k values)."""
    if flat is not None:
        return torch.dot(flat, flat).sqrt_()
    return torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])


def over_limit(norm: torch.Tensor, max_norm: float) -> bool:
    """Whether gradients of `norm` may need rescaling to `max_norm`: on a CPU only over the limit (reading the norm is
    no device sync there; below it `clip_grad_norm_` multiplies by exactly 1.0, so skipping is the same to the bit),
    elsewhere always."""
    return norm.device.type != "cpu" or bool(norm > max_norm)


def clip_gradients(params: list[torch.nn.Parameter], max_norm: float, norm: torch.Tensor) -> None:
    """`clip_grad_norm_` given the gradients' `norm`, skipping the pass where `over_limit` says it changes nothing."""
    if over_limit(norm, max_norm):
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm)


def _direct_applies(optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer` is a plain fused AdamW on one parameter group of one device and dtype whose every
    parameter has a gradient and a state: what calling its kernel directly reproduces."""
    if FUSED_ADAMW is None or type(optimizer) is not torch.optim.AdamW or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    if not group["fused"] or group["amsgrad"] or group["maximize"] or group["capturable"] or group["differentiable"]:
        return False
    params = group["params"]
    return (all(p.grad is not None and p in optimizer.state for p in params)
            and len({(p.device, p.dtype) for p in params}) == 1)


def clipped_step(optimizer: torch.optim.Optimizer, max_norm: float | None = None,
                 norm: torch.Tensor | None = None) -> None:
    """One optimiser step on the gradients scaled by min(1, max_norm / (norm + 1e-6)), as `clip_grad_norm_` gives
    (no clipping when `max_norm` is None); `.grad` holds the clipped gradients afterwards."""
    if not _direct_applies(optimizer):
        if max_norm is not None:
            clip_gradients([p for group in optimizer.param_groups for p in group["params"]], max_norm, norm)
        optimizer.step()
        return
    group = optimizer.param_groups[0]
    params = group["params"]
    states = [optimizer.state[p] for p in params]
    steps = [s["step"] for s in states]
    divisor = None  # the kernel writes the divided gradients back: a pass saved below the limit
    if max_norm is not None and over_limit(norm, max_norm):
        divisor = torch.clamp((norm + CLIP_EPS) / max_norm, min=1.0)
    torch._foreach_add_(steps, 1)
    beta1, beta2 = group["betas"]
    FUSED_ADAMW(params, [p.grad for p in params], [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states],
                [], steps, amsgrad=False, lr=group["lr"], beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                eps=group["eps"], maximize=False, grad_scale=divisor, found_inf=None)
