"""Training speed: vaekit's trainer against the pytorch/examples loop, same network and batch, ABAB.

Each round times one epoch of Fashion-MNIST (60,000 images) with the reference, vaekit in float32
and vaekit as a user runs it (`--precision auto`: bfloat16 on a CPU with native bf16, else
float32), the order reversed every other round; the table gives the median images/s of each, the
ratios to the reference, and each as a share of the machine's float32 matmul peak (measured here on
the same threads). Neither side's time counts held-out passes: the reference's test() after the epoch is not
timed, and vaekit's paced passes during it (about 1.5% of a one-epoch run) are taken off its clock.

On a CPU with AVX-512, a second pass repeats the rounds in a child process with torch, MKL and oneDNN capped at
AVX2 (the caps are read at start-up): an approximation of an AVX2-only machine, where `auto` trains in float32.
It writes `results/NAME_avx2.json` (NAME: `--name`), and its figures go into this result under `avx2_kernels`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ISA_CAPS,
    RESULTS,
    common_arguments,
    load_fashion,
    machine,
    matmul_peak_gflops,
    print_table,
    require_data,
    set_threads,
    write_result,
)
from reference import BATCH_SIZE, LR, Reference, timed_epoch  # noqa: E402

TARGET_RATIO = 1.5
AVX2_CAPS = dict(zip(ISA_CAPS, ("avx2", "AVX2", "AVX2"), strict=True))
# The network's multiply-adds per image for one training step (784-400-20 MLP, ReLU; the encoder's
# input needs no gradient): forward 2x, backward 2x of the weights' size except the first layer's input.
WEIGHTS = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
FLOPS_PER_IMAGE = 2 * (3 * WEIGHTS - 784 * 400)


def vaekit_config(data: Path, out: str, epochs: int = 1, precision: str | None = None) -> Any:
    """vaekit-train with the reference's network, prior (N(0, I)), objective (the ELBO), optimiser and batch (everything else as vaekit
    does it; `precision` None is auto)."""
    from vaekit.train import TrainConfig

    return TrainConfig(data=str(data), out=out, force=True, model="mlp", hidden=[400], latent_dim=20,
                       activation="relu", prior_components=0, iwae_k=1, lr=LR, batch_size=BATCH_SIZE, schedule="constant", kl_warmup_epochs=0,
                       epochs=epochs, nll_k=1, nll_images=1, images_every=10**6, progress=False, precision=precision)


def time_vaekit(data: Path, precision: str | None = None) -> tuple[float, str]:
    """Seconds of the trainer's own training clock for one epoch (the loop only: no data loading), less its paced
    held-out passes (the reference's timed epoch runs no test pass either); and the precision it trained in."""
    from vaekit.train import train

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(train(vaekit_config(data, tmp, precision=precision)).run)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        resolved = json.loads((run / "config.json").read_text())["train"]["precision"]
    end = next(i for i, r in enumerate(records) if r["kind"] == "train")
    evaluation = sum(r["seconds"] for r in records[:end] if r["kind"] == "eval")  # the closing pass comes after
    return records[end]["time"] - evaluation, resolved


def avx2_pass(args: argparse.Namespace) -> dict[str, Any] | None:
    """The same rounds in a child process with torch, MKL and oneDNN capped at AVX2, on a CPU with AVX-512 that runs
    uncapped (else None); its reference and float32 figures."""
    if "avx512f" not in machine()["simd"] or any(key in os.environ for key in ISA_CAPS) or args.no_avx2_pass:
        return None
    print("\nthe same rounds with torch, MKL and oneDNN capped at AVX2 (an approximation of an AVX2-only CPU):", flush=True)
    cmd = [sys.executable, __file__, "--data", str(args.data), "--rounds", str(args.rounds), "--no-avx2-pass",
           "--name", f"{args.name}_avx2", *(["--threads", str(args.threads)] if args.threads else [])]
    subprocess.run(cmd, env=os.environ | AVX2_CAPS, check=True)
    child = json.loads((RESULTS / f"{args.name}_avx2.json").read_text())
    keys = ("reference_median", "vaekit_float32_median", "float32_ratio", "vaekit_precision", "matmul_peak_gflops")
    return {key: child[key] for key in keys} | {"isa_caps": AVX2_CAPS}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from vaekit.train.plan import cpu_has_native_bf16

    p = argparse.ArgumentParser(description=__doc__)
    common_arguments(p)
    p.add_argument("--rounds", type=int, default=5, help="ABAB rounds (one epoch of each per round)")
    p.add_argument("--no-avx2-pass", action="store_true", help="skip the second pass with the kernels capped at AVX2")
    p.add_argument("--name", default="train_speed", help="the result's name: benchmarks/results/NAME.json")
    args = p.parse_args(argv)
    require_data(args.data)
    threads = set_threads(args.threads)
    train_x, _ = load_fashion(args.data)
    n = len(train_x)
    peak = matmul_peak_gflops()
    # where `auto` trains in float32 (no native bf16, or kernels capped below AVX-512) its run is the float32 one
    auto_is_float32 = not cpu_has_native_bf16()
    loops = ("reference", "vaekit float32") if auto_is_float32 else ("reference", "vaekit float32", "vaekit")
    speeds: dict[str, list[float]] = {who: [] for who in loops}
    precisions: dict[str, str] = {}
    for r in range(args.rounds):
        for who in (loops if r % 2 == 0 else loops[::-1]):
            if who == "reference":
                seconds = timed_epoch(Reference(train_x, seed=r))  # its setup is not timed
            else:
                seconds, precisions[who] = time_vaekit(args.data, "float32" if who == "vaekit float32" else None)
            speeds[who].append(n / seconds)
            print(f"round {r + 1}: {who} {speeds[who][-1]:.0f} images/s", flush=True)
    peak_after = matmul_peak_gflops()
    if auto_is_float32:
        speeds["vaekit"], precisions["vaekit"] = speeds["vaekit float32"], "float32"
    ref, fp32, vk = (statistics.median(speeds[who]) for who in ("reference", "vaekit float32", "vaekit"))
    resolved = precisions["vaekit"]
    share = lambda speed: speed * FLOPS_PER_IMAGE / 1e9 / max(peak, peak_after)  # noqa: E731
    result = {
        "threads": threads,
        "matmul_peak_gflops": max(peak, peak_after),
        "matmul_peak_gflops_before_after": [peak, peak_after],
        "flops_per_image": FLOPS_PER_IMAGE,
        "vaekit_precision": resolved,  # what --precision auto chose on this CPU (machine.simd says why)
        "reference_images_per_s": speeds["reference"],
        "vaekit_float32_images_per_s": speeds["vaekit float32"],
        "vaekit_images_per_s": speeds["vaekit"],
        "reference_median": ref,
        "vaekit_float32_median": fp32,
        "vaekit_median": vk,
        "float32_ratio": fp32 / ref,
        "ratio": vk / ref,
        "reference_share_of_peak": share(ref),
        "vaekit_float32_share_of_peak": share(fp32),
        "vaekit_share_of_peak": share(vk),
        "target_ratio": TARGET_RATIO,
        "target_met": vk / ref >= TARGET_RATIO,
    }
    print_table(
        f"Training speed, Fashion-MNIST, MLP 784-400-20, batch {BATCH_SIZE}, {args.rounds} ABAB rounds, "
        f"{threads} threads; float32 matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s",
        ["loop", "images/s (median)", "ratio to the reference", "share of float32 peak"],
        [["reference (pytorch/examples)", f"{ref:.0f}", "1.00x", f"{share(ref):.0%}"],
         ["vaekit, --precision float32", f"{fp32:.0f}", f"{fp32 / ref:.2f}x", f"{share(fp32):.0%}"],
         [f"vaekit (auto: {resolved})", f"{vk:.0f}", f"{vk / ref:.2f}x (target >= {TARGET_RATIO}x)", f"{share(vk):.0%}"]],
    )
    avx2 = avx2_pass(args)
    if avx2:
        result["avx2_kernels"] = avx2
        print(f"capped at AVX2: vaekit float32 {avx2['float32_ratio']:.2f}x the reference "
              f"({avx2['vaekit_float32_median']:.0f} vs {avx2['reference_median']:.0f} images/s)")
    print(f"wrote {write_result(args.name, result)}")
    return result


if __name__ == "__main__":
    main()
