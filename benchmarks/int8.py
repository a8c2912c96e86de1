"""int8: the two quantization schemes side by side against float32, on the MLP and the conv family.

Per model: the graphs' size, decode latency at batch 1, encode and decode throughput at batch 64 (onnxruntime
CPU sessions, 1 thread unless --threads, runs interleaved and the best of --rounds kept, since machines are
shared), and parity (worst output's share of its int8 limit) for the float32 graphs quantized in each scheme:
`dynamic` (onnxruntime's dynamic quantization, integer products) and `weights` (int8 weights computed in
float32). The scheme export picks for the model is marked. Weights are freshly initialised (speed does not
depend on their values) and the parity inputs are seeded random images: tests/export and docs/export.md give
trained models' figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_result  # noqa: E402

MODELS = {  # the recipes of vaekit.train.config.recipe_for for 28x28 grayscale (runs below 2 M images), 32x32 and 64x64 RGB
    "mlp 1x28x28": dict(kind="mlp", image_shape=(1, 28, 28), hidden=[512, 256], latent_dim=32, activation="silu"),
    "conv 3x32x32": dict(kind="conv", image_shape=(3, 32, 32), hidden=[], latent_dim=32, activation="silu",
                         likelihood="gaussian", variance="shared"),
    "conv 3x64x64": dict(kind="conv", image_shape=(3, 64, 64), hidden=[], latent_dim=64, activation="silu",
                         likelihood="gaussian", variance="shared"),
}
BATCH = 64


def sessions(graphs: dict[str, bytes], threads: int) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return {name: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]) for name, data in graphs.items()}


def best_seconds(fn: Any, repeats: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def timings(variants: dict[str, dict[str, bytes]], image_shape: tuple[int, ...], latent_dim: int, threads: int,
            rounds: int) -> dict[str, dict[str, float]]:
    """Per variant: decode ms at batch 1, encode and decode images/s at batch BATCH; ABC.. rounds, best kept."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *image_shape), dtype=np.float32)
    z = rng.standard_normal((BATCH, latent_dim), dtype=np.float32)
    live = {name: sessions(graphs, threads) for name, graphs in variants.items()}
    best: dict[str, dict[str, float]] = {name: {"decode_b1_ms": np.inf, "encode_per_s": 0.0, "decode_per_s": 0.0} for name in variants}
    for _ in range(rounds):
        for name, s in live.items():
            encoder, decoder = s["encoder.onnx"], s["decoder.onnx"]
            b = best[name]
            b["decode_b1_ms"] = min(b["decode_b1_ms"], 1e3 * best_seconds(lambda: decoder.run(None, {"latent": z[:1]}), 50))
            b["encode_per_s"] = max(b["encode_per_s"], BATCH / best_seconds(lambda: encoder.run(None, {"image": x}), 3))
            b["decode_per_s"] = max(b["decode_per_s"], BATCH / best_seconds(lambda: decoder.run(None, {"latent": z}), 3))
    return best


def measure_model(spec: dict[str, Any], threads: int, rounds: int) -> dict[str, Any]:
    import onnx
    import torch

    from vaekit.export.graphs import export_graphs, finish_graphs
    from vaekit.export.parity import measure
    from vaekit.export.quantization import DYNAMIC, WEIGHTS, quantize_dynamic, quantize_weights, scheme_for
    from vaekit.train.models import build_model

    torch.manual_seed(0)
    model = build_model(spec).eval()
    heldout = np.random.default_rng(1).random((64, *spec["image_shape"]), dtype=np.float32)
    floats = finish_graphs(export_graphs(model, "float32"), "float32", True)  # simplified, as export writes them
    parsed = {name: onnx.load_from_string(data) for name, data in floats.items()}
    variants = {"float32": floats}
    for scheme, quantize in ((DYNAMIC, quantize_dynamic), (WEIGHTS, quantize_weights)):
        variants[f"int8 {scheme}"] = {name: quantize(graph).SerializeToString() for name, graph in parsed.items()}
    out: dict[str, Any] = {"config": spec, "export_scheme": scheme_for(parsed["encoder.onnx"]), "variants": {}}
    speed = timings(variants, spec["image_shape"], spec["latent_dim"], threads, rounds)
    for name, graphs in variants.items():
        size = sum(len(g) for g in graphs.values())
        entry = {"bytes": size, **speed[name]}
        if name != "float32":
            figures = measure(model, graphs, heldout, "int8")
            entry["parity_worst_share"] = max(figures["max_abs_diff"][k] / figures["limit"][k] for k in figures["limit"])
        out["variants"][name] = entry
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default: 1)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds, the best kept (default: 3)")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"threads": args.threads, "batch": BATCH, "models": {}}
    rows = []
    for label, spec in MODELS.items():
        entry = measure_model(spec, args.threads, args.rounds)
        result["models"][label] = entry
        base = entry["variants"]["float32"]
        for name, v in entry["variants"].items():
            mark = " (export)" if name == f"int8 {entry['export_scheme']}" else ""
            rows.append([label, name + mark, f"{v['bytes'] / 1e6:.2f} MB ({v['bytes'] / base['bytes']:.2f}x)",
                         f"{v['decode_b1_ms']:.3f} ms ({v['decode_b1_ms'] / base['decode_b1_ms']:.2f}x)",
                         f"{v['encode_per_s']:.0f}/s ({v['encode_per_s'] / base['encode_per_s']:.2f}x)",
                         f"{v['decode_per_s']:.0f}/s ({v['decode_per_s'] / base['decode_per_s']:.2f}x)",
                         f"{v['parity_worst_share']:.0%}" if "parity_worst_share" in v else "-"])
        print(f"{label}: done", flush=True)
    print_table(f"int8 schemes vs float32 ({args.threads} thread(s), onnxruntime CPU)",
                ["model", "graphs", "size", "decode b1", f"encode b{BATCH}", f"decode b{BATCH}", "parity (share of limit)"], rows)
    print(f"wrote {write_result('int8', result)}")
    return result


if __name__ == "__main__":
    main()
