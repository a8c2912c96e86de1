"""The mlp family's training step with the dense layers differentiated by hand: the same loss and gradients as
autograd's, without its per-operation bookkeeping, for float32 steps on a CPU (README: "What the recipe tried").

The encoder's and decoder's Linear layers and the Bernoulli likelihood run forward with no graph, and backward as
explicit matrix products written into gradient buffers that persist from step to step. The latent part (the
reparameterisation, and the KL or the mixture prior's estimate of it) is small and stays with autograd, through the
same `kl_terms` and `kl_loss` as the autograd step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .models import ModelConfig, VAEModule
from .objectives import kl_loss, kl_per_dim, kl_terms

LOG_GROUP = 64  # values in [1/2, 1] multiplied together before one log is taken (`sum_of_logs`)

# d(activation)/d(input) applied to `grad`, given the layer's input `pre` and output `post`: the kernels autograd uses
ACTIVATION_BACKWARD: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "relu": lambda grad, pre, post: torch.ops.aten.threshold_backward(grad, post, 0),
    "silu": lambda grad, pre, post: torch.ops.aten.silu_backward(grad, pre),
    "elu": lambda grad, pre, post: torch.ops.aten.elu_backward(grad, 1.0, 1, 1, False, pre),
    "gelu": lambda grad, pre, post: torch.ops.aten.gelu_backward(grad, pre),
    "tanh": lambda grad, pre, post: torch.ops.aten.tanh_backward(grad, post),
}


def mlp_step_applies(model_cfg: ModelConfig, precision: str | None, device: torch.device, iwae_k: int,
                     world_size: int) -> bool:
    """Whether a training step can be taken by `mlp_step`: the mlp family with a Bernoulli decoder and the ELBO,
    float32 on a CPU, in one process (bf16 steps, other models and torchrun jobs keep autograd)."""
    return (model_cfg.kind == "mlp" and model_cfg.likelihood == "bernoulli" and precision == "float32"
            and device.type == "cpu" and iwae_k == 1 and world_size == 1)


def _linears(stack: nn.Sequential) -> list[nn.Linear]:
    return [m for m in stack if isinstance(m, nn.Linear)]


def _forward(stack: nn.Sequential, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """Run a Linear/activation stack without a graph: (each Linear's input, each activation's input, the output)."""
    inputs, pres, h = [], [], x
    for module in stack:
        if isinstance(module, nn.Linear):
            inputs.append(h)
            h = torch.addmm(module.bias, h, module.weight.t())
        else:
            pres.append(h)
            h = module(h)
    return inputs, pres, h


def flat_gradients(model: nn.Module) -> torch.Tensor:
    """One buffer holding the gradients of all of `model`'s parameters, each `.grad` a view of it, so that clipping
    reads one tensor rather than one per parameter; made on first use, and again if anything replaced a `.grad`.
    The parameters are listed once, with the buffer: walking the modules for them took 22 us, every step."""
    flat, params, views = getattr(model, "_vaekit_flat_grad", (None, [], []))
    if flat is None or any(p.grad is not v for p, v in zip(params, views)):
        params = list(model.parameters())
        flat = torch.empty(sum(p.numel() for p in params), dtype=params[0].dtype, device=params[0].device)
        views = [v.view_as(p) for v, p in zip(torch.split(flat, [p.numel() for p in params]), params)]
        for p, v in zip(params, views):
            p.grad = v
        model._vaekit_flat_grad = (flat, params, views)
    return flat


def _backward(stack: nn.Sequential, activation: str, inputs: list[torch.Tensor], pres: list[torch.Tensor],
              grad: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
    """Write the stack's weight and bias gradients for `grad` (d loss / d output) into their buffers; return the
    gradient of the stack's input, if `input_grad`."""
    act_backward = ACTIVATION_BACKWARD[activation]
    linears = _linears(stack)
    for i in reversed(range(len(linears))):
        layer = linears[i]
        torch.mm(grad.t(), inputs[i], out=layer.weight.grad)
        torch.sum(grad, 0, out=layer.bias.grad)
        if i == 0 and not input_grad:
            return None
        grad = torch.mm(grad, layer.weight)
        if i > 0:  # through the activation between layer i - 1 and layer i
            grad = act_backward(grad, pres[i - 1], inputs[i])
    return grad


def sum_of_logs(values: torch.Tensor) -> torch.Tensor:
    """The sum of the logs of `values` (contiguous, each in [1/2, 1]), one log per LOG_GROUP of them: their product
    is at least 2^-64, far from float32's underflow, and its rounding adds up to about what 64 logs' would. Capped at
    AVX2, 18 vs 116 us for 128 x 784 values alone (a log each costs twice the sigmoid); 0.44 vs 0.48 ms for the whole
    loss inside the training loop."""
    flat = values.view(-1)
    whole = len(flat) // LOG_GROUP * LOG_GROUP
    return flat[:whole].view(-1, LOG_GROUP).prod(1).log_().sum() + flat[whole:].log().sum()


