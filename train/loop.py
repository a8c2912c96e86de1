"""The training loop: batch, step, schedule, stop; the chores (`chores.py`) run between steps, paced by the clock.

Everything here reads the frozen `Plan`; what changes is the `State` (weights, optimiser, step, schedule progress),
and each step's batch and noise follow from its step number (`rng.py`), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import rng
from .budget import CHORES_SHARE, NLL_SHARE, Budget, StepClock
from .chores import Chores
from .distributed import Distributed
from .errors import TrainingError
from .models import VAEModule, build_model
from .objectives import Objective
from .plan import Plan, Probe
from .prior_fit import fit_prior

LR_FLOOR = 0.05  # the cosine schedule ends at this share of the learning rate
# Planning for a --max-time budget times this many seconds of steps (at most PROBE_SHARE of the budget)
PROBE_SECONDS, PROBE_SHARE, PROBE_MAX_STEPS = 2.0, 0.01, 200


@dataclass(frozen=True)
class Session:
    """This command's side of a run: its process, device, clock and progress bar (a resume may differ in each)."""

    dist: Distributed
    device: torch.device
    budget: Budget
    progress: bool


@dataclass
class State:
    """Everything a run needs to continue: the model, its optimiser, and the counters."""

    model: VAEModule
    optimizer: torch.optim.Optimizer
    step: int = 0
    elapsed: float = 0.0  # training seconds of all previous sessions of this run
    progress: float = 0.0  # how far the learning-rate schedule has gone, 0 to 1 (see `advance`)


def new_state(plan: Plan, mean_image: torch.Tensor, device: torch.device) -> State:
    """A fresh model from the WEIGHTS stream, started from the training images' mean (`fit_to_data`), and AdamW."""
    with torch.random.fork_rng(devices=[]):  # the initial weights only: the global generator is left as it was
        torch.manual_seed(rng.seed_of(plan.seed, rng.Stream.WEIGHTS))
        model = build_model(plan.model)
    model.to(device).fit_to_data(mean_image, plan.train_images)
    if channels_last(plan):
        model.to(memory_format=torch.channels_last)
    fused = device.type in ("cpu", "cuda")  # one vectorised pass over each parameter per step
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=plan.weight_decay, fused=fused)
    return State(model, optimizer)


def channels_last(plan: Plan) -> bool:
    """Whether training keeps weights and batches channels-last: the conv family's, as oneDNN's convolutions run
    faster on it (docs/recipe-notebook.md)."""
    return plan.model.kind == "conv"


def restored_state(plan: Plan, mean_image: torch.Tensor, device: torch.device, saved: dict[str, Any]) -> State:
    """The state a checkpoint saved."""
    state = new_state(plan, mean_image, device)
    state.model.load_state_dict(saved["model"])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.step, state.elapsed, state.progress = int(saved["step"]), float(saved["elapsed"]), float(saved["progress"])
    return state


def dynamic_binarize(x: torch.Tensor, draws: np.ndarray) -> torch.Tensor:
    """Binary float images from uint8 ones: a pixel of value v is 1 with probability v/255 exactly (v above its
    uniform draw from 0..254, `rng.below_255`)."""
    draws = torch.from_numpy(draws).to(x.device)
    return torch.lt(draws, x, out=torch.empty(x.shape, device=x.device))  # straight into float: a pass fewer


