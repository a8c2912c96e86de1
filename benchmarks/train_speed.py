"""Training speed: vaekit's trainer against the pytorch/examples loop, same network and batch, ABAB.

Each round times one epoch of Fashion-MNIST (60,000 images) with each, alternating which goes
first; the table gives the median images/s of each, the ratio, and both as shares of the
machine's float32 matmul peak (measured here on the same threads).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    common_arguments,
    load_fashion,
    matmul_peak_gflops,
    print_table,
    require_data,
    set_threads,
    write_result,
)
from reference import BATCH_SIZE, LR, Reference, timed_epoch  # noqa: E402

TARGET_RATIO = 1.5
# The network's multiply-adds per image for one training step (784-400-20 MLP, ReLU; the encoder's
# input needs no gradient): forward 2x, backward 2x of the weights' size except the first layer's input.
WEIGHTS = 784 * 400 + 400 * 40 + 20 * 400 + 400 * 784
FLOPS_PER_IMAGE = 2 * (3 * WEIGHTS - 784 * 400)


def vaekit_config(data: Path, out: str, epochs: int = 1) -> Any:
    """vaekit-train with the reference's network, optimiser and batch (everything else as vaekit does it)."""
    from vaekit.train import TrainConfig

    return TrainConfig(data=str(data), out=out, force=True, model="mlp", hidden=[400], latent_dim=20,
                       activation="relu", lr=LR, batch_size=BATCH_SIZE, schedule="constant", kl_warmup_epochs=0,
                       epochs=epochs, nll_k=1, nll_images=1, images_every=10**6, progress=False)


def time_vaekit(data: Path) -> float:
    """Seconds of the trainer's own training clock for one epoch (the loop only: no data loading, no evaluation)."""
    from vaekit.train import train

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(train(vaekit_config(data, tmp)).run)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    record = next(r for r in records if r["kind"] == "train")
    return record["time"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__)
    common_arguments(p)
    p.add_argument("--rounds", type=int, default=3, help="ABAB rounds (one epoch of each per round)")
    args = p.parse_args(argv)
    require_data(args.data)
    threads = set_threads(args.threads)
    train_x, _ = load_fashion(args.data)
    n = len(train_x)
    peak = matmul_peak_gflops()
    ref_speeds, vk_speeds = [], []
    for r in range(args.rounds):
        for who in (("reference", "vaekit") if r % 2 == 0 else ("vaekit", "reference")):
            if who == "reference":
                ref_speeds.append(n / timed_epoch(Reference(train_x, seed=r)))  # its setup is not timed
            else:
                vk_speeds.append(n / time_vaekit(args.data))
            print(f"round {r + 1}: {who} {(ref_speeds if who == 'reference' else vk_speeds)[-1]:.0f} images/s", flush=True)
    peak_after = matmul_peak_gflops()
    ref, vk = statistics.median(ref_speeds), statistics.median(vk_speeds)
    share = lambda speed: speed * FLOPS_PER_IMAGE / 1e9 / max(peak, peak_after)  # noqa: E731
    result = {
        "threads": threads,
        "matmul_peak_gflops": max(peak, peak_after),
        "matmul_peak_gflops_before_after": [peak, peak_after],
        "flops_per_image": FLOPS_PER_IMAGE,
        "reference_images_per_s": ref_speeds,
        "vaekit_images_per_s": vk_speeds,
        "reference_median": ref,
        "vaekit_median": vk,
        "ratio": vk / ref,
        "reference_share_of_peak": share(ref),
        "vaekit_share_of_peak": share(vk),
        "target_ratio": TARGET_RATIO,
        "target_met": vk / ref >= TARGET_RATIO,
    }
    print_table(
        f"Training speed, Fashion-MNIST, MLP 784-400-20, batch {BATCH_SIZE}, {args.rounds} ABAB rounds, "
        f"{threads} threads; float32 matmul peak {result['matmul_peak_gflops']:.1f} GFLOP/s",
        ["loop", "images/s (median)", "share of peak"],
        [["reference (pytorch/examples)", f"{ref:.0f}", f"{share(ref):.0%}"], ["vaekit", f"{vk:.0f}", f"{share(vk):.0%}"],
         ["ratio vaekit/reference", f"{vk / ref:.2f}x (target >= {TARGET_RATIO}x)", ""]],
    )
    print(f"wrote {write_result('train_speed', result)}")
    return result


if __name__ == "__main__":
    main()
