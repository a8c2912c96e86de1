"""Colour photos at equal time: vaekit's default recipe (`vaekit-train --max-time T`, no other flag) against
AntixK/PyTorch-VAE's VanillaVAE trained on the sigma-VAE ELBO (benchmarks/peers.py), side by side in one run.

Cases: photos64 (../shared/data/photos64.npz: 5,000 train and 1,000 test crops from disjoint regions), the emoji at
64x64 and, as the row that says what a user gets there, at 128x128 (1,087 train, 200 test, a fixed split).
Both are scored alike on the test images: the held-out ELBO in bits/dim, each model's Gaussian with one variance
for all pixels fitted to its own held-out error (the sigma-VAE's optimum, the most favourable variance either
could have), one latent sample per image; and the reconstruction PSNR at the posterior mean (mean over images).
vaekit's whole command is timed, final estimate included (the budget it promises). Writes
benchmarks/results/colour.json and sample/reconstruction grids beside it.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_PHOTOS, RESULTS, data_argument, load_photos, print_table, set_threads, write_result  # noqa: E402
from peers import VanillaPeer  # noqa: E402

EMOJI_TEST = 200
GRID = 8  # images per grid row


@functools.cache
def case_data(name: str, photos: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) uint8 (N, 3, H, W) of a case: photos64, emoji64 or emoji128."""
    if name == "photos64":
        return load_photos(photos)[:2]
    from vaekit.train.emoji import emoji_images

    images = emoji_images(int(name.removeprefix("emoji")), channels=3)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[EMOJI_TEST:]], images[order[:EMOJI_TEST]]


class Scored:
    """A trained model seen through four functions: images -> (mean, logvar), latents -> images in [0, 1],
    log p(z), and n latents drawn from p(z) with a generator."""

    def __init__(self, encode: Callable, decode: Callable, log_prior: Callable, sample: Callable) -> None:
        self.encode, self.decode, self.log_prior, self.sample = encode, decode, log_prior, sample