class Batches:
    """The training images (uint8, on the device) and each step's batch and noise."""

    def __init__(self, plan: Plan, train: np.ndarray, session: Session) -> None:
        self.plan, self.dist, self.device = plan, session.dist, session.device
        self.x = torch.from_numpy(train).to(self.device)  # batches are sliced from it, never copied per image
        self.binarize_draws = rng.BinarizeDraws(plan.seed)

    def order(self, epoch: int) -> torch.Tensor:
        return rng.epoch_order(len(self.x), self.plan.seed, epoch)

    def at(self, order: torch.Tensor, step: int, k: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """This process's share of the global batch at `step`, its noise for `k` samples of each image, and the
        global batch's size."""
        size = self.plan.batch_size
        i = step % self.plan.steps_per_epoch
        idx = order[i * size : (i + 1) * size]
        n, d = len(idx), self.plan.model.latent_dim
        x = self.x.index_select(0, idx.to(self.device))
        if self.plan.binarize == "dynamic":
            x = dynamic_binarize(x, self.binarize_draws(step, (size, *x.shape[1:]), n))
        else:
            x = x.float().div_(255)
        if channels_last(self.plan):
            x = x.contiguous(memory_format=torch.channels_last)
        noise = rng.generator(self.plan.seed, rng.Stream.NOISE, step)
        eps = torch.randn((k, n, d) if k > 1 else (n, d), generator=noise).to(self.device)
        lo, hi = self.dist.shard_bounds(n)
        return x[lo:hi], (eps[:, lo:hi] if k > 1 else eps[lo:hi]), n


# ----- the schedule: learning rate, KL weight and bound, all from the step and the schedule's progress -----
def lr_at(plan: Plan, progress: float) -> float:
    """Cosine from `lr` down to LR_FLOOR of it, or constant."""
    if plan.schedule == "constant":
        return plan.lr
    low = plan.lr * LR_FLOOR
    return low + (plan.lr - low) * (1 + math.cos(math.pi * min(1.0, progress))) / 2


def beta_at(plan: Plan, step: int) -> float:
    """The KL weight: beta, reached linearly over the warm-up epochs."""
    warmup = plan.kl_warmup_epochs * plan.steps_per_epoch
    return plan.beta * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)


def iwae_k_at(plan: Plan, progress: float) -> int:
    """The samples of the bound a step trains: `iwae_k` from `iwae_from` on, else 1 (the ELBO)."""
    return plan.iwae_k if progress >= plan.iwae_from else 1


def advance(plan: Plan, state: State, steps_left: float) -> None:
    """Move the schedule on by one of the `steps_left` steps it has left. Without a time budget that is the planned
    steps, so progress is step / total steps; with one, it is also what the clock allows at the measured speed, so
    the schedule ends when the budget does however the speed changes."""
    state.progress += (1.0 - state.progress) / max(1.0, min(steps_left, plan.total_steps - state.step + 1))


def train_step(plan: Plan, state: State, objective: torch.nn.Module, batches: Batches, order: torch.Tensor,
               world_size: int) -> tuple[torch.Tensor, int]:
    """One optimiser step on the global batch at `state.step` (this process's share of it): (this share's loss,
    detached; the samples of the bound it trained)."""
    k = iwae_k_at(plan, state.progress)
    x, eps, global_n = batches.at(order, state.step, k)
    # bfloat16: the forward pass and loss under autocast; weights, gradients and the optimizer stay float32
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=plan.precision == "bfloat16"):
        loss = objective(x, eps, beta_at(plan, state.step))
    state.optimizer.zero_grad(set_to_none=True)
    # each process averages over its share; scaled by share/global, the averaged gradient is the whole batch's
    (loss * (len(x) * world_size / global_n)).backward()
    if plan.grad_clip:
        torch.nn.utils.clip_grad_norm_(state.model.parameters(), plan.grad_clip)
    for group in state.optimizer.param_groups:
        group["lr"] = lr_at(plan, state.progress)
    state.optimizer.step()
    state.step += 1
    return loss.detach(), k


