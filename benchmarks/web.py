"""Cross-runtime speed: the same bundle in the Python runtime (onnxruntime), in Node.js (vaekit's JavaScript
runtime on onnxruntime-node) and in the browser (a `vaekit-web` site in headless Debian Chromium, onnxruntime-web).

Per runtime: decode latency at batch 1 (median, p99), images/s decoding batches of 64, and the time from start to
the first decoded image (Python and Node: a fresh process, from spawn to its first image; the browser: page load
to the first sample grid drawn, which includes checking the checksums and the conformance vectors). Ratios are
against the Python runtime. One thread everywhere (onnxruntime's intra-op threads; the page's wasm runs one thread
because a plain static host does not make it cross-origin isolated). The model is the 28x28 `mlp` recipe of
inference.py, freshly initialised (speed does not depend on the weights; no data set needed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ui"))  # the site-serving helpers
from common import ROOT, percentiles, print_table, write_result  # noqa: E402
from inference import MODELS  # noqa: E402

IMAGE_SHAPE = [1, 28, 28]
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_int8")
BLOCK = 10  # batch-1 latency is timed over blocks of this many calls: browsers coarsen their clock to 0.1 ms
FIRST_IMAGE_PY = """
import sys
from vaekit.runtime import VAE
VAE.load(sys.argv[1], device="cpu", intra_op_threads=1, inter_op_threads=1).sample(1, seed=0)
print("first-image", flush=True)
"""
BROWSER_TIMINGS = """async ([calls, seconds, BLOCK]) => {
  const vae = window.vaekit.vae;
  const one = vae.priorLatents(1, {seed: 0}), batch = vae.priorLatents(64, {seed: 0});
  for (let i = 0; i < 10; i++) await vae.decode(one);
  const times = [];
  for (let i = 0; i < calls / BLOCK; i++) {
    const t = performance.now();
    for (let j = 0; j < BLOCK; j++) await vae.decode(one);
    times.push((performance.now() - t) / BLOCK);
  }
  let images = 0; const start = performance.now();
  while (performance.now() - start < seconds * 1000) { await vae.decode(batch); images += 64; }
  return {times, images_per_s: images / ((performance.now() - start) / 1000), backend: vae.backend,
          first_image_ms: performance.getEntriesByName('vaekit:first-image')[0].startTime};
}"""


def simd_flags() -> list[str]:
    """The CPU's SIMD features that change onnxruntime's kernels (results differ between AVX2 and AVX-512 machines)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return [f for f in SIMD_FLAGS if f in flags]
    return []


def make_bundle(out: Path) -> Path:
    """The benchmark's bundle: the `mlp` recipe, freshly initialised, exported in float32."""
    import torch

    from vaekit.export import export_model
    from vaekit.train.models import build_model

    torch.manual_seed(0)
    model = build_model({**MODELS["mlp"], "image_shape": IMAGE_SHAPE, "likelihood": "bernoulli"}).eval()
    heldout = np.random.default_rng(0).random((64, *IMAGE_SHAPE), dtype=np.float32)
    return Path(export_model(model, out, heldout=heldout, provenance={"data": "random", "epochs": 0, "metrics": {}}))


def time_to_first_image(command: list[str], rounds: int) -> float:
    """Median seconds from spawning `command` to its line "first-image"."""
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as child:
            assert child.stdout is not None and child.stdout.readline().strip() == "first-image", command
            seconds.append(time.perf_counter() - start)
            child.kill()
    return float(np.median(seconds))


def python_runtime(bundle: Path, calls: int, seconds: float, rounds: int) -> dict[str, Any]:
    from vaekit.runtime import VAE

    vae = VAE.load(bundle, device="cpu", intra_op_threads=1, inter_op_threads=1)
    one, batch = vae.prior_latents(1, seed=0), vae.prior_latents(64, seed=0)
    for _ in range(10):
        vae.decode(one)
    times = []
    for _ in range(calls // BLOCK):
        t = time.perf_counter()
        for _ in range(BLOCK):
            vae.decode(one)
        times.append((time.perf_counter() - t) / BLOCK)
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        vae.decode(batch)
        images += 64
    return {"backend": "onnxruntime cpu", "decode_b1": percentiles(times),
            "b64_images_per_s": images / (time.perf_counter() - start),
            "first_image_s": time_to_first_image([sys.executable, "-c", FIRST_IMAGE_PY, str(bundle)], rounds)}


def node_runtime(bundle: Path, calls: int, seconds: float, rounds: int) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        sys.exit("benchmarks/web.py needs Node.js (node) and `npm ci`")
    script = str(Path(__file__).with_name("web_node.mjs"))
    done = subprocess.run([node, script, str(bundle), str(calls), str(seconds), str(BLOCK)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["first_image_s"] = time_to_first_image([node, script, str(bundle), "0", "0", "1"], rounds)
    return result


def browser_runtime(bundle: Path, site_root: Path, calls: int, seconds: float, rounds: int) -> dict[str, Any]:
    from web_site import serve, site_page

    from vaekit.ui.site import build_site

    site = build_site(bundle, site_root / "site")
    firsts, result = [], {}
    with serve(site) as url:
        for i in range(rounds):  # a fresh browser each round: nothing cached
            with site_page(url) as page:
                if page.get_attribute("body", "data-state") != "ready":
                    sys.exit(f"the page failed: {page.text_content('#error')}")
                if i == 0:
                    result = page.evaluate(BROWSER_TIMINGS, [calls, seconds, BLOCK])
                else:
                    result["first_image_ms"] = page.evaluate("performance.getEntriesByName('vaekit:first-image')[0].startTime")
                firsts.append(result["first_image_ms"] / 1e3)
    return {"backend": f"onnxruntime-web {result['backend']} (Chromium)",
            "decode_b1": percentiles(np.asarray(result["times"]) / 1e3),
            "b64_images_per_s": result["images_per_s"], "first_image_s": float(np.median(firsts))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=300, help=f"timed batch-1 decodes per runtime, in blocks of {BLOCK} (default 300)")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds of batch-64 decoding per runtime (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="fresh starts timed per runtime (median; default 3)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = make_bundle(Path(tmp) / "bundle")
        runs = {"python": python_runtime(bundle, args.calls, args.seconds, args.rounds),
                "node": node_runtime(bundle, args.calls, args.seconds, args.rounds),
                "browser": browser_runtime(bundle, Path(tmp), args.calls, args.seconds, args.rounds)}
    base = runs["python"]
    ratios = {name: {"decode_b1_latency": run["decode_b1"]["median_ms"] / base["decode_b1"]["median_ms"],
                     "b64_throughput": run["b64_images_per_s"] / base["b64_images_per_s"],
                     "first_image": run["first_image_s"] / base["first_image_s"]} for name, run in runs.items()}
    print_table("Decoding the 28x28 mlp bundle, 1 thread (ratios against the Python runtime; latency and first "
                "image: lower is better, throughput: higher is better)",
                ["runtime", "backend", "decode b1 median ms", "x python", "b64 images/s", "x python", "first image s",
                 "x python"],
                [[name, run["backend"], run["decode_b1"]["median_ms"], ratios[name]["decode_b1_latency"],
                  run["b64_images_per_s"], ratios[name]["b64_throughput"], run["first_image_s"],
                  ratios[name]["first_image"]] for name, run in runs.items()])
    path = write_result("web", {"simd": simd_flags(), "model": {**MODELS["mlp"], "image_shape": IMAGE_SHAPE}, "threads": 1,
                                "settings": vars(args), "runs": runs, "ratios_vs_python": ratios})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
