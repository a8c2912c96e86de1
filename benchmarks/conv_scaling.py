"""The conv recipe on colour images at 32, 64 and 128 px: training images/s, peak memory of the whole
`vaekit-train` process, and held-out bits/dim against training time.

Each size trains the recommended recipe (`--likelihood gaussian`, everything else chosen from the
image shape) on `--data emoji` (Debian's Noto Color Emoji, drawn offline) for the same wall-clock
budget, one size after the other, in a fresh process on `--threads` threads. Peak RSS is the
process's own (getrusage via wait4), data loading, per-epoch evaluation, final IWAE estimate and
image grids included. Bits/dim: the held-out ELBO of every epoch (an upper bound) and the final IWAE
estimate, as `summary.json` reports it (a continuous density of pixels in [0, 1]: see docs/bundle-format.md).

    python benchmarks/conv_scaling.py [--sizes 32 64 128] [--seconds 60] [--threads 1]

It prints a table, writes benchmarks/results/conv_scaling.{json,png} and docs/benchmarks.md's table between
its conv-bench markers.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, figure, print_table, write_result  # noqa: E402
from report import update_pages  # noqa: E402

# What a whole run must stay under, by image side.
RSS_TARGET_MIB = {64: 3 * 1024, 128: 6 * 1024}
START, END = "<!-- conv-bench:start -->", "<!-- conv-bench:end -->"


def train_once(size: int, seconds: float, threads: int, nll_k: int, nll_images: int, out: Path) -> dict[str, Any]:
    """One `vaekit-train --data emoji` run in a fresh process; its figures and peak RSS."""
    cmd = [str(Path(sys.executable).parent / "vaekit-train"), "--data", "emoji", "--image-size", str(size),
           "--likelihood", "gaussian", "--max-time", str(seconds), "--nll-k", str(nll_k), "--nll-images",
           str(nll_images), "--no-progress", "--device", "cpu", "--out", str(out), "--force"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(process.pid, 0)
    process_s = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"vaekit-train failed at {size} px: {process.stderr.read()[-2000:] if process.stderr else ''}")
    summary = json.loads((out / "summary.json").read_text())
    config = json.loads((out / "config.json").read_text())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    dims = 3 * size * size * math.log(2)
    trains = [r for r in records if r["kind"] == "train"]  # "time": training seconds at the end of each epoch
    times = {r["epoch"]: r["time"] for r in trains}
    curve = [{"train_s": times[r["epoch"]], "elbo_bits_per_dim": -r["elbo"] / dims}
             for r in records if r["kind"] == "eval"]
    batch = config["train"]["batch_size"]
    return {
        "image_size": size,
        "model": config["model"],
        "parameters": parameters(config["model"]),
        "batch_size": batch,
        "steps": summary["steps"],
        "train_s": trains[-1]["time"],
        "images_per_s": summary["steps"] * batch / trains[-1]["time"],
        "pixels_per_s": summary["steps"] * batch * size * size / trains[-1]["time"],
        "process_s": process_s,
        "epochs": summary["epochs"],
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "rss_target_mib": RSS_TARGET_MIB.get(size),
        "test_elbo_bits_per_dim": -summary["test_elbo"] / dims,
        "test_nll": summary["test_nll_iwae"],
        "test_bits_per_dim": summary["test_bits_per_dim"],
        "nll_k": summary["iwae_k"],
        "nll_images": summary["n_test_nll"],
        "nll_time_s": summary["nll_time_s"],
        "curve": curve,
    }


def parameters(model: dict[str, Any]) -> int:
    """The parameter count of a model config (as config.json stores it)."""
    from vaekit.train.models import build_model

    return sum(p.numel() for p in build_model(model).parameters())


def plot(points: list[dict[str, Any]], path: Path) -> None:
    """Held-out ELBO bits/dim against training seconds, one line per size, final IWAE figures as stars."""
    with figure(path) as ax:
        for p in points:
            line = ax.plot([c["train_s"] for c in p["curve"]], [c["elbo_bits_per_dim"] for c in p["curve"]], "o-",
                           label=f"{p['image_size']} px (ELBO bound)")[0]
            ax.plot([p["train_s"]], [p["test_bits_per_dim"]], "*", markersize=12, color=line.get_color())
        ax.set_xlabel("training time (s, 1 thread)")
        ax.set_ylabel("held-out bits/dim (lower is better)")
        ax.set_title("conv recipe on emoji; stars: final IWAE estimate")


def readme_section(result: dict[str, Any]) -> str:
    """docs/benchmarks.md's table of `result` (what write_result stored)."""
    m, points = result["machine"], result["points"]
    lines = [
        f"Latest run: {result['date']}, {m['cpu']} ({', '.join(m['simd'])}), {m['cores']} cores, "
        f"{result['threads']} thread(s), {result['seconds']:g} s training budget per size, load average "
        f"{m['load_avg_1m']} at the end: the machine was shared with other engineers' jobs, so the speeds are "
        "low and noisy. Training time is the training loop's own clock (a step is not cut short, so a budget "
        "overruns by up to one step); *whole run* is the process from start to exit (data, per-epoch "
        "evaluation, final IWAE estimate with k="
        f"{points[0]['nll_k']} on {points[0]['nll_images']} held-out images, grids, checkpoints).",
        "",
        "| size | channels | parameters | batch | training images/s | pixels/s vs 32 px | trained | whole run | "
        "peak RSS (target) | held-out bits/dim, ELBO / IWAE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for q in points:
        target = f" (<= {q['rss_target_mib'] / 1024:.0f} GiB: {'met' if q['peak_rss_mib'] <= q['rss_target_mib'] else '**not met**'})" \
            if q["rss_target_mib"] else ""
        lines.append(
            f"| {q['image_size']}x{q['image_size']} RGB | {','.join(map(str, q['model']['conv_channels']))} | "
            f"{q['parameters'] / 1e6:.1f} M | {q['batch_size']} | {q['images_per_s']:.1f} | "
            f"{q['pixels_per_s'] / points[0]['pixels_per_s']:.2f}x | {q['train_s']:.0f} s ({q['epochs']:.2f} epochs) | "
            f"{q['process_s']:.0f} s | {q['peak_rss_mib']:.0f} MiB{target} | "
            f"{q['test_elbo_bits_per_dim']:.3f} / {q['test_bits_per_dim']:.3f} |")
    lines += ["", "![held-out bits/dim against training time](benchmarks/results/conv_scaling.png)"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--seconds", type=float, default=60.0, help="training budget of each run (--max-time)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1)")
    p.add_argument("--nll-k", type=int, default=16, help="importance samples of the final estimate")
    p.add_argument("--nll-images", type=int, default=32, help="held-out images of the final estimate")
    args = p.parse_args()
    points = []
    with tempfile.TemporaryDirectory(prefix="vaekit-conv-") as tmp:
        for size in args.sizes:
            points.append(train_once(size, args.seconds, args.threads, args.nll_k, args.nll_images, Path(tmp) / str(size)))
            print(f"{size} px: {points[-1]['images_per_s']:.1f} images/s, peak RSS {points[-1]['peak_rss_mib']:.0f} MiB",
                  flush=True)
    rows = [[f"{q['image_size']}x{q['image_size']}", q["model"]["conv_channels"], f"{q['parameters'] / 1e6:.1f} M",
             q["batch_size"], f"{q['images_per_s']:.1f}", f"{q['pixels_per_s'] / points[0]['pixels_per_s']:.2f}x",
             f"{q['train_s']:.0f} s ({q['epochs']:.2f} epochs)",
             f"{q['process_s']:.0f} s",
             f"{q['peak_rss_mib']:.0f}" + (f" (<= {q['rss_target_mib']})" if q["rss_target_mib"] else ""),
             f"{q['test_elbo_bits_per_dim']:.3f}", f"{q['test_bits_per_dim']:.3f}"] for q in points]
    print_table(f"Conv recipe on emoji (RGB), {args.threads} thread(s), {args.seconds:g} s budget each",
                ["size", "channels", "parameters", "batch", "images/s", f"pixels/s vs {points[0]['image_size']} px", "trained", "whole run", "peak RSS MiB",  # noqa: E501 (a table row or browser flags, kept on one line)
                 "ELBO bits/dim", "IWAE bits/dim"], rows)
    plot(points, RESULTS / "conv_scaling.png")
    path = write_result("conv_scaling", {
        "threads": args.threads, "seconds": args.seconds, "data": "emoji (Noto Color Emoji), white background",
        "points": points,
        "rss_targets_met": all(q["peak_rss_mib"] <= q["rss_target_mib"] for q in points if q["rss_target_mib"]),
    })
    update_pages()
    print(f"wrote {path}, {RESULTS / 'conv_scaling.png'} and docs/benchmarks.md's table")


if __name__ == "__main__":
    main()
