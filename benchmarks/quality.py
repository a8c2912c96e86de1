"""Quality for time: test NLL (IWAE, k=1000, 2,000 binarized test images) at equal training time.

Three recipes on the same data and budgets, each scored by vaekit's own evaluation (`heldout_nll`) on the
same images with the same noise:
- vaekit: `vaekit-train --data D --max-time B`, every other option left to vaekit, run as a user runs it (a
  fresh process). Its budget is the whole command's: Python start-up, loading data, planning, held-out
  passes, grids and checkpoints all count; only the final test NLL estimate does not.
- the reference (pytorch/examples: MLP 784-400-20, Adam 1e-3, batch 128): its training loop's own clock
  only, snapshotted at each budget; its start-up and data loading are not counted.
- pythae's default VAE (benchmarks/peers.py), the same way, when pythae is installed.
Cases: Fashion-MNIST (60,000 training images) at 60 s and 300 s, and an 8,000-image subset at 45 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402
from common import (  # noqa: E402
    RESULTS,
    common_arguments,
    load_fashion,
    print_table,
    require_data,
    set_threads,
    write_result,
)
from reference import Reference  # noqa: E402

NLL_K, NLL_IMAGES = 1000, 2000  # every point scored alike: vaekit's runs ask for this estimate explicitly

TARGET_NATS = 5.0


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    train_images: int | None  # None: all of Fashion-MNIST's 60,000
    budgets: tuple[float, ...]


CASES = (Case("fashion", "Fashion-MNIST", None, (60.0, 300.0)),
         Case("subset8k", "Fashion-MNIST, 8,000-image subset", 8000, (45.0,)))


def case_data(data: Path, case: Case, work: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """The case's .npz (a seeded subset of the training images, all test images) and its train and test arrays."""
    train_x, test_x = load_fashion(data)
    if case.train_images is None:
        return data, train_x, test_x
    train_x = train_x[np.random.default_rng(0).permutation(len(train_x))[: case.train_images]]
    path = work / f"{case.name}.npz"
    np.savez(path, x_train=train_x[:, 0], x_test=test_x[:, 0])
    return path, train_x, test_x


def peer_points(make: Any, train_x: np.ndarray, images: torch.Tensor, cfg: Any, budgets: tuple[float, ...],
                name: str) -> list[dict[str, Any]]:
    """Train a peer until each budget (its own clock, snapshots excluded), then score every snapshot."""
    from vaekit.train.chores import heldout_nll

    peer, snapshots, clock, epochs = make(train_x), [], 0.0, 0.0
    for budget in budgets:
        while clock < budget:
            start = time.perf_counter()
            _, seen = peer.train_epoch(stop=lambda: clock + time.perf_counter() - start >= budget)
            clock += time.perf_counter() - start
            epochs += seen / len(train_x)
        snapshots.append((budget, clock, epochs, peer.as_vaekit()))
        print(f"{name}: {epochs:.1f} epochs in {clock:.0f} s", flush=True)
    return [{"budget_s": budget, "train_s": clock, "epochs": epochs, "test_nll": float(heldout_nll(model, images, cfg.nll_k, cfg.seed).mean())}
            for budget, clock, epochs, model in snapshots]


def vaekit_point(data: Path, budget: float, out: Path) -> dict[str, Any]:
    """One `vaekit-train --max-time` command in a fresh process; its summary.json figures and its whole wall clock."""
    began = time.perf_counter()
    subprocess.run([sys.executable, "-m", "vaekit.train", "--data", str(data), "--max-time", f"{budget:g}", "--out", str(out),
                    "--nll-k", str(NLL_K), "--nll-images", str(NLL_IMAGES),
                    "--force", "--no-progress"], check=True, env=os.environ, stdout=subprocess.DEVNULL)
    command_s = time.perf_counter() - began
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    point = {"budget_s": budget, "train_s": summary["wall_time_s"], "epochs": summary["epochs"],
             "test_nll": summary["test_nll"], "command_s": command_s, "final_nll_s": summary["test_nll_time_s"],
             "config": config}
    print(f"vaekit: {summary['epochs']:.1f} epochs, whole command {command_s:.0f} s "
          f"(final NLL estimate {summary['test_nll_time_s']:.0f} s)", flush=True)
    return point


def bound_text(train: dict[str, Any]) -> str:
    """The objective a run trained: the ELBO, the IWAE bound, or the ELBO and then the bound late in the run."""
    k, start = train["iwae_k"], train.get("iwae_from", 0.0)
    if k == 1:
        return "ELBO"
    return f"the ELBO, then the IWAE bound (k={k}) over the last {1 - start:.0%} of the run" if start else f"IWAE bound (k={k})"


