"""Inference: vaekit.runtime (onnxruntime) against torch eager on the same weights, `mlp` and `conv`.

Per model: encode and decode latency at batch 1 (median, p99), throughput at batch 256, fp16 and
int8 bundles (speed and parity error from their manifests), a new process's time to its first
decoded image and its peak memory, and the installed size of a `.[cpu]` environment against one
with torch. On a machine with CUDA (torch and onnxruntime's CUDA provider), the same on the GPU.
The weights are freshly initialised (speed does not depend on their values); parity is measured by
the exporter on Fashion-MNIST test images.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    common_arguments,
    load_fashion,
    percentiles,
    print_table,
    setup,
    write_result,
)

TARGETS = {"decode_b1_ratio": 0.4, "throughput_b256_ratio": 1.2, "cold_start_ratio": 0.25, "peak_memory_ratio": 0.35}
MODELS = {
    "mlp": dict(kind="mlp", hidden=[512, 256], latent_dim=32, activation="silu"),  # the 28x28 recipe below 2 M images
    "conv": dict(kind="conv", conv_channels=[32, 64], hidden=[512], latent_dim=32, activation="elu"),
}
CHILD_RUNTIME = """
import sys, numpy as np
from vaekit.runtime import VAE
vae = VAE.load(sys.argv[1], device="cpu", intra_op_threads=int(sys.argv[2]))
image = vae.decode(np.zeros((1, vae.latent_dim), np.float32))
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # peak RSS (KiB) of this program only
"""
CHILD_TORCH = """
import sys, torch
from vaekit.train.models import build_model
torch.set_num_threads(int(sys.argv[2]))
saved = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
model = build_model(saved["model_config"]).eval()
model.load_state_dict(saved["model"])
with torch.inference_mode():
    image = model.decoder.likelihood_params(torch.zeros(1, model.config.latent_dim))["image"].numpy()
print(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])  # peak RSS (KiB) of this program only
"""


def latency(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    """Median and p99 of `calls` timed calls after a short warm-up."""
    for _ in range(10):
        fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return percentiles(times)


def throughput(fn: Callable[[], Any], batch: int, seconds: float = 1.5) -> float:
    """Items per second of `fn` (one batch per call) over about `seconds`."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * batch / (time.perf_counter() - start)


def alternate(measure: Callable[[Callable[[], Any]], Any], a: Callable[[], Any], b: Callable[[], Any], rounds: int = 2) -> tuple[Any, Any]:
    """`measure` of a and of b, ABAB over `rounds`; the better (faster) result of each (machines are shared)."""
    ra, rb = [], []
    for _ in range(rounds):
        ra.append(measure(a))
        rb.append(measure(b))
    pick = (lambda rs: min(rs, key=lambda r: r["median_ms"])) if isinstance(ra[0], dict) else max
    return pick(ra), pick(rb)


def torch_fns(model: Any, x: np.ndarray, z: np.ndarray, device: str) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """Torch eager encode and decode, numpy in and out like the runtime's."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def encode() -> Any:
        with torch.inference_mode():
            mean, logvar = model.encoder(torch.from_numpy(x).to(device))
            out = mean.cpu().numpy(), logvar.cpu().numpy()
        sync()
        return out

    def decode() -> Any:
        with torch.inference_mode():
            out = model.decoder.likelihood_params(torch.from_numpy(z).to(device))["image"].cpu().numpy()
        sync()
        return out

    return encode, decode


def test_latents(dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The latents every decode is timed on: one zero latent (batch 1) and 256 seeded N(0, I) ones."""
    return np.zeros((1, dim), np.float32), np.random.default_rng(0).standard_normal((256, dim), dtype=np.float32)


def speed(model: Any, bundle: Path, x: np.ndarray, device: str, threads: int, calls: int) -> dict[str, Any]:
    """Batch-1 latencies and batch-256 throughputs of the runtime and torch on `device`."""
    from vaekit.runtime import VAE

    vae = VAE.load(bundle, device=device, intra_op_threads=threads)
    z1, z256 = test_latents(vae.latent_dim)
    model = model.to(device).eval()
    t_enc1, t_dec1 = torch_fns(model, x[:1], z1, device)
    t_enc256, t_dec256 = torch_fns(model, x[:256], z256, device)
    out: dict[str, Any] = {"providers": vae.providers}
    out["encode_b1"] = dict(zip(("runtime", "torch"), alternate(lambda f: latency(f, calls), lambda: vae.encode(x[:1]), t_enc1)))
    out["decode_b1"] = dict(zip(("runtime", "torch"), alternate(lambda f: latency(f, calls), lambda: vae.decode(z1), t_dec1)))
    out["encode_b256_per_s"] = dict(zip(("runtime", "torch"), alternate(lambda f: throughput(f, 256), lambda: vae.encode(x[:256]), t_enc256)))
    out["decode_b256_per_s"] = dict(zip(("runtime", "torch"), alternate(lambda f: throughput(f, 256), lambda: vae.decode(z256), t_dec256)))
    if device == "cpu":
        out["ort_floor_decode_b1"] = ort_floor(bundle, z1, threads, calls)
    model.cpu()
    return out


