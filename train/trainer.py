"""The training loop: data order, noise and checkpoints arranged so that any run can be resumed exactly.

Batch order comes from a permutation seeded by (seed, epoch); the noise of each global batch
from generators seeded by (seed, step) (reparameterisation) and by (seed, step // a block of steps) (dynamic
binarization, drawn a block at a time: `BinarizeDraws`). A run's
whole random state is therefore its step counter, and a resumed run, or one split across
processes (see `distributed.py`), draws exactly what an uninterrupted single-process run draws.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from vaekit.runtime.bundle import sha256_file
from vaekit.runtime.errors import TargetError
from vaekit.runtime.files import check_ours, mark, staged_folder, write_json
from vaekit.runtime.run_summary import RunSummary
from vaekit.runtime.version import vaekit_version

from . import checkpoint as ckpt
from .budget import (
    CHECKPOINT_MAX_S,
    CHECKPOINT_MIN_S,
    CHECKPOINT_SHARE,
    CHORES_SHARE,
    EVAL_MIN_S,
    EVAL_SHARE,
    IMAGES_MIN_S,
    IMAGES_SHARE,
    Budget,
    Paced,
    StepClock,
)
from .config import TrainConfig, kl_warmup_for, long_run_applies, lr_for, resolve, take_long_run
from .data import Data, load_data, pixel_means
from .distributed import Distributed
from .errors import ConfigError, RunError, TrainingError
from .mlp_step import flat_gradients, mlp_step, mlp_step_applies
from .models import ModelConfig, VAEModule, build_model
from .objectives import Objective, bits_per_dim, elbo_terms, eval_chunk, nll_estimate, unit
from .optimizer import clipped_step, gradient_norm
from .plots import save_grid, save_loss_curve
from .run import HELDOUT_FILE, write_heldout

LR_FLOOR = 0.05  # the cosine schedule ends at this share of the learning rate
EVAL_SEED_OFFSET = 10_007  # the held-out evaluation's fixed noise, apart from the training streams
# Planning epochs for a --max-time budget times this many seconds of steps (at most PROBE_SHARE of the budget).
PROBE_SECONDS, PROBE_SHARE, PROBE_MAX_STEPS = 2.0, 0.01, 200
# With a time budget, planning allows this many times the epochs the measured speed fits (the schedule follows
# the clock, so the cap only matters if the machine gets much faster).
FIT_HEADROOM = 2.0
PROGRESS_EVAL_IMAGES = 1000  # held-out images of the periodic pass (the closing pass takes them all)
# The hand step (mlp_step) computes the training loss's value, which its gradients do not need, on an epoch's first
# step and every LOSS_EVERY-th: the value is 2-5% of a float32 step (README: What the recipe tried)
LOSS_EVERY = 8
# Dynamic binarization draws this many bytes (at most this many steps) at a time
BINARIZE_BLOCK_BYTES, BINARIZE_BLOCK_STEPS = 1 << 20, 16


def _generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + stream) % (2**63))
    return g


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training images in `epoch`: the same for every process and every resume."""
    return torch.randperm(n, generator=_generator(seed, epoch))


