"""Quality for time: test NLL (IWAE, k=1000, 2,000 binarized test images) against training wall-clock.

Compares the reference recipe (pytorch/examples: MLP 784-400-20, Adam 1e-3, constant rate; one
run, snapshotted at each budget) with vaekit's recommended recipe: one `vaekit-train --data
fashion-mnist.npz --epochs E --max-time B` run per budget B, every other option left to vaekit,
with E the epochs vaekit's trainer fits in B (timed by a short calibration run) so that the
cosine schedule ends near the budget. Both are scored by vaekit's own evaluation (`heldout_nll`)
on the same images with the same noise. The final IWAE evaluation is not counted against either
clock; vaekit's clock does include its own per-epoch held-out ELBO pass and checkpoints (the
reference's does not), so the comparison leans, slightly, against vaekit.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
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

TARGET_NATS = 5.0
BUDGETS = (60.0, 300.0)


def reference_points(train_x: Any, images: torch.Tensor, cfg: Any, budgets: list[float]) -> list[dict[str, Any]]:
    """Train the reference until each budget (its own clock, snapshots excluded), then score every snapshot."""
    from vaekit.train.trainer import heldout_nll

    ref, snapshots, clock, epochs = Reference(train_x), [], 0.0, 0.0
    for budget in budgets:
        while clock < budget:
            start = time.perf_counter()
            _, seen = ref.train_epoch(stop=lambda: clock + time.perf_counter() - start >= budget)
            clock += time.perf_counter() - start
            epochs += seen / len(train_x)
        snapshots.append((clock, epochs, ref.as_vaekit()))
        print(f"reference: {epochs:.1f} epochs in {clock:.0f} s", flush=True)
    points = []
    for clock, epochs, model in snapshots:
        nll = float(heldout_nll(model, images, cfg).mean())
        points.append({"budget_s": budgets[len(points)], "train_s": clock, "epochs": epochs, "test_nll": nll})
    return points


def steps_per_second(data: Path, out: Path, seconds: float = 10.0) -> float:
    """vaekit's training speed on the recipe, from a short run (its per-epoch evaluation included)."""
    from vaekit.train import TrainConfig, train

    summary = train(TrainConfig(data=str(data), out=str(out), force=True, max_time=seconds, nll_k=1, nll_images=1,
                                progress=False))
    return summary.steps / summary.wall_time_s


def vaekit_points(data: Path, budgets: list[float], work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One recipe run per budget, its epochs fitted to the budget; each run's own summary.json figures."""
    from vaekit.train import TrainConfig, train
    from vaekit.train.config import recipe_for

    speed = steps_per_second(data, work / "calibration")
    steps_per_epoch = -(-60_000 // recipe_for((1, 28, 28), 60_000, None)[0]["batch_size"])
    points, recipe = [], {}
    for budget in budgets:
        out = work / f"budget{budget:g}"
        epochs = max(1, int(budget * speed / steps_per_epoch))
        summary = train(TrainConfig(data=str(data), out=str(out), force=True, epochs=epochs, max_time=budget,
                                    progress=False))
        recipe = json.loads((out / "config.json").read_text())
        points.append({"budget_s": budget, "train_s": summary.wall_time_s, "epochs": summary.epochs,
                       "planned_epochs": epochs, "test_nll": summary.test_nll})
        print(f"vaekit: {summary.epochs:.1f} of {epochs} epochs in {summary.wall_time_s:.0f} s", flush=True)
    return points, recipe


def plot(ref: list[dict[str, Any]], vk: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, points in (("reference (pytorch/examples)", ref), ("vaekit recommended recipe", vk)):
        ax.plot([p["train_s"] for p in points], [p["test_nll"] for p in points], "o-", label=name)
    ax.set_xlabel("training wall-clock (s)")
    ax.set_ylabel("test NLL, IWAE k=1000 (nats, lower is better)")
    ax.set_title("Fashion-MNIST (dynamically binarized), 2,000 test images")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__)
    common_arguments(p)
    p.add_argument("--budgets", type=float, nargs="+", default=list(BUDGETS), help="training seconds to score at")
    args = p.parse_args(argv)
    require_data(args.data)
    threads = set_threads(args.threads)
    from vaekit.train import TrainConfig
    from vaekit.train.trainer import heldout_images

    budgets = sorted(args.budgets)
    train_x, test_x = load_fashion(args.data)
    cfg = TrainConfig(binarize="dynamic")  # vaekit's evaluation settings: seed 0, k=1000, 2,000 images
    images = heldout_images(test_x, cfg)[: cfg.nll_images]
    with tempfile.TemporaryDirectory() as tmp:
        vk, recipe = vaekit_points(args.data, budgets, Path(tmp))
    ref = reference_points(train_x, images, cfg, budgets)
    rows, gains = [], []
    for r, v in zip(ref, vk):
        gains.append(r["test_nll"] - v["test_nll"])
        rows.append([f"{r['budget_s']:g} s", f"{r['test_nll']:.2f} ({r['epochs']:.1f} ep)",
                     f"{v['test_nll']:.2f} ({v['epochs']:.1f} ep, {v['train_s']:.0f} s)", f"{gains[-1]:+.2f}"])
    train_cfg = recipe["train"]
    recipe_text = (f"{train_cfg['model']} {'-'.join(map(str, [784, *train_cfg['hidden'], train_cfg['latent_dim']]))} "
                   f"{train_cfg['activation']}, AdamW lr {train_cfg['lr']:g} {train_cfg['schedule']} over "
                   f"{train_cfg['epochs']} epochs, KL warm-up {train_cfg['kl_warmup_epochs']:.2f} epochs, batch "
                   f"{train_cfg['batch_size']}, ELBO (iwae_k={train_cfg['iwae_k']})")
    result = {"budgets_s": budgets, "reference": ref, "vaekit": vk, "vaekit_recipe": recipe_text,
              "vaekit_config": recipe, "gain_nats": gains, "target_nats": TARGET_NATS,
              "target_met": all(g >= TARGET_NATS for g in gains), "n_images": len(images), "k": cfg.nll_k,
              "threads": threads}
    print_table(f"Test NLL (IWAE k={cfg.nll_k}, {len(images)} test images) at equal training time; vaekit: {recipe_text}",
                ["budget", "reference NLL", "vaekit NLL", f"vaekit better by (target >= {TARGET_NATS:g})"], rows)
    plot(ref, vk, RESULTS / "quality.png")
    print(f"wrote {write_result('quality', result)} and {RESULTS / 'quality.png'}")
    return result


if __name__ == "__main__":
    main()