def ort_floor(bundle: Path, z1: np.ndarray, threads: int, calls: int) -> dict[str, float]:
    """Batch-1 latency of onnxruntime's own `session.run` on the decoder, with nothing of vaekit around it:
    the floor under any onnxruntime-based decode from Python."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(bundle / "decoder.onnx"), options, providers=["CPUExecutionProvider"])
    return latency(lambda: session.run(["image"], {"latent": z1}), calls)


def reduced_speed(bundle: Path, x: np.ndarray, threads: int, calls: int) -> dict[str, Any]:
    """Runtime-only figures of an fp16 or int8 bundle, with the exporter's parity error."""
    from vaekit.runtime import VAE

    vae = VAE.load(bundle, device="cpu", intra_op_threads=threads)
    z1, z256 = test_latents(vae.latent_dim)
    return {"decode_b1": latency(lambda: vae.decode(z1), calls),
            "decode_b256_per_s": throughput(lambda: vae.decode(z256), 256),
            "encode_b256_per_s": throughput(lambda: vae.encode(x[:256]), 256),
            "parity_max_abs_diff": vae.manifest.parity.max_abs_diff}


def cold_start(script: str, target: Path, threads: int, rounds: int = 3) -> dict[str, float]:
    """A new Python process that loads `target` and decodes one image: best wall time of `rounds`, its peak RSS."""
    times, rss = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", script, str(target), str(threads)], capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t)
        rss.append(int(done.stdout.split()[-1]) / 1024)
    return {"seconds": min(times), "peak_rss_mib": min(rss)}


def tree_size(paths: list[Path]) -> int:
    return sum(f.stat().st_size for p in paths for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file() and not f.is_symlink())


def dist_size(name: str, seen: set[str]) -> int:
    """Bytes installed by distribution `name` and, recursively, its requirements not in `seen`."""
    key = name.lower().replace("_", "-")
    if key in seen:
        return 0
    seen.add(key)
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return 0
    total = sum(f.locate().stat().st_size for f in dist.files or [] if f.locate().is_file())
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        dep = req.split(";")[0].split("[")[0].strip()
        for sep in "<>=!~ (":
            dep = dep.split(sep)[0]
        total += dist_size(dep, seen)
    return total


def installed_sizes() -> dict[str, Any]:
    """A fresh venv with `pip install -e '.[cpu]'` (its site-packages, pip excluded), and the same plus torch
    (torch and its requirements as installed in this environment)."""
    with tempfile.TemporaryDirectory(prefix="vaekit-cpu-env-") as tmp:
        venv.create(tmp, with_pip=True)
        python = Path(tmp) / "bin" / "python"
        t = time.perf_counter()
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", f"{ROOT}[cpu]"],
                       check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t
        site = next(Path(tmp).glob("lib/python*/site-packages"))
        has_torch = (site / "torch").exists()
        cpu = tree_size([p for p in site.iterdir() if not p.name.startswith(("pip", "_distutils_hack"))])
        seen = {n.lower().replace("_", "-") for n in ("numpy", "onnxruntime", "vaekit", "pip")}
        for p in site.glob("*.dist-info"):
            seen.add(p.name.split("-")[0].lower().replace("_", "-"))
    torch_extra = dist_size("torch", seen)
    return {"cpu_env_mib": cpu / 2**20, "cpu_env_has_torch": has_torch, "torch_env_mib": (cpu + torch_extra) / 2**20,
            "torch_and_deps_mib": torch_extra / 2**20, "install_seconds": seconds}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__)
    common_arguments(p)
    p.add_argument("--calls", type=int, default=300, help="timed calls per batch-1 latency")
    p.add_argument("--skip-install-size", action="store_true", help="skip the throwaway-venv size measurement")
    args, threads = setup(p, argv)
    from vaekit.export.api import export_model
    from vaekit.runtime.devices import CUDA_PROVIDER, cuda_unavailable_reason
    from vaekit.train.models import ModelConfig, build_model

    _, test = load_fashion(args.data)
    x = test[:256].astype(np.float32) / 255
    cuda_reason = None if torch.cuda.is_available() else "torch sees no CUDA GPU"
    cuda_reason = cuda_reason or cuda_unavailable_reason()
    result: dict[str, Any] = {"threads": threads, "targets": TARGETS, "models": {}}
    with tempfile.TemporaryDirectory(prefix="vaekit-bench-") as tmp:
        for name, spec in MODELS.items():
            torch.manual_seed(0)
            model = build_model(ModelConfig(**spec)).eval()
            bundles = {}
            for precision in ("float32", "float16", "int8"):
                bundles[precision] = export_model(
                    model, Path(tmp) / f"{name}-{precision}", heldout=x[:64], provenance={"data": "fashion-mnist", "weights": "initial"},
                    dtype="float16" if precision == "float16" else "float32", quantize="int8" if precision == "int8" else None)
            checkpoint = Path(tmp) / f"{name}.pt"
            torch.save({"model_config": model.config.to_dict(), "model": model.state_dict()}, checkpoint)
            entry: dict[str, Any] = {"config": spec, "cpu": speed(model, bundles["float32"], x, "cpu", threads, args.calls)}
            entry["reduced"] = {prec: reduced_speed(bundles[prec], x, threads, args.calls) for prec in ("float16", "int8")}
            runtime_cold, torch_cold = (cold_start(CHILD_RUNTIME, bundles["float32"], threads),
                                        cold_start(CHILD_TORCH, checkpoint, threads))
            entry["cold_start"] = {"runtime": runtime_cold, "torch": torch_cold}
            if cuda_reason is None:
                entry["cuda"] = {"device": torch.cuda.get_device_name(0), **speed(model, bundles["float32"], x, "cuda", threads, args.calls)}
                assert entry["cuda"]["providers"][0] == CUDA_PROVIDER
            else:
                entry["cuda"] = {"not_measured": f"no GPU in this run ({cuda_reason})"}
            result["models"][name] = entry
            print(f"{name}: done", flush=True)
    result["installed_size"] = None if args.skip_install_size else installed_sizes()
    result["ratios"] = ratios(result)
    report(result)
    print(f"wrote {write_result('inference', result)}")
    return result


