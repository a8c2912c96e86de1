"""What the loop does between steps, paced to a share of the clock (`budget.py`): held-out passes, image grids,
checkpoints and the metrics log; Ctrl-C and SIGTERM; and, once training ends, the final test NLL estimate (sized to
its share of the run) and summary.json. Only the main process writes.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vaekit.runtime.bundle import sha256_file
from vaekit.runtime.files import write_json
from vaekit.runtime.run_summary import RunSummary
from vaekit.runtime.version import vaekit_version

from . import checkpoint as ckpt
from . import rng
from .budget import (
    CHECKPOINT_MAX_S,
    CHECKPOINT_MIN_S,
    CHECKPOINT_SHARE,
    EVAL_MIN_S,
    EVAL_SHARE,
    IMAGES_MIN_S,
    IMAGES_SHARE,
    NLL_SHARE,
    Budget,
    Paced,
)
from .distributed import Distributed
from .models import VAEModule
from .objectives import bits_per_dim, elbo_terms, eval_chunk, nll_estimate, unit
from .plan import NLL_IMAGES, NLL_K, NLL_MIN_IMAGES, Plan
from .plots import save_grid, save_loss_curve
from .run import HELDOUT_FILE

if TYPE_CHECKING:
    from .loop import State

PROGRESS_EVAL_IMAGES = 1000  # held-out images of the periodic pass (the closing pass takes them all)
NLL_PROBE_IMAGES, NLL_PROBE_K = 16, 64  # what timing the final estimate's cost takes


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


def heldout_images(test: np.ndarray, binarize: str, seed: int) -> torch.Tensor:
    """Held-out images, uint8 (converted to [0, 1] chunk by chunk); binarized once (to 0 and 255) from the
    HELDOUT_BINARIZE stream for dynamically binarized runs."""
    x = torch.from_numpy(test)
    if binarize == "dynamic":
        g = rng.generator(seed, rng.Stream.HELDOUT_BINARIZE)
        x = torch.bernoulli(unit(x), generator=g).mul_(255).to(torch.uint8)
    return x


def heldout_nll(model: VAEModule, images: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Per-image test NLL (-IWAE with k samples) from the NLL stream: what summary.json reports, and what
    benchmarks/quality.py scores other models with."""
    return nll_estimate(model, images, k=k, generator=rng.generator(seed, rng.Stream.NLL, device=images.device))


def nll_cost(model: VAEModule, images: torch.Tensor, seed: int) -> float:
    """Seconds per image and sample of the final estimate, timed on a few images with a few samples (which pay the
    fixed costs a larger estimate spreads thinner: an upper bound)."""
    x = images[:NLL_PROBE_IMAGES]
    began = time.perf_counter()
    nll_estimate(model, x, k=NLL_PROBE_K, generator=rng.generator(seed, rng.Stream.NLL, 1, device=x.device))
    return (time.perf_counter() - began) / (len(x) * NLL_PROBE_K)


def nll_size(seconds: float, cost: float, available: int, k: int | None, images: int | None) -> tuple[int, int]:
    """(k, images) of an estimate that takes at most about `seconds` at `cost` seconds per image and sample: k=NLL_K
    on up to NLL_IMAGES images while that fits, else fewer images down to NLL_MIN_IMAGES, then fewer samples (at least
    one). A `k` or `images` the user gave is kept as it is, and the other is fitted around it."""
    samples = max(0.0, seconds) / cost
    if images is None:
        fitted = int(samples / (k or NLL_K))  # the images that k samples each (NLL_K unless given) fit
        images = min(NLL_IMAGES, max(1 if k else NLL_MIN_IMAGES, fitted))
    images = min(images, available)
    if k is None:
        k = int(min(NLL_K, max(1.0, samples / images)))
    return k, images


def estimate_subset(available: int, n: int, seed: int) -> torch.Tensor:
    """Which `n` of the held-out images the final estimate takes: a random subset (the NLL stream), not the first n,
    as a held-out set may be sorted (by class, by source photo) and its first images need not be typical."""
    if n >= available:
        return torch.arange(available)
    return torch.randperm(available, generator=rng.generator(seed, rng.Stream.NLL, 2))[:n].sort().values


@torch.no_grad()
def evaluate(model: VAEModule, images: torch.Tensor, seed: int) -> dict[str, float]:
    """Held-out ELBO, reconstruction and KL (nats per image) on `images`, with the HELDOUT_NOISE stream."""
    model.eval()
    g = rng.generator(seed, rng.Stream.HELDOUT_NOISE)
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
    for xb in images.split(eval_chunk(model.config)):
        xb = unit(xb)
        eps = torch.randn(len(xb), model.config.latent_dim, generator=g).to(xb.device)
        recon, kl, _ = elbo_terms(model, xb, eps)
        sums["elbo"] += float((recon - kl).sum())
        sums["recon"] += float(-recon.sum())
        sums["kl"] += float(kl.sum())
    model.train()
    return {key: value / len(images) for key, value in sums.items()} | {"images": len(images)}