def bernoulli_loss_and_grad(logits: torch.Tensor, x: torch.Tensor,
                            with_loss: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """The batch mean of the summed binary cross-entropy of `logits` against `x` (both (N, P)), and its gradient,
    from one sigmoid s: BCE = softplus(l) - x * l, and softplus(l) = relu(l) - log(max(s, 1 - s)), logs taken in
    [1/2, 1] where they are exact to float rounding (2.5x faster than `binary_cross_entropy_with_logits` under AVX2).
    Without `with_loss`, the gradient alone (s - x) / N, written over `logits`, and None: the loss's value is about
    half of the work."""
    n = len(x)
    if not with_loss:
        return None, logits.sigmoid_().sub_(x).div_(n)
    s = torch.sigmoid(logits)
    grad = torch.sub(s, x).div_(n)
    most_likely = s.sub_(0.5).abs_().add_(0.5)  # max(s, 1 - s), in place of s
    loss = torch.relu(logits).sum() - torch.dot(logits.view(-1), x.reshape(-1)) - sum_of_logs(most_likely)
    return loss / n, grad


LatentBackward = Callable[[torch.Tensor], torch.Tensor]


def standard_normal_latent(mean: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor, beta: float,
                           free_bits: float, with_loss: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, LatentBackward]:
    """z = mean + exp(logvar / 2) * eps, the KL part of the loss against N(0, I) (None without `with_loss`), and the
    function that turns the reconstruction's gradient of z into the loss's gradient of (mean, logvar), from the KL's
    closed-form derivatives (d/dmean = mean, d/dlogvar = (exp(logvar) - 1) / 2, per image and dimension)."""
    std = torch.exp(0.5 * logvar)
    z = torch.addcmul(mean, std, eps)
    weight = beta / len(mean)
    loss = None
    if with_loss or free_bits > 0:
        kl_dims = kl_per_dim(mean, logvar)
        loss = beta * kl_loss(kl_dims.sum(1), kl_dims, free_bits)
        if free_bits > 0:  # no gradient for the dimensions held at free_bits (as autograd's clamp gives)
            weight = (kl_dims.mean(0) >= free_bits).float().mul_(weight)

    def backward(grad_z: torch.Tensor) -> torch.Tensor:
        grad_mean = torch.add(grad_z, mean * weight)
        grad_logvar = (std * std - 1).mul_(0.5 * weight).addcmul_(grad_z, eps * std, value=0.5)
        return torch.cat([grad_mean, grad_logvar], dim=1)

    return z, loss, backward


def mixture_latent(model: VAEModule, stats: torch.Tensor, eps: torch.Tensor,
                   beta: float) -> tuple[torch.Tensor, torch.Tensor, LatentBackward]:
    """As `standard_normal_latent` for a learned mixture prior, by autograd (`kl_terms`' one-sample estimate); its
    backward also sets the prior's parameter gradients."""
    prior_params = list(model.prior.parameters())
    stats = stats.detach().requires_grad_()
    with torch.enable_grad():
        mean, logvar = stats.chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * logvar) * eps
        loss = beta * kl_loss(*kl_terms(model, mean, logvar, eps, z), 0.0)

    def backward(grad_z: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            grads = torch.autograd.grad((loss, z), (stats, *prior_params), (torch.ones_like(loss), grad_z))
        for p, g in zip(prior_params, grads[1:]):
            p.grad.copy_(g)
        return grads[0]

    return z.detach(), loss.detach(), backward


@torch.no_grad()
def mlp_step(model: VAEModule, x: torch.Tensor, eps: torch.Tensor, beta: float, free_bits: float,
             with_loss: bool = True) -> torch.Tensor | None:
    """Set the gradients of every parameter of `model` to those of `training_loss(model, x, eps, beta=beta,
    free_bits=free_bits)` and return that loss (detached), or None without `with_loss` (the gradients do not need its
    value): images x (N, C, H, W) in [0, 1], noise eps (N, D). The gradients are views of one buffer
    (`flat_gradients`)."""
    flat_gradients(model)
    flat = x.reshape(len(x), -1)
    encoder, decoder, activation = model.encoder, model.decoder, model.config.activation
    enc_in = flat - encoder.input_mean.reshape(1, -1) if encoder.input_mean is not None else flat
    enc_inputs, enc_pres, stats = _forward(encoder.head, enc_in)
    if model.prior is None:
        z, latent_loss, latent_backward = standard_normal_latent(*stats.chunk(2, dim=-1), eps, beta, free_bits,
                                                                   with_loss)
    else:  # free bits need the standard normal prior (TrainConfig.validate)
        z, latent_loss, latent_backward = mixture_latent(model, stats, eps, beta)
    dec_stack = decoder.body[0]
    dec_inputs, dec_pres, logits = _forward(dec_stack, z)
    recon_loss, grad_logits = bernoulli_loss_and_grad(logits, flat, with_loss)
    grad_z = _backward(dec_stack, activation, dec_inputs, dec_pres, grad_logits, input_grad=True)
    _backward(encoder.head, activation, enc_inputs, enc_pres, latent_backward(grad_z), input_grad=False)
    return recon_loss + latent_loss if recon_loss is not None else None
