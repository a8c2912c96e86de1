"""`make bench`: the four benchmarks in turn, then the generated tables of docs/benchmarks.md and README.md
(benchmarks/report.py, from the results).

Threads: every benchmark runs torch and onnxruntime on 1 thread unless --threads says otherwise:
on a machine shared with other work, two-thread runs measure the contention (5-50x slower and
erratic when another process is busy) rather than the code. `--threads 2` on an idle 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_DATA, ROOT, require_data  # noqa: E402
from report import update_pages  # noqa: E402

SCRIPTS = ("train_speed.py", "quality.py", "inference.py", "colour.py", "anomaly.py")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"Fashion-MNIST .npz (default: {DEFAULT_DATA})")
    p.add_argument("--threads", type=int, default=1, help="threads for torch and onnxruntime in every benchmark (default: 1)")
    args = p.parse_args()
    require_data(args.data)
    load = os.getloadavg()[0]
    threads = args.threads
    note = f"{threads} thread(s) for torch and onnxruntime; 1-minute load average {load:.1f} before the run"
    print(note, flush=True)
    start = time.perf_counter()
    for script in SCRIPTS:
        cmd = [sys.executable, str(Path(__file__).parent / script), "--data", str(args.data), "--threads", str(threads)]
        print(f"\n=== {script} ===", flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT)
    minutes = (time.perf_counter() - start) / 60
    update_pages()
    print(f"\nall benchmarks in {minutes:.1f} min; the tables of docs/benchmarks.md and README.md updated")


if __name__ == "__main__":
    main()
