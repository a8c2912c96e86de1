"""The training loop: data order, noise and checkpoints arranged so that any run can be resumed exactly.

Batch order comes from a permutation seeded by (seed, epoch); the noise of each global batch
(reparameterisation and dynamic binarization) from a generator seeded by (seed, step). A run's
whole random state is therefore its step counter, and a resumed run, or one split across
processes (see `distributed.py`), draws exactly what an uninterrupted single-process run draws.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from vaekit.runtime.bundle import sha256_file
from vaekit.runtime.files import write_json
from vaekit.runtime.run_summary import RunSummary
from vaekit.runtime.version import vaekit_version

from . import checkpoint as ckpt
from .config import TrainConfig, resolve
from .data import Data, load_data
from .distributed import Distributed
from .errors import RunError, TrainingError
from .models import ModelConfig, VAEModule, build_model
from .objectives import Objective, bits_per_dim, elbo_terms, eval_chunk, nll_estimate, unit
from .plots import save_grid, save_loss_curve
from .run import HELDOUT_FILE, write_heldout

EVAL_SEED_OFFSET = 10_007  # the held-out evaluation's fixed noise, apart from the training streams


def _generator(seed: int, stream: int, device: torch.device | str = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + stream) % (2**63))
    return g


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the training images in `epoch`: the same for every process and every resume."""
    return torch.randperm(n, generator=_generator(seed, epoch))


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when torch sees a GPU; asking for CUDA without one is an error, not a fallback."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for but torch sees no CUDA GPU; use --device cpu or auto, "
                            "or install a CUDA build of torch")
    return torch.device(name)


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


@dataclass
class State:
    """Everything a run needs to continue: the model, its optimiser and schedule, and the counters."""

    model: VAEModule
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0
    elapsed: float = 0.0  # training seconds of all previous sessions of this run