def recipe_text(config: dict[str, Any]) -> str:
    """The recipe a run's config.json describes (its plan: `model` and `train`), in words."""
    m, t = config["model"], config["train"]
    prior = "a learned mixture of Gaussians" if m.get("prior_components") else "N(0, I)"
    centred = "; inputs centred on the training images' mean, output bias at its log-odds" if m.get("center_inputs") else ""
    return (f"{m['kind']}, latent {m['latent_dim']}, {m['activation']}{centred}, AdamW {t['schedule']}; epochs, learning rate and "
            "KL warm-up (half the run) fitted to the budget, and the hidden layers, batch and mixture components (each row "
            f"gives them) chosen for the run's length; {bound_text(t)}, prior: {prior}"
            f"{', ' + t['precision'] + ' steps' if t.get('precision') else ''}")


def plot(case: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for key, name in (("reference", "reference (pytorch/examples)"), ("pythae", "pythae default VAE"), ("vaekit", "vaekit --max-time")):
        if key in case:
            ax.plot([p["budget_s"] for p in case[key]], [p["test_nll"] for p in case[key]], "o-", label=name)
    ax.set_xlabel("training budget (s)")
    ax.set_ylabel("test NLL, IWAE k=1000 (nats, lower is better)")
    ax.set_title(f"{case['case']} (dynamically binarized), 2,000 test images")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_case(case: Case, data: Path, work: Path) -> dict[str, Any]:
    from vaekit.train import TrainConfig
    from vaekit.train.chores import heldout_images

    path, train_x, test_x = case_data(data, case, work)
    cfg = TrainConfig(binarize="dynamic", nll_k=NLL_K, nll_images=NLL_IMAGES)  # vaekit's evaluation settings, seed 0
    images = heldout_images(test_x, cfg.binarize, cfg.seed)[: cfg.nll_images]
    result: dict[str, Any] = {"case": case.title, "train_images": len(train_x), "budgets_s": list(case.budgets),
                              "vaekit": [vaekit_point(path, b, work / f"{case.name}-{b:g}") for b in case.budgets],
                              "reference": peer_points(Reference, train_x, images, cfg, case.budgets, "reference")}
    if peers.available():
        result["pythae"] = peer_points(peers.PythaeDefault, train_x, images, cfg, case.budgets, "pythae")
    names = [n for n in ("reference", "pythae") if n in result]
    result["gain_nats"] = [min(result[n][i]["test_nll"] for n in names) - v["test_nll"] for i, v in enumerate(result["vaekit"])]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__)
    common_arguments(p)
    p.add_argument("--cases", nargs="+", choices=[c.name for c in CASES], default=[c.name for c in CASES])
    p.add_argument("--name", default="quality", help="the result's name: benchmarks/results/NAME.json and NAME.png")
    args = p.parse_args(argv)
    require_data(args.data)
    threads = set_threads(args.threads)  # OMP_NUM_THREADS too: vaekit-train's processes use the same threads
    with tempfile.TemporaryDirectory() as tmp:
        cases = [run_case(c, args.data, Path(tmp)) for c in CASES if c.name in args.cases]
    rows = []
    for c in cases:
        for i, v in enumerate(c["vaekit"]):
            peer = lambda n: f"{c[n][i]['test_nll']:.2f} ({c[n][i]['epochs']:.1f} ep)" if n in c else "not installed"  # noqa: E731
            t = v["config"]["train"]
            rows.append([c["case"], f"{v['budget_s']:g} s", peer("reference"), peer("pythae"),
                         f"{v['test_nll']:.2f} ({v['epochs']:.1f} ep)", f"{t['lr']:.2g} / {t['kl_warmup_epochs']:.1f} ep",
                         f"{c['gain_nats'][i]:+.2f}"])
    gains = [g for c in cases for g in c["gain_nats"]]
    recipe = recipe_text(cases[0]["vaekit"][-1]["config"])
    result = {"cases": cases, "vaekit_recipe": recipe, "target_nats": TARGET_NATS,
              "target_met": all(g >= TARGET_NATS for g in gains), "n_images": 2000, "k": 1000, "threads": threads}
    print_table(f"Test NLL (IWAE k=1000, 2,000 test images, nats) at equal training time; vaekit: {recipe}",
                ["data", "budget", "reference", "pythae default", "vaekit", "vaekit lr / KL warm-up",
                 f"vaekit better than the best peer by (target >= {TARGET_NATS:g})"],
                rows)
    plot(cases[0], RESULTS / f"{args.name}.png")
    print(f"wrote {write_result(args.name, result)} and {RESULTS / f'{args.name}.png'}")
    return result


if __name__ == "__main__":
    main()
