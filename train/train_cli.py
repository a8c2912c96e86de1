"""`vaekit-train`: train a VAE on the built-in digits or your own images.

One run, start to end: the flags become a `TrainConfig` (what the user asked); `train` loads the data, has the
planner (`plan.py`) turn the config into a frozen `Plan` (or reads the saved one back, to resume), and runs the loop
(`loop.py`), which calls the chores (`chores.py`) between steps; the chores end with summary.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaekit.runtime.choices import ACTIVATIONS, BINARIZE, LIKELIHOODS, MODEL_KINDS, PRECISIONS, SCHEDULES, VARIANCES
from vaekit.runtime.extras import run_command

from .config import TrainConfig

if TYPE_CHECKING:
    from vaekit.runtime.run_summary import RunSummary

    from .chores import Interrupts
    from .distributed import Distributed

PROG = "vaekit-train"

EPILOG = """examples:
  vaekit-train                                   # built-in digits, sensible defaults, < 1 minute
  vaekit-train --data ~/photos --image-size 32 --channels 3 --out runs/photos
  vaekit-train --data emoji --image-size 64 --max-time 600 --out runs/emoji
  vaekit-train --data fashion-mnist.npz --model conv --epochs 10 --out runs/fashion
  vaekit-train --resume runs/fashion             # continue a stopped or killed run exactly
  torchrun --nproc_per_node=2 -m vaekit.train --data x.npz --out runs/ddp   # several processes