def measure(plan: Plan, batches: Batches, session: Session, mean_image: torch.Tensor) -> Probe:
    """Time a few steps of `plan` on a throwaway model (the first, which allocates, untimed): what the planner fits
    a --max-time budget with. Every rank takes the same steps (each all-reduces gradients) and reports the mean."""
    dist, limit = session.dist, min(PROBE_SECONDS, PROBE_SHARE * (session.budget.seconds or 0))
    probe = new_state(plan, mean_image, session.device)
    objective = dist.wrap(Objective(probe.model, free_bits=plan.free_bits))
    order = batches.order(0)
    train_step(plan, probe, objective, batches, order, dist.world_size)
    began, steps, done = time.perf_counter(), 0, False
    while not done:
        train_step(plan, probe, objective, batches, order, dist.world_size)
        steps += 1
        done = dist.agree(steps >= 3 and (time.perf_counter() - began >= limit or steps >= PROBE_MAX_STEPS))
    speed = dist.mean(torch.tensor(steps / (time.perf_counter() - began), device=session.device))
    budget = session.budget
    left = budget.left() * (1 - CHORES_SHARE) - NLL_SHARE * (budget.seconds or 0)  # the final estimate's share
    left = dist.mean(torch.tensor(left, device=session.device))
    return Probe(1 / speed, steps, left)


def time_left(session: Session, kept_back: float, step_seconds: float) -> tuple[bool, float]:
    """(stop now, steps the budget still holds at `step_seconds` a step), the same on every process; `kept_back`
    seconds are for the closing chores. Without a budget, (False, infinity)."""
    if session.budget.seconds is None:
        return False, math.inf
    left = session.budget.left() - kept_back
    return session.dist.agree_min(left <= 0, left / step_seconds)


def run(plan: Plan, state: State, batches: Batches, chores: Chores, session: Session) -> State:
    """Train until the planned steps or the time budget run out, with the chores between steps; close with the
    chores' final pass, or save on Ctrl-C or SIGTERM (the chores then say how to resume)."""
    spe, dist = plan.steps_per_epoch, session.dist
    objective = dist.wrap(Objective(state.model, free_bits=plan.free_bits))
    start, start_elapsed = time.perf_counter(), state.elapsed
    elapsed = lambda: start_elapsed + time.perf_counter() - start  # noqa: E731
    clock = StepClock(plan.step_seconds)
    chores.start(clock.last)
    bar = tqdm(total=plan.total_steps, initial=state.step, unit="step", desc="training", dynamic_ncols=True,
               disable=not (session.progress and dist.is_main))
    state.model.train()
    stop = False
    try:
        while state.step < plan.total_steps and not stop:
            epoch = state.step // spe
            order = batches.order(epoch)
            loss_sum, loss_n = torch.zeros((), device=session.device), 0
            while state.step < (epoch + 1) * spe and not stop:
                with chores.interrupts.deferred():  # a signal waits for the step's end: checkpoints are exact
                    loss, k = train_step(plan, state, objective, batches, order, dist.world_size)
                    stop, steps_left = time_left(session, chores.kept_back(), clock.tick())
                    advance(plan, state, math.inf if stop else steps_left)  # a stopped run resumes on its plan
                if not torch.isfinite(loss):
                    raise TrainingError(chores.diverged(f"the loss became {float(loss)}", state.step, epoch))
                loss_sum += loss
                loss_n += 1
                bar.update(1)
                if state.step % 20 == 0:
                    bar.set_postfix(loss=f"{float(loss):.2f}", epoch=epoch + 1)
                if not stop and state.step < plan.total_steps:
                    chores.between_steps(state, elapsed(), epoch_ended=state.step % spe == 0)
            train_loss = chores.log_epoch(state, loss_sum / loss_n, elapsed(), k, beta_at(plan, state.step - 1))
            bar.set_postfix(loss=f"{train_loss:.2f}", test_elbo=f"{chores.last_elbo:.2f}", epoch=epoch + 1)
        if stop:
            tqdm.write(f"stopping at the --max-time budget of {session.budget.seconds:g} s (step {state.step})")
        if plan.model.prior_fit:
            fit_prior(state.model, batches.x, plan.seed)
        state.elapsed = elapsed()
        chores.close(state)
    except KeyboardInterrupt:
        bar.close()
        chores.interrupted(state, elapsed())
        raise
    finally:
        bar.close()
    return state