def below_255(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform draws from 0..254 as uint8: raw random bytes, each 255 (1 in 256) drawn again. Three times faster than
    `Generator.integers(0, 255, dtype=np.uint8)`, which was most of the cost of preparing a binarized batch."""
    n = math.prod(shape)
    raw = lambda k: rng.bit_generator.random_raw(-(-k // 8)).view(np.uint8)[:k]  # noqa: E731
    draws = raw(n)
    redo = np.flatnonzero(draws == 255)
    while len(redo):
        draws[redo] = raw(len(redo))
        redo = redo[draws[redo] == 255]
    return draws.reshape(shape)


def dynamic_binarize(x: torch.Tensor, draws: np.ndarray) -> torch.Tensor:
    """Binary float images from uint8 ones: a pixel of value v is 1 with probability v/255 exactly (v above its
    uniform draw from 0..254, `below_255`; numpy's PCG64 draws bytes far faster than torch draws floats)."""
    draws = torch.from_numpy(draws).to(x.device)
    return torch.lt(draws, x, out=torch.empty(x.shape, device=x.device))  # straight into float: a pass fewer


class BinarizeDraws:
    """The draws that binarize each step's batch, made for a block of steps at once (about BINARIZE_BLOCK_BYTES) by a
    PCG64 seeded with (seed, block): building a generator for every step cost a third of preparing a batch. A step's
    draws follow from its step number and the batch's shape alone, so a resumed run draws what an uninterrupted one does."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.key: tuple[int, tuple[int, ...]] | None = None  # (block, batch shape) of the draws held
        self.draws = np.empty(0, np.uint8)

    def __call__(self, step: int, batch_shape: tuple[int, ...], n: int) -> np.ndarray:
        """The draws for the first `n` images of the batch of `batch_shape` (a full batch's) at `step`."""
        steps = max(1, min(BINARIZE_BLOCK_STEPS, BINARIZE_BLOCK_BYTES // math.prod(batch_shape)))
        key = (step // steps, batch_shape)
        if key != self.key:
            rng = np.random.Generator(np.random.PCG64([self.seed, key[0]]))
            self.key, self.draws = key, below_255(rng, (steps, *batch_shape))
        return self.draws[step % steps, :n]


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when torch sees a GPU; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto, "
                            "or install a CUDA build of torch")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX) and torch may use it: False where torch's
    kernels are capped below AVX-512 (ATEN_CPU_CAPABILITY=avx2), or where torch lacks these private probes."""
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return torch.backends.cpu.get_cpu_capability() == "AVX512" and any(probe is not None and probe() for probe in probes)


def auto_precision(device_type: str, native_bf16: bool) -> tuple[str, str]:
    """The training precision `--precision auto` picks for this device, and why: bfloat16 only on a CPU with native
    bf16 (elsewhere on CPU it would be emulated and slower; CUDA keeps float32, untested here)."""
    if device_type == "cpu" and native_bf16:
        return "bfloat16", ("bfloat16: this CPU has native bf16 matmuls (avx512_bf16/AMX): about 1.3x faster steps at "
                            "equal test NLL (benchmarks/train_speed.py; README: What the recipe tried)")
    if device_type == "cpu":
        return "float32", ("float32: this CPU has no native bf16 matmuls (avx512_bf16/AMX), or torch's kernels are capped below "
                           "AVX-512 (ATEN_CPU_CAPABILITY); emulated bf16 would be slower")
    return "float32", f"float32: auto keeps float32 on {device_type} (bf16 training is not benchmarked there)"


def evaluation_images(test: np.ndarray, cfg: TrainConfig) -> torch.Tensor:
    """Held-out images, uint8 (converted to [0, 1] chunk by chunk); binarized once (to 0 and 255), with a
    fixed seed, for dynamically binarized runs."""
    x = torch.from_numpy(test)
    if cfg.binarize == "dynamic":
        x = torch.bernoulli(unit(x), generator=_generator(cfg.seed, -EVAL_SEED_OFFSET)).mul_(255).to(torch.uint8)
    return x


def heldout_nll(model: VAEModule, images: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """Per-image test NLL (-IWAE with cfg.nll_k samples) with the run's fixed evaluation noise:
    what summary.json reports, and what benchmarks/quality.py scores other models with."""
    return nll_estimate(model, images, k=cfg.nll_k, generator=_generator(cfg.seed, -2, images.device))


class StepOutcome(NamedTuple):
    """What one optimiser step reports to the loop."""

    loss: torch.Tensor | None  # the batch's loss (detached), on the steps that computed it
    norm: torch.Tensor | None  # the gradients' norm, where it was computed (clipping, or a step without the loss)
    iwae_k: int  # the samples of the bound it trained (1: the ELBO)

    @property
    def check(self) -> tuple[str, torch.Tensor]:
        """(its name, the value that is finite unless the step diverged): the loss, or where it was not computed the
        gradients' norm."""
        return ("the loss", self.loss) if self.loss is not None else ("the gradients' norm", self.norm)


@dataclass
class State:
    """Everything a run needs to continue: the model, its optimiser and schedule, and the counters."""

    model: VAEModule
    optimizer: torch.optim.Optimizer
    step: int = 0
    elapsed: float = 0.0  # training seconds of all previous sessions of this run
    progress: float = 0.0  # how far the learning-rate schedule has gone, 0 to 1 (see `Trainer.advance`)

    @cached_property
    def params(self) -> list[torch.nn.Parameter]:
        """The model's parameters, listed once: walking its modules for them takes about 20 us, every step."""
        return list(self.model.parameters())


class Trainer:
    """Trains one run; `run()` returns the run folder."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, data: Data, model_cfg: ModelConfig, dist: Distributed,
                 budget: Budget | None = None, interrupts: Interrupts | None = None):
        self.cfg, self.run_dir, self.dist = cfg, run_dir, dist
        self.budget = budget or Budget(cfg.max_time)
        self.interrupts = interrupts or Interrupts()
        self.device = select_device(cfg.device if not dist.is_cuda_rank else f"cuda:{dist.local_rank}")
        if cfg.precision == "bfloat16" and self.device.type == "cuda" and not torch.cuda.is_bf16_supported(False):
            raise ConfigError(f"--precision bfloat16: this GPU ({torch.cuda.get_device_name(self.device)}) has no native "
                              "bf16 (it needs compute capability 8.0 or newer); use --precision float32 or auto")
        self.model_cfg = model_cfg
        self.train_x = torch.from_numpy(data.train).to(self.device)  # uint8: batches are sliced, never copied per sample
        self.test_x = evaluation_images(data.test, cfg).to(self.device)
        self.mean_image = torch.from_numpy(pixel_means(data.train)).float().to(self.device)  # what fresh models start from
        self.source = data.source
        self.evaluation = Paced(EVAL_SHARE, min_s=EVAL_MIN_S)
        self.images = Paced(IMAGES_SHARE, min_s=IMAGES_MIN_S)
        self.checkpoints = Paced(CHECKPOINT_SHARE, min_s=CHECKPOINT_MIN_S, max_s=CHECKPOINT_MAX_S)
        self.writer = ckpt.CheckpointWriter(run_dir)
        self.last_eval: dict[str, Any] = {}  # the latest held-out figures, stored with each checkpoint
        self.probe_seconds: float | None = None  # seconds a step took when planning for a budget
        self.binarize_draws = BinarizeDraws(cfg.seed)

    @property
    def steps_per_epoch(self) -> int:
        """Follows the batch size, which a budgeted run may still change when it plans (`fit_epochs_to_budget`)."""
        return math.ceil(len(self.train_x) / self.cfg.batch_size)

    def by_hand(self, iwae_k: int) -> bool:
        """Whether steps with `iwae_k` samples are taken by `mlp_step` (the dense layers differentiated by hand) rather
        than autograd: follows the precision and network, which planning may still change."""
        return mlp_step_applies(self.model_cfg, self.cfg.precision, self.device, iwae_k, self.dist.world_size)

    def iwae_k_at(self, progress: float) -> int:
        """The samples of the bound a step trains at this point of the schedule: `iwae_k` from `iwae_from` on, else
        1 (the ELBO)."""
        return self.cfg.iwae_k if progress >= self.cfg.iwae_from else 1

    @property
    def total_steps(self) -> int:
        return (self.cfg.epochs or 1) * self.steps_per_epoch

    def new_state(self) -> State:
        torch.manual_seed(self.cfg.seed)  # initial weights
        model = build_model(self.model_cfg).to(self.device)
        model.fit_to_data(self.mean_image, len(self.train_x))
        # fused: one vectorised pass over each parameter per step, on CPU as on CUDA (about 4 ms a step
        # faster than foreach for a 784-400-20 MLP on a 2-core CPU; see benchmarks/train_speed.py)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True)
        return State(model, optimizer)

    def lr_at(self, progress: float) -> float:
        """The learning rate at this point of the schedule: cosine from `lr` down to 5% of it, or constant."""
        if self.cfg.schedule == "constant":
            return self.cfg.lr
        low = self.cfg.lr * LR_FLOOR
        return low + (self.cfg.lr - low) * (1 + math.cos(math.pi * min(1.0, progress))) / 2

    def advance(self, state: State, steps_left: float) -> None:
        """Move the schedule on by one of the `steps_left` steps it has left. Without a time budget that is
        the planned steps, so progress is exactly step / total steps; with one, it is also what the clock
        allows at the measured speed, so the schedule ends when the budget does however the speed changes."""
        state.progress += (1.0 - state.progress) / max(1.0, min(steps_left, self.total_steps - state.step + 1))

    def choose_precision(self) -> str:
        """Resolve `--precision auto` for this run's device (before anything times a step); returns why."""
        self.cfg.precision, why = auto_precision(self.device.type, cpu_has_native_bf16())
        return why

    def fit_epochs_to_budget(self, why: dict[str, str]) -> None:
        """With --max-time and no --epochs: time a few steps, then plan as many epochs as the rest of the budget holds,
        less the chores' share, and the learning rate and KL warm-up for that length (unless given). A run that would
        see enough images for the recipe's long-run network and batch (`long_run_applies`) takes them and is timed
        again. Records why in `why`."""
        speed, steps, seconds, fits = self.probe_fit()
        if long_run_applies(self.cfg, why, fits * len(self.train_x)):
            take_long_run(self.cfg, why)
            self.model_cfg = dataclasses.replace(self.model_cfg, hidden=self.cfg.hidden,
                                                 prior_components=self.cfg.prior_components)
            speed, steps, seconds, fits = self.probe_fit()
        kind = self.model_cfg.kind
        self.cfg.epochs = max(1, math.ceil(FIT_HEADROOM * fits))
        if self.cfg.lr is None:
            self.cfg.lr = lr_for(kind, fits * self.steps_per_epoch)
        if self.cfg.kl_warmup_epochs is None:
            self.cfg.kl_warmup_epochs = kl_warmup_for(kind, self.steps_per_epoch, fits)
        why["epochs"] = (f"fitted to --max-time {self.cfg.max_time:g}: {speed:.1f} steps/s measured over {steps} steps "
                         f"and {seconds:.1f} s left for training (after start-up and the "
                         f"chores' {CHORES_SHARE:.0%}) fit about {fits} epochs; at most {self.cfg.epochs} are allowed, as "
                         "the learning-rate schedule follows the clock and ends with the budget")

    def probe_fit(self) -> tuple[float, int, float, int]:
        """Time a few steps on a throwaway copy of the model: (steps/s, steps timed, seconds left for training after
        the chores' share, epochs they hold)."""
        chosen, limit = self.cfg.lr, min(PROBE_SECONDS, PROBE_SHARE * (self.cfg.max_time or 0))
        self.cfg.lr = chosen or lr_for(self.model_cfg.kind, 1)  # the probe's steps need a rate; their time does not depend on it
        try:
            probe = self.new_state()  # the same seed: the real state built after this is unchanged by probing
            objective = self.dist.wrap(Objective(probe.model, free_bits=self.cfg.free_bits))
            order = epoch_order(len(self.train_x), self.cfg.seed, 0)
            self.train_step(probe, objective, order)  # the first step allocates: not timed
            began, steps, done = time.perf_counter(), 0, False
            while not done:  # every rank takes the same number of steps (each one all-reduces gradients), as training does
                self.train_step(probe, objective, order, with_loss=steps % LOSS_EVERY == 0)
                steps += 1
                done = self.dist.agree(steps >= 3 and (time.perf_counter() - began >= limit or steps >= PROBE_MAX_STEPS))
        finally:
            self.cfg.lr = chosen  # None still means the recipe's rate for the planned length
        # both averaged over the ranks, so that every rank plans the same epochs (and network): they must agree
        speed = self.dist.mean(torch.tensor(steps / (time.perf_counter() - began), device=self.device))
        seconds = self.dist.mean(torch.tensor(self.budget.left() * (1 - CHORES_SHARE), device=self.device))
        self.probe_seconds = 1 / speed
        return speed, steps, seconds, max(1, int(seconds * speed / self.steps_per_epoch))

    def load_state(self, saved: dict[str, Any]) -> State:
        state = self.new_state()
        state.model.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.step, state.elapsed = int(saved["step"]), float(saved["elapsed"])
        state.progress = float(saved.get("progress", state.step / self.total_steps))  # older checkpoints: by steps
        return state

    # ----- one step -----
    def beta_at(self, step: int) -> float:
        """The KL weight: beta, reached linearly over the warm-up epochs."""
        warmup = (self.cfg.kl_warmup_epochs or 0) * self.steps_per_epoch
        return self.cfg.beta * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)

    def batch(self, order: torch.Tensor, step: int, k: int = 1) -> tuple[torch.Tensor, torch.Tensor, int]:
        """This process's share of the global batch at `step`, its noise for `k` samples each, and the global batch
        size."""
        i = step % self.steps_per_epoch
        idx = order[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]
        g = _generator(self.cfg.seed, 1_000_000 + step)
        n, d = len(idx), self.model_cfg.latent_dim
        x = self.train_x.index_select(0, idx.to(self.device))  # uint8; index_select: 3x faster than x[idx]
        if self.cfg.binarize == "dynamic":
            x = dynamic_binarize(x, self.binarize_draws(step, (self.cfg.batch_size, *x.shape[1:]), len(idx)))
        else:
            x = x.float().div_(255)
        eps = torch.randn((k, n, d) if k > 1 else (n, d), generator=g).to(self.device)
        lo, hi = self.dist.shard_bounds(n)
        return x[lo:hi], (eps[:, lo:hi] if k > 1 else eps[lo:hi]), n

    def train_step(self, state: State, objective: torch.nn.Module, order: torch.Tensor,
                   with_loss: bool = True) -> StepOutcome:
        """One optimiser step on the global batch at `state.step` (this process's share of it), and the loss of this
        process's share: always under autograd, only `with_loss` on the hand step (its gradients do not need it). The
        bound it trains follows the schedule (`iwae_k_at`)."""
        k = self.iwae_k_at(state.progress)
        x, eps, global_n = self.batch(order, state.step, k)
        by_hand = self.by_hand(k)
        if by_hand:  # the same gradients, written into the parameters' gradient buffers (see mlp_step.py)
            loss = mlp_step(state.model, x, eps, self.beta_at(state.step), self.cfg.free_bits, with_loss)
        else:
            # bfloat16: the forward pass and loss under autocast, where BCE with logits runs in float32 (keeping the
            # encoder's outputs in float32 too made no measurable difference); weights, gradients and the optimizer
            # stay float32
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bfloat16"):
                loss = objective(x, eps, self.beta_at(state.step))
            state.optimizer.zero_grad(set_to_none=True)
            # Each process averages over its share; scaling by share/global makes the averaged
            # gradient equal to the single-process gradient of the whole global batch.
            (loss * (len(x) * self.dist.world_size / global_n)).backward()
        norm = None
        if self.cfg.grad_clip or loss is None:  # without the loss, its norm tells whether the step diverged
            norm = gradient_norm(state.params, flat_gradients(state.model) if by_hand else None)
        for group in state.optimizer.param_groups:
            group["lr"] = self.lr_at(state.progress)
        clipped_step(state.optimizer, self.cfg.grad_clip, norm)
        state.step += 1
        return StepOutcome(None if loss is None else loss.detach(), norm, k)

    # ----- evaluation and outputs -----
    @torch.no_grad()
    def evaluate(self, model: VAEModule, images: torch.Tensor | None = None) -> dict[str, float]:
        """Held-out ELBO, reconstruction and KL (nats per image) with fixed noise, on `images` (default: all
        held-out images)."""
        model.eval()
        images = self.test_x if images is None else images
        g = _generator(self.cfg.seed, EVAL_SEED_OFFSET)
        sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
        for xb in images.split(eval_chunk(self.model_cfg)):
            xb = unit(xb)
            eps = torch.randn(len(xb), self.model_cfg.latent_dim, generator=g).to(self.device)
            recon, kl, _ = elbo_terms(model, xb, eps)
            sums["elbo"] += float((recon - kl).sum())
            sums["recon"] += float(-recon.sum())
            sums["kl"] += float(kl.sum())
        model.train()
        return {key: value / len(images) for key, value in sums.items()} | {"images": len(images)}

    def _decode(self, model: VAEModule, z: torch.Tensor) -> torch.Tensor:
        """The decoder's images for latents `z`, in chunks of the evaluation budget."""
        return torch.cat([model.decoder.likelihood_params(zb)["image"] for zb in z.split(eval_chunk(self.model_cfg))])

    @torch.no_grad()
    def write_images(self, model: VAEModule, epoch: int) -> None:
        model.eval()
        z = model.sample_prior(64, _generator(self.cfg.seed, -1)).to(self.device)
        samples = self._decode(model, z)
        x = unit(self.test_x[:32])
        recon = self._decode(model, model.encoder(x)[0])
        pairs = torch.stack([x, recon], 1).flatten(0, 1)  # original, reconstruction, original, ...
        save_grid(samples.cpu().numpy(), self.run_dir / f"samples_epoch{epoch:03d}.png")
        save_grid(pairs.cpu().numpy(), self.run_dir / f"recon_epoch{epoch:03d}.png")
        model.train()

    def checkpoint(self, state: State, elapsed: float, background: bool = True) -> None:
        """Save the state as it is at this step (on the main process), on the writer's thread unless `background`
        is False; the pacing learns what it cost."""
        if not self.dist.is_main:
            return
        began = time.perf_counter()
        self.writer.save({
            "model_config": self.model_cfg.to_dict(),
            "train_config": self.cfg.to_dict(),
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "progress": state.progress,
            "epoch": state.step // self.steps_per_epoch,
            "step": state.step,
            "elapsed": elapsed,
            "metrics": self.last_eval,
        }, background=background)
        self.checkpoints.ran(began, began + max(self.writer.seconds, time.perf_counter() - began))

    def _diverged_message(self, what: str, value: float, step: int, epoch: int) -> str:
        self.writer.wait()  # a checkpoint still being written is the last good one
        path = self.run_dir / ckpt.CHECKPOINT_FILE
        kept = f"the last good checkpoint ({path}) was kept" if path.exists() else "no checkpoint had been written yet"
        return (f"{what} became {value} at step {step} (epoch {epoch + 1}); training stopped and {kept}. "
                "Try a lower --lr, a smaller --grad-clip, or a --kl-warmup-epochs")

    def log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            ckpt.append_metrics(self.run_dir, record)

    # ----- chores: held-out pass, image grids, checkpoints -----
    def evaluate_now(self, state: State, closing: bool = False) -> None:
        """The held-out pass: on the first PROGRESS_EVAL_IMAGES held-out images while training (cheap, so it can run
        often), on all of them when training closes (the figures summary.json reports). Its record says what it
        cost (`seconds`)."""
        began = time.perf_counter()
        images = self.test_x if closing else self.test_x[:PROGRESS_EVAL_IMAGES]
        metrics = self.evaluate(state.model, images)
        self.evaluation.ran(began, time.perf_counter())
        self.last_eval = {"kind": "eval", "epoch": round(state.step / self.steps_per_epoch, 3), "step": state.step,
                          **metrics, "seconds": self.evaluation.cost}
        self.log(self.last_eval)

    def images_now(self, state: State) -> None:
        began = time.perf_counter()
        self.write_images(state.model, math.ceil(state.step / self.steps_per_epoch))
        self.images.ran(began, time.perf_counter())

    def chores(self, state: State, elapsed: float, epoch_ended: bool) -> None:
        """Run the chores that are due after this step (on the main process: they write its outputs)."""
        if not self.dist.is_main:
            return
        now = time.perf_counter()
        if self.evaluation.due(now):
            self.evaluate_now(state)
        every = self.cfg.images_every
        if (epoch_ended and state.step // self.steps_per_epoch % every == 0) if every else self.images.due(now):
            self.images_now(state)
        if self.checkpoints.due(now):
            self.checkpoint(state, elapsed)

    def time_left(self, step_seconds: float) -> tuple[bool, float]:
        """(stop now, steps the budget still holds at `step_seconds` a step): the same on every process. The
        closing grids and checkpoint are kept back; without a budget, (False, infinity)."""
        if self.cfg.max_time is None:
            return False, math.inf
        left = self.budget.left() - self.images.cost - self.writer.seconds
        return self.dist.agree_min(left <= 0, left / step_seconds)

    def log_epoch(self, state: State, mean_loss: torch.Tensor, elapsed: float, iwae_k: int) -> float:
        """The `train` record of the epoch (or part of one) that just ended, whose last step trained the bound with
        `iwae_k` samples; returns its mean loss over all ranks (of the steps that computed it: all under autograd,
        every LOSS_EVERY-th on the hand step)."""
        loss = self.dist.mean(mean_loss)
        self.log({"kind": "train", "epoch": round(state.step / self.steps_per_epoch, 3), "step": state.step, "loss": loss,
                  "iwae_k": iwae_k, "lr": state.optimizer.param_groups[0]["lr"], "beta": self.beta_at(state.step - 1),
                  "time": elapsed})
        return loss

    # ----- the loop -----
    def run(self, state: State) -> State:
        """Train until the epochs or the time budget run out, with the chores paced to their share of the clock;
        checkpoint at the end, and on Ctrl-C or SIGTERM."""
        cfg, spe = self.cfg, self.steps_per_epoch
        objective = self.dist.wrap(Objective(state.model, free_bits=cfg.free_bits))
        start, start_elapsed = time.perf_counter(), state.elapsed
        elapsed = lambda: start_elapsed + time.perf_counter() - start  # noqa: E731
        clock = StepClock(self.probe_seconds)
        for chore in (self.evaluation, self.images, self.checkpoints):
            chore.last = clock.last  # the first of each comes after its minimum interval, not at the first step
        bar = tqdm(total=self.total_steps, initial=state.step, unit="step", disable=not (cfg.progress and self.dist.is_main),
                   desc="training", dynamic_ncols=True)
        state.model.train()
        stop = False
        try:
            while state.step < self.total_steps and not stop:
                epoch = state.step // spe
                order = epoch_order(len(self.train_x), cfg.seed, epoch)
                loss_sum, loss_n = torch.zeros((), device=self.device), 0
                while state.step < (epoch + 1) * spe and not stop:
                    with self.interrupts.deferred():
                        outcome = self.train_step(state, objective, order,
                                                  with_loss=loss_n == 0 or state.step % LOSS_EVERY == 0)
                        stop, steps_left = self.time_left(clock.tick())
                        self.advance(state, math.inf if stop else steps_left)  # a stopped run resumes on its planned steps
                    what, value = outcome.check
                    if not torch.isfinite(value):
                        raise TrainingError(self._diverged_message(what, float(value), state.step, epoch))
                    if outcome.loss is not None:
                        loss_sum += outcome.loss
                        loss_n += 1
                        shown = outcome.loss
                    bar.update(1)
                    if state.step % 20 == 0:
                        bar.set_postfix(loss=f"{float(shown):.2f}", epoch=epoch + 1)
                    if not stop and state.step < self.total_steps:
                        self.chores(state, elapsed(), epoch_ended=state.step % spe == 0)
                train_loss = self.log_epoch(state, loss_sum / max(1, loss_n), elapsed(), outcome.iwae_k)
                bar.set_postfix(loss=f"{train_loss:.2f}", test_elbo=f"{self.last_eval.get('elbo', math.nan):.2f}", epoch=epoch + 1)
            if stop:
                tqdm.write(f"stopping at the --max-time budget of {cfg.max_time:g} s (step {state.step})")
            state.elapsed = elapsed()  # the budget stops here: the closing evaluation is the final one's first part
            if self.dist.is_main:
                self.images_now(state)
                self.evaluate_now(state, closing=True)
            self.checkpoint(state, state.elapsed, background=False)
        except KeyboardInterrupt:
            self.checkpoint(state, elapsed(), background=False)
            bar.close()
            tqdm.write(f"interrupted: saved {self.run_dir / ckpt.CHECKPOINT_FILE} at step {state.step}; "
                       f"continue with: vaekit-train --resume {self.run_dir}")
            raise
        finally:
            bar.close()
        return state

    def finish(self, state: State) -> RunSummary | None:
        """The final test NLL estimate, the loss curve and summary.json (on the main process; None elsewhere)."""
        if not self.dist.is_main:
            return None
        state.model.eval()
        n = min(self.cfg.nll_images, len(self.test_x))
        t0 = time.perf_counter()
        nll = heldout_nll(state.model, self.test_x[:n], self.cfg)
        final = self.last_eval  # the held-out pass that closed training
        heldout = self.run_dir / HELDOUT_FILE
        summary = RunSummary(
            run=str(self.run_dir.resolve()), data=self.source, epochs=state.step / self.steps_per_epoch,
            steps=state.step, wall_time_s=state.elapsed,
            metrics={"test_elbo": final["elbo"], "test_recon": final["recon"], "test_kl": final["kl"]},
            test_nll=float(nll.mean()), test_nll_k=self.cfg.nll_k, test_nll_images=n,
            test_bits_per_dim=bits_per_dim(float(nll.mean()), self.model_cfg.image_shape),
            test_nll_time_s=time.perf_counter() - t0, binarized=self.cfg.binarize == "dynamic",
            heldout_images=len(np.load(heldout, mmap_mode="r")), heldout_sha256=sha256_file(heldout),
            vaekit_version=vaekit_version(),
        )
        self.log({"kind": "final", **summary.to_dict()})
        write_json(self.run_dir / ckpt.SUMMARY_FILE, summary.to_dict(), strict=False)
        save_loss_curve(ckpt.read_metrics(self.run_dir), self.run_dir / "loss_curve.png")
        return summary


def prepare_run_dir(cfg: TrainConfig, dist: Distributed) -> Path:
    """The run folder: a new one, marked as a run (refusing to overwrite without --force). With --force, only a run
    folder that vaekit wrote is replaced (`check_ours`: never the data, `.` or another folder of the user's), by
    staging a new folder beside it and swapping it in; called before the data loads, so that a refusal comes first."""
    out = Path(cfg.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if dist.is_main:
        if (out.exists() or out.is_symlink()) and not cfg.force and not (out.is_dir() and not any(out.iterdir())):
            raise RunError(f"run folder {str(out)!r} already exists; pass --force to replace it, "
                           f"--resume {out} to continue it, or another --out")
        try:
            check_ours(out, "run")
            if out.is_dir() and not any(out.iterdir()):
                mark(out, "run")  # an empty folder is used as it is
            else:
                with staged_folder(out, lambda existing: check_ours(existing, "run"), kind="run"):
                    pass
        except TargetError as e:
            raise RunError(str(e)) from None
    dist.barrier()
    return out


class Interrupts:
    """Ctrl-C and a plain `kill` (SIGINT, SIGTERM) stop training as KeyboardInterrupt. Within a step they wait
    for its end, so that the checkpoint written on the way out is exactly at a step boundary (weights,
    optimizer, step and schedule agree) and resuming from it equals an uninterrupted run."""

    def __init__(self) -> None:
        self.deferring = self.pending = False

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.deferring:
            raise KeyboardInterrupt
        self.pending = True

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
            yield
            return
        previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """A stretch (one training step) that an interrupt does not cut: it is raised when the stretch ends."""
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


def train(config: TrainConfig | dict[str, Any], resume: str | Path | None = None, *,
          started: float | None = None) -> RunSummary | None:
    """Train a VAE as `config` says (or continue the run in `resume`). `started` is when the command began (a
    `time.perf_counter()` reading; default now): `max_time` counts from it. Returns the run's summary (its `run`
    is the folder), or None on the processes of a torchrun job other than the first."""
    started = time.perf_counter() if started is None else started
    dist = Distributed.from_env()
    interrupts = Interrupts()
    try:
        with interrupts.installed():
            return _train(config, resume, started, dist, interrupts)
    finally:
        dist.close()


def _train(config: TrainConfig | dict[str, Any], resume: str | Path | None, started: float,
           dist: Distributed, interrupts: Interrupts) -> RunSummary | None:
    if resume is not None:
        saved = ckpt.load_checkpoint(resume)
        cfg = TrainConfig.from_dict(saved["train_config"])
        # a run from before an option goes on as it was built: the standard normal prior, inputs not centred, the
        # bound it was given over the whole run
        for key, before in (("prior_components", 0), ("center_inputs", False), ("iwae_from", 0.0)):
            if getattr(cfg, key) is None:
                setattr(cfg, key, saved["model_config"].get(key, before))
        run_dir = Path(resume)
        # a resumed run goes on to its epochs; only a --max-time given now limits it (counted from now)
        cfg.max_time = config.max_time if isinstance(config, TrainConfig) else config.get("max_time")
        cfg.precision = cfg.precision or "float32"  # runs from before --precision trained in float32
    else:
        cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
        cfg.validate()
        saved = None
    if saved is None:
        run_dir = prepare_run_dir(cfg, dist)
    data = load_data(cfg.data, image_size=cfg.image_size, channels=cfg.channels,
                     test_fraction=cfg.test_fraction, seed=cfg.seed, skip_bad_images=cfg.skip_bad_images,
                     progress=cfg.progress)
    for bad in data.skipped:
        tqdm.write(f"skipped unreadable image: {bad}")
    cfg, model_cfg, why = resolve(cfg, data.image_shape, len(data.train))
    if saved is None and dist.is_main:
        write_heldout(run_dir, data.test)  # export reads these, never the data source
    trainer = Trainer(cfg, run_dir, data, model_cfg, dist, Budget(cfg.max_time, started), interrupts)
    if saved is None:
        if cfg.precision is None:
            why["precision"] = trainer.choose_precision()
        if cfg.epochs is None:
            trainer.fit_epochs_to_budget(why)
        if dist.is_main:
            write_json(run_dir / ckpt.CONFIG_FILE, {"model": trainer.model_cfg.to_dict(), "train": cfg.to_dict(), "why": why,
                                                    "vaekit_version": vaekit_version()})
    state = trainer.load_state(saved) if saved is not None else trainer.new_state()
    state = trainer.run(state)
    summary = trainer.finish(state)
    dist.barrier()
    return summary