Options left out are chosen from the data (docs/train.md).
"""


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 512,256, got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Train a variational autoencoder on images.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--data", default="digits", help="'digits' (built in), 'emoji' (colour, drawn from Debian's "
                   "fonts-noto-color-emoji), an .npz (x_train/x_test or x), an MNIST IDX file (.gz ok) or a folder "
                   "of PNG/JPEG/WebP images (default: digits)")
    d.add_argument("--image-size", type=int, help="resize folder images (and emoji) to NxN (centre crop to square, "
                   "then Lanczos)")
    d.add_argument("--channels", type=int, choices=(1, 3), help="1 = grayscale, 3 = RGB (folders; default: as found)")
    d.add_argument("--test-fraction", type=float, default=0.1, help="held-out share when the data has no test split")
    d.add_argument("--skip-bad-images", action="store_true", help="skip unreadable images instead of stopping")
    d.add_argument("--binarize", choices=BINARIZE, help="dynamic: resample binary pixels every batch "
                   "(the binarized-MNIST protocol; default for bernoulli, and asks for it when --likelihood is left out)")
    m = p.add_argument_group("model")
    m.add_argument("--model", choices=MODEL_KINDS, help="fully connected or convolutional (default: by image size)")
    m.add_argument("--latent-dim", type=int, help="size of the latent code")
    m.add_argument("--hidden", type=_ints, help="hidden layer sizes, e.g. 512,256")
    m.add_argument("--conv-channels", type=_ints, help="conv channels per level (each halves H and W), e.g. "
                   "16,32,64 (default: from 16, doubling a level, down to a grid of about 4x4)")
    m.add_argument("--conv-blocks", type=int, help="residual blocks per conv level (default 0: a stride-2 conv a level)")
    m.add_argument("--activation", choices=ACTIVATIONS)
    m.add_argument("--likelihood", choices=LIKELIHOODS, help="bernoulli for (near) black-and-white images, gaussian "
                   "for photos (default: gaussian for colour images, bernoulli for grayscale)")
    m.add_argument("--variance", choices=VARIANCES, help="gaussian: analytic (one variance for all pixels, the batch's "
                   "mean squared error: the sigma-VAE; default for conv), shared (one learned for all pixels; default "
                   "for mlp) or pixel (one learned per pixel)")
    m.add_argument("--prior-components", type=int, help="the prior: 0 for the standard normal, K for a learned "
                   "mixture of K Gaussians (default: 16 for mlp; for conv one per 20 training images, at most 64, fitted after "
                   "training)")
    m.add_argument("--prior-fit", action=argparse.BooleanOptionalAction, help="fit the mixture prior to the training "
                   "images' codes when training ends, instead of learning it with the weights (default: on for conv)")
    m.add_argument("--center-inputs", action=argparse.BooleanOptionalAction, help="the encoder subtracts the training "
                   "images' mean image (default: on for mlp, off for conv)")
    o = p.add_argument_group("objective")
    o.add_argument("--beta", type=float, default=1.0, help="KL weight (beta-VAE)")
    o.add_argument("--kl-warmup-epochs", type=float, help="raise the KL weight linearly to beta over this many epochs")
    o.add_argument("--free-bits", type=float, default=0.0, help="nats per latent dim below which KL is not penalised")
    o.add_argument("--iwae-k", type=int, help="train the importance-weighted bound with k samples (1 = the ELBO; "
                   "default: 4 over the last quarter of the run for 28x28-like Bernoulli images, else 1)")
    o.add_argument("--iwae-from", type=float, help="share of the run (0 to 1, as the learning-rate schedule goes) "
                   "after which training takes that bound (default: 0 with --iwae-k, else the recipe's)")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, help="number of passes over the data (default: by data size)")
    t.add_argument("--max-time", type=float, help="the command's time budget in seconds, counted from its start (data "
                   "loading, held-out passes, grids, checkpoints and the final test NLL estimate included); "
                   "without --epochs, the epochs are fitted to it")
    t.add_argument("--batch-size", type=int, help="images per step (default: 128, less for big images)")
    t.add_argument("--lr", type=float, help="AdamW learning rate")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--schedule", choices=SCHEDULES, default="cosine", help="learning-rate schedule")
    t.add_argument("--grad-clip", type=float, default=100.0, help="clip the gradient norm (0 = off)")
    t.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    t.add_argument("--precision", choices=("auto", *PRECISIONS), default="auto", help="the training step's matmuls; "
                   "auto: bfloat16 on a CPU with native bf16 (AVX512-BF16 or AMX), else float32 (evaluation is float32)")
    t.add_argument("--seed", type=int, default=0)
    e = p.add_argument_group("evaluation and output")
    e.add_argument("--nll-k", type=int, help="importance samples for the final test NLL estimate (default: sized to at "
                   "most 15%% of --max-time, or of the training time: 1000 where that holds them)")
    e.add_argument("--nll-images", type=int, help="held-out images for the final test NLL estimate (default: sized "
                   "with --nll-k, up to 2000)")
    e.add_argument("--images-every", type=int, help="write sample/reconstruction grids every N epochs (default: ~20 per run)")
    e.add_argument("--out", help="run folder (default: runs/<date-time>)")
    e.add_argument("--force", action="store_true", help="replace an existing run folder")
    e.add_argument("--resume", metavar="RUN", help="continue the run in this folder where it stopped")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The flags as a TrainConfig (all but --resume; --no-progress as `progress`, 0 as no clipping, auto as None)."""
    values = {k: v for k, v in vars(args).items() if k not in ("resume", "no_progress")}
    values["progress"] = not args.no_progress
    values["grad_clip"] = args.grad_clip or None
    values["precision"] = None if args.precision == "auto" else args.precision
    return TrainConfig(**values)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-train`: errors a user can fix are one line and exit status 1."""
    started = time.perf_counter()  # --max-time counts from here
    args = parser().parse_args(argv)

    def run() -> None:
        summary = train(config_from_args(args), resume=args.resume, started=started)
        if summary is not None:  # None on the other processes of a torchrun job
            print(f"run written to {summary.run}")
            stderr = f" ± {summary.test_nll_stderr:.2f}" if summary.test_nll_stderr is not None else ""
            print(f"test ELBO {summary.metrics['test_elbo']:.2f} nats, test NLL (IWAE, k={summary.test_nll_k}) "
                  f"{summary.test_nll:.2f}{stderr} nats ({summary.test_bits_per_dim:.3f} bits/dim) on "
                  f"{summary.test_nll_images} held-out images; {summary.steps} steps in {summary.wall_time_s:.1f} s")

    # Ctrl-C: the trainer has said where it saved the checkpoint and how to resume
    return run_command(PROG, run, interrupted=None)



def train(config: TrainConfig | dict[str, Any], resume: str | Path | None = None, *,
          started: float | None = None) -> RunSummary | None:
    """Train a VAE as `config` says (or continue the run in `resume`). `started` is when the command began (a
    `time.perf_counter()` reading; default now): `max_time` counts from it. Returns the run's summary (its `run`
    is the folder), or None on the processes of a torchrun job other than the first."""
    from .chores import Interrupts  # torch loads here, once `run_command` has checked that it is installed
    from .distributed import Distributed

    started = time.perf_counter() if started is None else started
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    dist, interrupts = Distributed.from_env(), Interrupts()
    try:
        with interrupts.installed():
            return _train(cfg, resume, started, dist, interrupts)
    finally:
        dist.close()


def _train(cfg: TrainConfig, resume: str | Path | None, started: float, dist: Distributed,
           interrupts: Interrupts) -> RunSummary | None:
    """One run in order: the data, the plan (made, or read back from the checkpoint), the loop, the summary."""
    import torch
    from tqdm.auto import tqdm

    from vaekit.runtime.files import write_json
    from vaekit.runtime.version import vaekit_version

    from . import checkpoint as ckpt
    from .budget import Budget
    from .chores import Chores
    from .data import load_data, pixel_means
    from .errors import RunError
    from .loop import Batches, Session, measure, new_state, restored_state, run
    from .plan import Plan, make_plan, select_device
    from .run import prepare_run_dir, write_colours, write_heldout

    saved = None if resume is None else ckpt.load_checkpoint(resume)
    if saved is not None and "plan" not in saved:
        raise RunError(f"{resume}: its checkpoint holds no plan (written by an older vaekit), so it cannot be resumed; "
                       "export it as it is, or train again")
    saved_plan = None if saved is None else Plan.from_dict(saved["plan"])
    if saved_plan is None:
        cfg.validate()  # before loading any data
        run_dir = prepare_run_dir(cfg, dist)  # a refused --out stops the run before the data loads
    source = saved_plan or cfg  # a resumed run reads the data its plan names
    data = load_data(source.data, image_size=source.image_size, channels=source.channels,
                     test_fraction=source.test_fraction, seed=source.seed, skip_bad_images=source.skip_bad_images,
                     progress=cfg.progress)
    for bad in data.skipped:
        tqdm.write(f"skipped unreadable image: {bad}")
    device = select_device(f"cuda:{dist.local_rank}" if dist.is_cuda_rank else source.device)
    # a resumed run goes on to its planned epochs; only a --max-time given now limits it (counted from now)
    session = Session(dist, device, Budget(cfg.max_time, started), cfg.progress)
    mean_image = torch.from_numpy(pixel_means(data.train)).float().to(device)  # what a fresh model starts from
    if saved_plan is None:
        plan = make_plan(cfg, data.image_shape, len(data.train), device,
                         lambda draft: measure(draft, Batches(draft, data.train, session), session, mean_image))
        if dist.is_main:
            write_heldout(run_dir, data.test)  # export reads these, never the data source
            write_colours(run_dir, data.train)
            write_json(run_dir / ckpt.CONFIG_FILE, {**plan.to_dict(), "asked": cfg.to_dict(),
                                                    "vaekit_version": vaekit_version()})
        state = new_state(plan, mean_image, device)
    else:
        plan, run_dir = saved_plan, Path(resume)
        if len(data.train) != plan.train_images:
            raise RunError(f"{plan.data}: now holds {len(data.train)} training images, the run was planned for "
                           f"{plan.train_images}; restore the data to resume, or train again")
        state = restored_state(plan, mean_image, device, saved)
    chores = Chores(plan, run_dir, data.test, data.source, dist, device, session.budget, interrupts)
    state = run(plan, state, Batches(plan, data.train, session), chores, session)
    summary = chores.finish(state)
    dist.barrier()
    return summary


if __name__ == "__main__":
    sys.exit(main())
