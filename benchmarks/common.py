"""Shared by the benchmark scripts: the data, the machine, timing statistics and result files."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.runtime.files import write_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "fashion-mnist.npz"
DEFAULT_PHOTOS = DEFAULT_DATA.parent / "photos64.npz"
SIMD_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx")  # the CPU flags that decide which kernels run


def data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"Fashion-MNIST as an .npz with x_train/x_test (default: {DEFAULT_DATA})")


def common_arguments(parser: argparse.ArgumentParser) -> None:
    """--data and --threads, which the benchmarks of run_all.py take."""
    data_argument(parser)
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch and onnxruntime alike (default: torch's default)")


def set_threads(threads: int | None) -> int:
    """Use `threads` in torch (and in child processes through OMP_NUM_THREADS); returns the count in use."""
    import torch

    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    return torch.get_num_threads()


def setup(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, int]:
    """The arguments of a benchmark that took `common_arguments`, once its --data is found (else exit naming the
    fix) and its --threads are set; and the number of threads in use."""
    args = parser.parse_args(argv)
    require_data(args.data)
    return args, set_threads(args.threads)


def require_data(path: Path) -> Path:
    """`path` if it exists, else exit with a message naming it and the fix."""
    if not path.is_file():
        sys.exit(f"benchmark data {path} not found: put Fashion-MNIST there as an .npz (keys x_train, x_test; "
                 "uint8 28x28) or pass --data PATH")
    return path


def load_fashion(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) uint8 images shaped (N, 1, 28, 28) through vaekit's own loader."""
    from vaekit.train import load_data

    data = load_data(require_data(path))
    return data.train, data.test


def load_photos(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """photos64.npz as (train, test, train photograph indices, test photograph indices), images uint8 (N, 3, H, W)."""
    with np.load(path) as f:
        return f["x_train"].transpose(0, 3, 1, 2), f["x_test"].transpose(0, 3, 1, 2), f["y_train"], f["y_test"]


# Settings that make torch, MKL and oneDNN use a smaller instruction set than the CPU has: an AVX-512 machine with all
# three set to AVX2 approximates an AVX2-only one (docs/recipe-notebook.md); results record them when set.
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16",
              "amx_bf16", "amx_int8")


def machine() -> dict[str, Any]:
    """What ran the benchmark: CPU model and SIMD flags (results differ between AVX2-only and AVX-512/VNNI
    machines of the same kind), cores, load, library versions."""
    cpu, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not cpu:
                cpu = value
            elif key == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    caps = {key: os.environ[key] for key in ISA_CAPS if key in os.environ}
    return {"cpu": cpu or platform.processor() or "unknown CPU", "simd": [f for f in SIMD_FLAGS if f in flags], "cores": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "platform": platform.platform(), **({"isa_caps": caps} if caps else {})}


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 matmul throughput of torch on its current threads: the best of `repeats` n x n products."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def percentiles(seconds: list[float]) -> dict[str, float]:
    """Median and p99 in milliseconds."""
    ms = np.asarray(seconds) * 1e3
    return {"median_ms": float(np.median(ms)), "p99_ms": float(np.percentile(ms, 99))}


def write_result(name: str, result: dict[str, Any]) -> Path:
    """benchmarks/results/<name>.json, written atomically, stamped with the machine and the time."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    record = {"benchmark": name, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(), **result}
    return write_json(path, record)


@contextmanager
def figure(path: Path) -> Iterator[Any]:
    """The axes of a new 6x4-inch matplotlib figure (Agg, no display needed); with its legend, saved to `path` when
    the block ends, and closed either way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    try:
        yield ax
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """A plain fixed-width table on stdout."""
    cells = [[str(c) for c in header]] + [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    for i, r in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
