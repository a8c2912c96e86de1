"""Training throughput with 1 process against 2 torchrun processes (DDP, gloo) on this machine.

Both train the recommended 28x28 recipe on Fashion-MNIST with the same global batch for the same
number of steps, alternating; images/s counts the global batch over the training loop's wall clock
(its per-epoch evaluation and checkpoint included, as a user sees it).

    python benchmarks/ddp_scaling.py [--data PATH] [--epochs 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import data_argument, print_table, require_data, write_result  # noqa: E402

BATCH = 128


def train_once(data: Path, processes: int, epochs: int, out: Path) -> float:
    """Images/s of one run: `vaekit-train` alone, or under torchrun with `processes` ranks of 1 thread each."""
    args = ["--data", str(data), "--epochs", str(epochs), "--batch-size", str(BATCH), "--nll-k", "1",
            "--iwae-k", "1", "--nll-images", "16", "--images-every", str(epochs), "--no-progress", "--device", "cpu",
            "--out", str(out), "--force"]
    bin_dir = Path(sys.executable).parent
    if processes == 1:
        cmd, threads = [str(bin_dir / "vaekit-train"), *args], str(os.cpu_count() or 1)
    else:
        cmd = [str(bin_dir / "torchrun"), "--standalone", f"--nproc_per_node={processes}", "-m", "vaekit.train", *args]
        threads = str(max(1, (os.cpu_count() or 1) // processes))
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": threads}, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    return summary["steps"] * BATCH / summary["wall_time_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_argument(parser)
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (469 steps each)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    args = parser.parse_args()
    data = require_data(args.data)
    runs: dict[int, list[float]] = {1: [], 2: []}
    tmp = Path(tempfile.mkdtemp(prefix="vaekit-ddp-"))
    try:
        for _ in range(args.repeats):
            for processes in runs:
                runs[processes].append(train_once(data, processes, args.epochs, tmp / f"p{processes}"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    one, two = median(runs[1]), median(runs[2])
    print_table("Training throughput, recommended 28x28 recipe, global batch 128 (images/s, median)",
                ["processes", "threads each", "images/s", "vs 1 process"],
                [[1, os.cpu_count(), round(one), 1.0], [2, max(1, (os.cpu_count() or 1) // 2), round(two), two / one]])
    path = write_result("ddp_scaling", {"epochs": args.epochs, "batch": BATCH, "repeats": args.repeats,
                                        "images_per_s": {"1": runs[1], "2": runs[2]},
                                        "median_images_per_s": {"1": one, "2": two}, "ratio_2_vs_1": two / one})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