@torch.no_grad()
def write_grids(model: VAEModule, images: torch.Tensor, run_dir: Path, epoch: int, seed: int) -> None:
    """samples_epochNNN.png (64 draws from the prior, the GRIDS stream) and recon_epochNNN.png (32 held-out images,
    each beside its reconstruction)."""
    model.eval()
    decode = lambda z: torch.cat([model.decoder.likelihood_params(zb)["image"]  # noqa: E731
                                  for zb in z.split(eval_chunk(model.config))])
    samples = decode(model.sample_prior(64, rng.generator(seed, rng.Stream.GRIDS)).to(images.device))
    x = unit(images[:32])
    pairs = torch.stack([x, decode(model.encoder(x)[0])], 1).flatten(0, 1)  # original, reconstruction, ...
    save_grid(samples.cpu().numpy(), run_dir / f"samples_epoch{epoch:03d}.png")
    save_grid(pairs.cpu().numpy(), run_dir / f"recon_epoch{epoch:03d}.png")
    model.train()


class Chores:
    """The run's outputs besides the weights' updates: each chore runs when due (`Paced`), on the main process."""

    def __init__(self, plan: Plan, run_dir: Path, test: np.ndarray, source: str, dist: Distributed,
                 device: torch.device, budget: Budget, interrupts: Interrupts) -> None:
        self.plan, self.run_dir, self.source, self.dist, self.interrupts = plan, run_dir, source, dist, interrupts
        self.budget = budget
        self.test_x = heldout_images(test, plan.binarize, plan.seed).to(device)
        self.evaluation = Paced(EVAL_SHARE, min_s=EVAL_MIN_S)
        self.grids = Paced(IMAGES_SHARE, min_s=IMAGES_MIN_S)
        self.checkpoints = Paced(CHECKPOINT_SHARE, min_s=CHECKPOINT_MIN_S, max_s=CHECKPOINT_MAX_S)
        self.writer = ckpt.CheckpointWriter(run_dir)
        self.last_eval: dict[str, Any] = {}  # the latest held-out figures, stored with each checkpoint

    @property
    def last_elbo(self) -> float:
        return self.last_eval.get("elbo", math.nan)

    def start(self, now: float) -> None:
        """The first of each chore comes after its minimum interval from `now`, not at the first step."""
        for chore in (self.evaluation, self.grids, self.checkpoints):
            chore.last = now

    def kept_back(self) -> float:
        """Seconds of the budget that what follows training needs: the closing grids, held-out pass (on every
        held-out image) and checkpoint, and the final estimate's share."""
        closing_pass = self.evaluation.cost * len(self.test_x) / min(len(self.test_x), PROGRESS_EVAL_IMAGES)
        return self.grids.cost + closing_pass + self.writer.seconds + NLL_SHARE * (self.budget.seconds or 0)

    def log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            ckpt.append_metrics(self.run_dir, record)

    def log_epoch(self, state: State, mean_loss: torch.Tensor, elapsed: float, iwae_k: int, beta: float) -> float:
        """The `train` record of the epoch (or part of one) that just ended, whose last step trained the bound with
        `iwae_k` samples and KL weight `beta`; returns its mean loss over all ranks."""
        loss = self.dist.mean(mean_loss)
        self.log({"kind": "train", "epoch": round(state.step / self.plan.steps_per_epoch, 3), "step": state.step,
                  "loss": loss, "iwae_k": iwae_k, "lr": state.optimizer.param_groups[0]["lr"],
                  "beta": beta, "time": elapsed})
        return loss

    def between_steps(self, state: State, elapsed: float, epoch_ended: bool) -> None:
        """Run the chores that are due after this step."""
        if not self.dist.is_main:
            return
        now, every = time.perf_counter(), self.plan.images_every
        if self.evaluation.due(now):
            self.evaluate_now(state)
        if (epoch_ended and state.step // self.plan.steps_per_epoch % every == 0) if every else self.grids.due(now):
            self.grids_now(state)
        if self.checkpoints.due(now):
            self.checkpoint(state, elapsed)

    def evaluate_now(self, state: State, closing: bool = False) -> None:
        """The held-out pass: on the first PROGRESS_EVAL_IMAGES held-out images while training (cheap, so it can run
        often), on all of them when training closes (the figures summary.json reports). Its record says what it
        cost (`seconds`)."""
        began = time.perf_counter()
        images = self.test_x if closing else self.test_x[:PROGRESS_EVAL_IMAGES]
        metrics = evaluate(state.model, images, self.plan.seed)
        self.evaluation.ran(began, time.perf_counter())
        self.last_eval = {"kind": "eval", "epoch": round(state.step / self.plan.steps_per_epoch, 3),
                          "step": state.step, **metrics, "seconds": self.evaluation.cost}
        self.log(self.last_eval)

    def grids_now(self, state: State) -> None:
        """The image grids and the loss curve so far (one paced chore: its cost is kept back from the budget)."""
        began = time.perf_counter()
        epoch = math.ceil(state.step / self.plan.steps_per_epoch)
        write_grids(state.model, self.test_x, self.run_dir, epoch, self.plan.seed)
        save_loss_curve(ckpt.read_metrics(self.run_dir), self.run_dir / "loss_curve.png")
        self.grids.ran(began, time.perf_counter())

    def checkpoint(self, state: State, elapsed: float, background: bool = True) -> None:
        """Save the state as it is at this step, with the plan (a resume reads it back), on the writer's thread
        unless `background` is False; the pacing learns what it cost."""
        if not self.dist.is_main:
            return
        began, plan = time.perf_counter(), self.plan.to_dict()
        self.writer.save({
            "plan": plan, "model_config": plan["model"], "train_config": plan["train"],  # load_run reads these two
            "model": state.model.state_dict(), "optimizer": state.optimizer.state_dict(),
            "progress": state.progress, "epoch": state.step // self.plan.steps_per_epoch, "step": state.step,
            "elapsed": elapsed, "metrics": self.last_eval,
        }, background=background)
        self.checkpoints.ran(began, began + max(self.writer.seconds, time.perf_counter() - began))

    def diverged(self, what: str, step: int, epoch: int) -> str:
        """The message for a run whose loss stopped being finite; the last good checkpoint is kept."""
        self.writer.wait()  # a checkpoint still being written is the last good one
        path = self.run_dir / ckpt.CHECKPOINT_FILE
        kept = f"the last good checkpoint ({path}) was kept" if path.exists() else "no checkpoint had been written yet"
        return (f"{what} at step {step} (epoch {epoch + 1}); training stopped and {kept}. "
                "Try a lower --lr, a smaller --grad-clip, or a --kl-warmup-epochs")

    def close(self, state: State) -> None:
        """When training ends: the closing held-out pass (on every held-out image), the last grids and loss curve,
        and the checkpoint."""
        if self.dist.is_main:
            self.evaluate_now(state, closing=True)
            self.grids_now(state)
        self.checkpoint(state, state.elapsed, background=False)

    def interrupted(self, state: State, elapsed: float) -> None:
        """On Ctrl-C or SIGTERM: save exactly at this step and say how to go on."""
        self.checkpoint(state, elapsed, background=False)
        tqdm.write(f"interrupted: saved {self.run_dir / ckpt.CHECKPOINT_FILE} at step {state.step}; "
                   f"continue with: vaekit-train --resume {self.run_dir}")

    def finish(self, state: State) -> RunSummary | None:
        """The final test NLL estimate (sized to at most NLL_SHARE of the budget, or of the training time:
        `nll_size`) and summary.json (on the main process; None elsewhere)."""
        if not self.dist.is_main:
            return None
        state.model.eval()
        began, budget = time.perf_counter(), self.budget
        share = NLL_SHARE * state.elapsed if budget.seconds is None else min(NLL_SHARE * budget.seconds, budget.left())
        cost = nll_cost(state.model, self.test_x, self.plan.seed)
        k, n = nll_size(share - (time.perf_counter() - began), cost, len(self.test_x), self.plan.nll_k,
                        self.plan.nll_images)
        nlls = heldout_nll(state.model, self.test_x[estimate_subset(len(self.test_x), n, self.plan.seed)], k, self.plan.seed)
        nll = float(nlls.mean())
        final, heldout = self.last_eval, self.run_dir / HELDOUT_FILE  # the held-out pass that closed training
        summary = RunSummary(
            run=str(self.run_dir.resolve()), data=self.source, epochs=state.step / self.plan.steps_per_epoch,
            steps=state.step, wall_time_s=state.elapsed,
            metrics={"test_elbo": final["elbo"], "test_recon": final["recon"], "test_kl": final["kl"]},
            test_nll=nll, test_nll_k=k, test_nll_images=n,
            test_nll_stderr=float(nlls.std() / math.sqrt(n)) if n > 1 else None,
            test_bits_per_dim=bits_per_dim(nll, self.plan.model.image_shape),
            test_nll_time_s=time.perf_counter() - began, binarized=self.plan.binarize == "dynamic",
            heldout_images=len(np.load(heldout, mmap_mode="r")), heldout_sha256=sha256_file(heldout),
            vaekit_version=vaekit_version(),
        )
        self.log({"kind": "final", **summary.to_dict()})
        write_json(self.run_dir / ckpt.SUMMARY_FILE, summary.to_dict(), strict=False)
        return summary