@torch.no_grad()
def quality(model: Scored, test: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Held-out ELBO (bits/dim, with the best shared variance) and PSNR (dB, posterior mean), in chunks of 100."""
    generator = torch.Generator().manual_seed(seed)
    sq_sample, sq_mean, kl = [], [], []
    for start in range(0, len(test), 100):
        x = torch.from_numpy(test[start : start + 100]).float().div(255)
        mu, logvar = model.encode(x)
        eps = torch.randn(mu.shape, generator=generator)
        z = mu + torch.exp(0.5 * logvar) * eps
        sq_sample.append((model.decode(z) - x).pow(2).flatten(1).sum(1))
        sq_mean.append((model.decode(mu) - x).pow(2).flatten(1).mean(1))
        log_q = -0.5 * (math.log(2 * math.pi) + logvar + eps.pow(2)).sum(1)
        kl.append(log_q - model.log_prior(z))
    dims = int(np.prod(test.shape[1:]))
    sq, kl_all = torch.cat(sq_sample), torch.cat(kl)
    variance = float(sq.mean()) / dims
    nelbo = 0.5 * dims * (math.log(2 * math.pi * variance) + 1) + float(kl_all.mean())
    psnr = float((-10 * torch.log10(torch.cat(sq_mean).clamp_min(1e-10))).mean())
    return {"bits_per_dim": round(nelbo / (dims * math.log(2)), 4), "psnr_db": round(psnr, 3),
            "kl_nats": round(float(kl_all.mean()), 2)}


def peer_point(train: np.ndarray, test: np.ndarray, budget: float) -> tuple[dict[str, Any], Scored]:
    peer = VanillaPeer(train)
    clock = peer.train_for(budget)
    m = peer.model
    scored = Scored(m.encode, m.decode, lambda z: -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(1),
                    lambda n, g: torch.randn(n, m.fc_mu.out_features, generator=g))
    return {**clock, "command_s": clock["train_s"], **quality(scored, test)}, scored


def vaekit_point(train: np.ndarray, test: np.ndarray, budget: float, work: Path,
                 extra: list[str]) -> tuple[dict[str, Any], Scored]:
    """One `vaekit-train --max-time` command in a fresh process on an .npz of the case; its quality and wall clock."""
    from vaekit.train.run import load_run

    npz, out = work / "data.npz", work / "run"
    np.savez(npz, x_train=train.transpose(0, 2, 3, 1), x_test=test.transpose(0, 2, 3, 1))
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaekit.train", "--data", str(npz), "--max-time", f"{budget:g}", "--out",
                    str(out), "--force", "--no-progress", *extra], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    command_s = time.perf_counter() - began
    run = load_run(out)
    m = run.model.float()
    scored = Scored(m.encoder, lambda z: m.decoder.likelihood_params(z)["image"], m.log_prior, m.sample_prior)
    plan, model = run.train_config, run.model_config
    recipe = {k: plan[k] for k in ("batch_size", "lr", "precision")} | {
        k: getattr(model, k) for k in ("kind", "conv_channels", "conv_blocks", "latent_dim", "likelihood", "variance",
                                       "prior_components", "prior_fit")}
    return {"train_s": run.summary.wall_time_s, "epochs": run.summary.epochs, "command_s": round(command_s, 1),
            "recipe": recipe, **quality(scored, test)}, scored


@torch.no_grad()
def write_grid(path: Path, model: Scored, test: np.ndarray, seed: int = 0) -> None:
    """Three rows: test images, their reconstructions, and samples from the prior."""
    from vaekit.runtime.images import make_grid, save_png

    x = torch.from_numpy(test[:GRID]).float().div(255)
    recon = model.decode(model.encode(x)[0])
    samples = model.decode(model.sample(GRID, torch.Generator().manual_seed(seed)))
    save_png(make_grid(torch.cat([x, recon, samples]).clamp(0, 1).numpy(), nrow=GRID), path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_argument(parser)  # make bench passes it; the photos sit beside it
    parser.add_argument("--photos", type=Path, default=None, help=f"photos64.npz (default: beside --data, {DEFAULT_PHOTOS})")
    parser.add_argument("--cases", default="photos64,emoji64", help="comma-separated: photos64, emoji64, emoji128")
    parser.add_argument("--budgets", default="120,600", help="seconds per run, comma-separated")
    parser.add_argument("--row128", type=float, default=120, help="budget of the emoji128 row (0: none)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--vaekit-args", default="", help="extra vaekit-train flags (exploration only, not the result)")
    parser.add_argument("--who", default="vaekit,peer", help="which to run (exploration runs may leave one out)")
    parser.add_argument("--name", default="colour", help="result name (exploration runs use another)")
    args = parser.parse_args(argv)
    args.photos = args.photos or args.data.parent / DEFAULT_PHOTOS.name
    if not args.photos.is_file() and "photos64" in args.cases:
        sys.exit(f"benchmark data {args.photos} not found: pass --photos PATH or leave photos64 out of --cases")
    threads = set_threads(args.threads)
    runs = [(c, float(b)) for c in args.cases.split(",") for b in args.budgets.split(",")]
    if args.row128:
        runs.append(("emoji128", args.row128))
    points = []
    for case, budget in runs:
        train, test = case_data(case, args.photos)
        point, models = {"case": case, "budget_s": budget}, {}
        if "vaekit" in args.who:
            with tempfile.TemporaryDirectory() as tmp:
                point["vaekit"], models["vaekit"] = vaekit_point(train, test, budget, Path(tmp), args.vaekit_args.split())
        if "peer" in args.who:
            point["peer"], models["peer"] = peer_point(train, test, budget)
        points.append(point)
        print(f"{case} {budget:g} s: " + "; ".join(
            f"{who} {p['bits_per_dim']} bits/dim {p['psnr_db']} dB, {p['epochs']:.1f} epochs, {p['command_s']:.0f} s"
            for who, p in point.items() if isinstance(p, dict)), flush=True)
        if budget == max(b for c, b in runs if c == case):
            for who, model in models.items():
                write_grid(RESULTS / f"{args.name}_{case}_{who}.png", model, test)
    def get(p: dict[str, Any], who: str, key: str) -> Any:
        return p[who][key] if who in p else "-"

    rows = [[p["case"], p["budget_s"], get(p, "vaekit", "bits_per_dim"), get(p, "peer", "bits_per_dim"),
             get(p, "vaekit", "psnr_db"), get(p, "peer", "psnr_db"), get(p, "vaekit", "command_s")] for p in points]
    print_table("held-out ELBO (bits/dim, lower is better) and PSNR (dB)",
                ["case", "budget s", "vaekit b/d", "peer b/d", "vaekit dB", "peer dB", "vaekit command s"], rows)
    result = {"threads": threads, "points": points}
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