class Trainer:
    """Trains one run; `run()` returns the run folder."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, data: Data, model_cfg: ModelConfig, dist: Distributed):
        self.cfg, self.run_dir, self.dist = cfg, run_dir, dist
        self.device = select_device(cfg.device if not dist.is_cuda_rank else f"cuda:{dist.local_rank}")
        self.model_cfg = model_cfg
        self.train_x = torch.from_numpy(data.train).to(self.device)  # uint8: batches are sliced, never copied per sample
        self.test_x = evaluation_images(data.test, cfg).to(self.device)
        self.steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.source = data.source

    def new_state(self) -> State:
        torch.manual_seed(self.cfg.seed)  # initial weights
        model = build_model(self.model_cfg).to(self.device)
        # fused: one vectorised pass over each parameter per step, on CPU as on CUDA (about 4 ms a step
        # faster than foreach for a 784-400-20 MLP on a 2-core CPU; see benchmarks/train_speed.py)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay, fused=True)
        if self.cfg.schedule == "cosine":
            scheduler: Any = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, self.total_steps), eta_min=self.cfg.lr * 0.05)
        else:
            scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        return State(model, optimizer, scheduler)

    def load_state(self, saved: dict[str, Any]) -> State:
        state = self.new_state()
        state.model.load_state_dict(saved["model"])
        state.optimizer.load_state_dict(saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        state.step, state.elapsed = int(saved["step"]), float(saved["elapsed"])
        return state

    # ----- one step -----
    def beta_at(self, step: int) -> float:
        """The KL weight: beta, reached linearly over the warm-up epochs."""
        warmup = (self.cfg.kl_warmup_epochs or 0) * self.steps_per_epoch
        return self.cfg.beta * (min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0)

    def batch(self, order: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """This process's share of the global batch at `step`, its noise, and the global batch size."""
        i = step % self.steps_per_epoch
        idx = order[i * self.cfg.batch_size : (i + 1) * self.cfg.batch_size]
        g = _generator(self.cfg.seed, 1_000_000 + step)
        n, d, k = len(idx), self.model_cfg.latent_dim, self.cfg.iwae_k
        x = self.train_x.index_select(0, idx.to(self.device)).float().div_(255)  # index_select: 3x faster than x[idx]
        if self.cfg.binarize == "dynamic":
            x = (torch.rand(x.shape, generator=g).to(self.device) < x).float()
        eps = torch.randn((k, n, d) if k > 1 else (n, d), generator=g).to(self.device)
        lo, hi = self.dist.shard_bounds(n)
        return x[lo:hi], (eps[:, lo:hi] if k > 1 else eps[lo:hi]), n

    def train_step(self, state: State, objective: torch.nn.Module, order: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimiser step on the global batch at `state.step` (this process's share of it)."""
        x, eps, global_n = self.batch(order, state.step)
        loss, parts = objective(x, eps, self.beta_at(state.step))
        # Each process averages over its share; scaling by share/global makes the averaged
        # gradient equal to the single-process gradient of the whole global batch.
        loss = loss * (len(x) * self.dist.world_size / global_n)
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(state.model.parameters(), self.cfg.grad_clip)
        state.optimizer.step()
        state.scheduler.step()
        state.step += 1
        return parts

    # ----- evaluation and outputs -----
    @torch.no_grad()
    def evaluate(self, model: VAEModule) -> dict[str, float]:
        """Held-out ELBO, reconstruction and KL (nats per image) with fixed noise."""
        model.eval()
        g = _generator(self.cfg.seed, EVAL_SEED_OFFSET)
        sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
        for xb in self.test_x.split(eval_chunk(self.model_cfg)):
            xb = unit(xb)
            eps = torch.randn(len(xb), self.model_cfg.latent_dim, generator=g).to(self.device)
            recon, kl_dims, _ = elbo_terms(model, xb, eps)
            kl = kl_dims.sum(1)
            sums["elbo"] += float((recon - kl).sum())
            sums["recon"] += float(-recon.sum())
            sums["kl"] += float(kl.sum())
        model.train()
        return {key: value / len(self.test_x) for key, value in sums.items()}

    def _decode(self, model: VAEModule, z: torch.Tensor) -> torch.Tensor:
        """The decoder's images for latents `z`, in chunks of the evaluation budget."""
        return torch.cat([model.decoder.likelihood_params(zb)["image"] for zb in z.split(eval_chunk(self.model_cfg))])

    @torch.no_grad()
    def write_images(self, model: VAEModule, epoch: int) -> None:
        model.eval()
        z = torch.randn(64, self.model_cfg.latent_dim, generator=_generator(self.cfg.seed, -1)).to(self.device)
        samples = self._decode(model, z)
        x = unit(self.test_x[:32])
        recon = self._decode(model, model.encoder(x)[0])
        pairs = torch.stack([x, recon], 1).flatten(0, 1)  # original, reconstruction, original, ...
        save_grid(samples.cpu().numpy(), self.run_dir / f"samples_epoch{epoch:03d}.png")
        save_grid(pairs.cpu().numpy(), self.run_dir / f"recon_epoch{epoch:03d}.png")
        model.train()

    def checkpoint(self, state: State, epoch_done: int, metrics: dict[str, Any], elapsed: float) -> None:
        if not self.dist.is_main:
            return
        ckpt.save_checkpoint(self.run_dir, {
            "model_config": self.model_cfg.to_dict(),
            "train_config": self.cfg.to_dict(),
            "model": state.model.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "epoch": epoch_done,
            "step": state.step,
            "elapsed": elapsed,
            "metrics": metrics,
        })

    def _diverged_message(self, loss: float, step: int, epoch: int) -> str:
        path = self.run_dir / ckpt.CHECKPOINT_FILE
        kept = f"the last good checkpoint ({path}) was kept" if path.exists() else "no checkpoint had been written yet"
        return (f"the loss became {loss} at step {step} (epoch {epoch + 1}); training stopped and {kept}. "
                "Try a lower --lr, a smaller --grad-clip, or a --kl-warmup-epochs")

    def log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            ckpt.append_metrics(self.run_dir, record)

    # ----- the loop -----
    def run(self, state: State) -> State:
        """Train until the epochs or the time budget run out; checkpoint every epoch and on Ctrl-C."""
        cfg = self.cfg
        objective = self.dist.wrap(Objective(state.model, free_bits=cfg.free_bits, iwae_k=cfg.iwae_k))
        start, start_elapsed = time.perf_counter(), state.elapsed
        elapsed = lambda: start_elapsed + time.perf_counter() - start  # noqa: E731
        last_eval: dict[str, Any] = {}
        bar = tqdm(total=self.total_steps, initial=state.step, unit="step", disable=not (cfg.progress and self.dist.is_main),
                   desc="training", dynamic_ncols=True)
        state.model.train()
        try:
            while state.step < self.total_steps:
                epoch = state.step // self.steps_per_epoch
                order = epoch_order(len(self.train_x), cfg.seed, epoch)
                loss_sum, loss_n = torch.zeros((), device=self.device), 0
                while state.step < (epoch + 1) * self.steps_per_epoch:
                    parts = self.train_step(state, objective, order)
                    if not torch.isfinite(parts["loss"]):
                        raise TrainingError(self._diverged_message(float(parts["loss"]), state.step, epoch))
                    loss_sum += parts["loss"]
                    loss_n += 1
                    bar.update(1)
                    if state.step % 20 == 0:
                        bar.set_postfix(loss=f"{float(parts['loss']):.2f}", epoch=epoch + 1)
                    if cfg.max_time and self.dist.agree(elapsed() >= cfg.max_time):
                        break
                epoch_done = state.step // self.steps_per_epoch
                train_loss = self.dist.mean(loss_sum / max(1, loss_n))
                self.log({"kind": "train", "epoch": epoch + 1, "step": state.step, "loss": train_loss,
                          "lr": state.scheduler.get_last_lr()[0], "beta": self.beta_at(state.step - 1), "time": elapsed()})
                last_eval = {"kind": "eval", "epoch": epoch + 1, "step": state.step, **self.evaluate(state.model)}
                self.log(last_eval)
                if self.dist.is_main and (epoch_done % cfg.images_every == 0 or state.step >= self.total_steps):
                    self.write_images(state.model, epoch + 1)
                self.checkpoint(state, epoch_done, last_eval, elapsed())
                bar.set_postfix(loss=f"{train_loss:.2f}", test_elbo=f"{last_eval['elbo']:.2f}", epoch=epoch + 1)
                if cfg.max_time and self.dist.agree(elapsed() >= cfg.max_time):
                    tqdm.write(f"stopping at the --max-time budget of {cfg.max_time:g} s (step {state.step})")
                    break
        except KeyboardInterrupt:
            self.checkpoint(state, state.step // self.steps_per_epoch, last_eval, elapsed())
            bar.close()
            tqdm.write(f"interrupted: saved {self.run_dir / ckpt.CHECKPOINT_FILE} at step {state.step}; "
                       f"continue with: vaekit-train --resume {self.run_dir}")
            raise
        finally:
            bar.close()
        state.elapsed = elapsed()
        return state

    def finish(self, state: State) -> RunSummary | None:
        """The final test NLL estimate, the loss curve and summary.json (on the main process; None elsewhere)."""
        if not self.dist.is_main:
            return None
        state.model.eval()
        n = min(self.cfg.nll_images, len(self.test_x))
        t0 = time.perf_counter()
        nll = heldout_nll(state.model, self.test_x[:n], self.cfg)
        final = self.evaluate(state.model)
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
    """The run folder: a new one (refusing to overwrite without --force)."""
    out = Path(cfg.out or Path("runs") / time.strftime("%Y%m%d-%H%M%S"))
    if dist.is_main:
        if out.exists() and any(out.iterdir()):
            if not cfg.force:
                raise RunError(f"run folder {str(out)!r} already exists; pass --force to replace it, "
                                      f"--resume {out} to continue it, or another --out")
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
    dist.barrier()
    return out


def train(config: TrainConfig | dict[str, Any], resume: str | Path | None = None) -> RunSummary | None:
    """Train a VAE as `config` says (or continue the run in `resume`). Returns the run's summary (its `run`
    is the folder), or None on the processes of a torchrun job other than the first."""
    dist = Distributed.from_env()
    try:
        if resume is not None:
            saved = ckpt.load_checkpoint(resume)
            cfg = TrainConfig.from_dict(saved["train_config"])
            run_dir = Path(resume)
            # a resumed run goes on to its epochs; only a --max-time given now limits it
            cfg.max_time = config.max_time if isinstance(config, TrainConfig) else config.get("max_time")
        else:
            cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
            cfg.validate()
            saved = None
        data = load_data(cfg.data, image_size=cfg.image_size, channels=cfg.channels,
                         test_fraction=cfg.test_fraction, seed=cfg.seed, skip_bad_images=cfg.skip_bad_images,
                         progress=cfg.progress)
        for bad in data.skipped:
            tqdm.write(f"skipped unreadable image: {bad}")
        cfg, model_cfg = resolve(cfg, data.image_shape, len(data.train))
        if saved is None:
            run_dir = prepare_run_dir(cfg, dist)
            if dist.is_main:
                write_json(run_dir / ckpt.CONFIG_FILE, {"model": model_cfg.to_dict(), "train": cfg.to_dict(),
                                                        "vaekit_version": vaekit_version()})
                write_heldout(run_dir, data.test)  # export reads these, never the data source
        trainer = Trainer(cfg, run_dir, data, model_cfg, dist)
        state = trainer.load_state(saved) if saved is not None else trainer.new_state()
        state = trainer.run(state)
        summary = trainer.finish(state)
        dist.barrier()
        return summary
    finally:
        dist.close()