def ratios(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """runtime/torch for each target figure, per model (lower is better for times and memory)."""
    out = {}
    for name, m in result["models"].items():
        cpu, cold = m["cpu"], m["cold_start"]
        out[name] = {
            "decode_b1_ratio": cpu["decode_b1"]["runtime"]["median_ms"] / cpu["decode_b1"]["torch"]["median_ms"],
            "encode_b1_ratio": cpu["encode_b1"]["runtime"]["median_ms"] / cpu["encode_b1"]["torch"]["median_ms"],
            "throughput_b256_ratio": cpu["decode_b256_per_s"]["runtime"] / cpu["decode_b256_per_s"]["torch"],
            "encode_throughput_b256_ratio": cpu["encode_b256_per_s"]["runtime"] / cpu["encode_b256_per_s"]["torch"],
            "cold_start_ratio": cold["runtime"]["seconds"] / cold["torch"]["seconds"],
            "peak_memory_ratio": cold["runtime"]["peak_rss_mib"] / cold["torch"]["peak_rss_mib"],
        }
    return out


def report(result: dict[str, Any]) -> None:
    rows = []
    for name, m in result["models"].items():
        cpu, cold, r = m["cpu"], m["cold_start"], result["ratios"][name]
        for label, key in (("encode b=1", "encode_b1"), ("decode b=1", "decode_b1")):
            rows.append([name, f"{label} median / p99 (ms)", f"{cpu[key]['runtime']['median_ms']:.3f} / {cpu[key]['runtime']['p99_ms']:.3f}",
                         f"{cpu[key]['torch']['median_ms']:.3f} / {cpu[key]['torch']['p99_ms']:.3f}",
                         f"{cpu[key]['runtime']['median_ms'] / cpu[key]['torch']['median_ms']:.2f}x"])
        for label, key in (("encode b=256 (images/s)", "encode_b256_per_s"), ("decode b=256 (images/s)", "decode_b256_per_s")):
            rows.append([name, label, f"{cpu[key]['runtime']:.0f}", f"{cpu[key]['torch']:.0f}", f"{cpu[key]['runtime'] / cpu[key]['torch']:.2f}x"])
        rows.append([name, "cold start to first image (s)", f"{cold['runtime']['seconds']:.2f}", f"{cold['torch']['seconds']:.2f}", f"{r['cold_start_ratio']:.2f}x"])  # noqa: E501 (a table row or browser flags, kept on one line)
        rows.append([name, "peak memory of that process (MiB)", f"{cold['runtime']['peak_rss_mib']:.0f}", f"{cold['torch']['peak_rss_mib']:.0f}", f"{r['peak_memory_ratio']:.2f}x"])  # noqa: E501 (a table row or browser flags, kept on one line)
        for prec, red in m["reduced"].items():
            rows.append([name, f"{prec} bundle: decode b=1 ms / b=256 images/s", f"{red['decode_b1']['median_ms']:.3f} / {red['decode_b256_per_s']:.0f}",  # noqa: E501 (a table row or browser flags, kept on one line)
                         "", f"max |diff| image {red['parity_max_abs_diff']['decoder.image']:.2g}"])
    size = result["installed_size"]
    if size:
        rows.append(["-", "installed size (MiB)", f"{size['cpu_env_mib']:.0f}", f"{size['torch_env_mib']:.0f}", f"{size['cpu_env_mib'] / size['torch_env_mib']:.2f}x"])  # noqa: E501 (a table row or browser flags, kept on one line)
    print_table(f"Inference on CPU, {result['threads']} thread(s): vaekit.runtime vs torch eager, same weights",
                ["model", "figure", "runtime", "torch", "runtime/torch"], rows)
if __name__ == "__main__":
    main()
