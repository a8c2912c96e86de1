"""int8 bundles: two quantization schemes, and which graph gets which (docs/bundle-format.md, "int8", says why).

- `dynamic` (graphs without convolutions or normalizations: the MLP family): onnxruntime's dynamic
  quantization, integer products. Weights per output channel in a 7-bit range (`reduce_range`): with 8-bit
  signed weights, onnxruntime's U8S8 kernels for AVX2 and AVX-512 without VNNI add pairs of products in
  saturating 16-bit lanes, VNNI and ARM kernels do not; 7-bit weights cannot saturate, so every CPU computes
  the same integers.
- `weights` (graphs with a convolution or a normalization: the conv family): int8 weights with one scale per
  output channel, turned back into float32 in the graph (Cast, Mul), which onnxruntime folds into constants
  when it loads the graph; every op computes in float32. GroupNorm rescales each group by its own spread, far
  smaller than the tensor-wide range one dynamic uint8 scale covers, so dynamic quantization's rounding error
  grows layer after layer (an untrained test model used 146% of its parity limit, 41% here); onnxruntime's
  integer Conv also keeps one weight scale per tensor and ran 3-5x slower than float Conv (benchmarks/int8.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

DYNAMIC, WEIGHTS = "dynamic", "weights"
# ops whose graphs take the `weights` scheme (normalizations in every form the exporters write)
FLOAT_COMPUTE_OPS = {"Conv", "InstanceNormalization", "GroupNormalization", "LayerNormalization", "BatchNormalization"}
WEIGHT_BITS = 8  # the `weights` scheme computes in float, so no integer kernel can saturate: the full signed range
SCHEMES: dict[str, dict[str, Any]] = {
    DYNAMIC: {
        "scheme": DYNAMIC,
        "method": "onnxruntime.quantization.quantize_dynamic",
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": True,
        "activations": "uint8, scale computed per tensor at run time (DynamicQuantizeLinear)",
    },
    WEIGHTS: {
        "scheme": WEIGHTS,
        "method": "int8 weights turned back into float32 in the graph (Cast, then Mul by the scale)",
        "weight_type": "int8, symmetric (-127..127)",
        "per_channel": True,
        "reduce_range": False,
        "activations": "float32 (every op computes in float32)",
    },
}


def scheme_for(model: onnx.ModelProto) -> str:
    """The scheme a graph gets: `weights` when it holds a convolution or a normalization, else `dynamic`."""
    return WEIGHTS if any(node.op_type in FLOAT_COMPUTE_OPS for node in model.graph.node) else DYNAMIC


def quantization_record(graphs: dict[str, onnx.ModelProto]) -> dict[str, dict[str, Any]]:
    """The manifest's `quantization`: {graph file: its scheme's description}."""
    return {name: SCHEMES[scheme_for(graph)] for name, graph in sorted(graphs.items())}


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` (float32) with int8 weights in the scheme `scheme_for` picks."""
    return quantize_weights(model) if scheme_for(model) == WEIGHTS else quantize_dynamic(model)


def quantize_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's dynamic quantization (SCHEMES["dynamic"]), after its recommended pre-processing (ONNX shape
    inference and basic optimization; its symbolic shape inference, meant for transformers, cannot read the
    exporter's Constant nodes)."""
    from onnxruntime.quantization import QuantType, quant_pre_process
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        source, prepared, quantized = (Path(tmp) / f"{step}.onnx" for step in ("source", "prepared", "quantized"))
        onnx.save(model, source)  # a path, not a ModelProto: the pre-processing mishandles in-memory models
        quant_pre_process(source, prepared, skip_symbolic_shape=True)
        ort_quantize_dynamic(prepared, quantized, weight_type=QuantType.QInt8,
                             per_channel=SCHEMES[DYNAMIC]["per_channel"], reduce_range=SCHEMES[DYNAMIC]["reduce_range"])
        return onnx.load(quantized)


def output_axis(node: onnx.NodeProto) -> int:
    """The axis of a Conv, Gemm or MatMul weight that indexes the node's output channels."""
    if node.op_type == "Conv":
        return 0
    transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute)
    return 0 if transposed else 1


def quantize_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose Conv, Gemm and MatMul weights are stored as int8 with one float32 scale per output
    channel (SCHEMES["weights"]), and turned back into float32 by a Cast and a Mul, which depend on constants
    only: onnxruntime folds them when it loads the graph, so the ops run as fast as in float32."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    initializers = {t.name: t for t in graph.initializer}
    axes = {node.input[1]: output_axis(node) for node in graph.node
            if node.op_type in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in initializers}
    limit = 2 ** (WEIGHT_BITS - 1) - 1
    nodes = []
    for name, axis in axes.items():
        weights = numpy_helper.to_array(initializers[name])
        if weights.dtype != np.float32 or weights.ndim < 2:
            continue
        others = tuple(i for i in range(weights.ndim) if i != axis)
        scale = np.max(np.abs(weights), axis=others, keepdims=True) / limit
        scale = np.where(scale > 0, scale, 1).astype(np.float32)  # an all-zero channel stays 0
        integers = np.clip(np.rint(weights / scale), -limit, limit).astype(np.int8)
        graph.initializer.remove(initializers[name])
        graph.initializer.extend([numpy_helper.from_array(integers, f"{name}_int8"), numpy_helper.from_array(scale, f"{name}_scale")])
        nodes += [helper.make_node("Cast", [f"{name}_int8"], [f"{name}_float"], f"{name}_cast", to=onnx.TensorProto.FLOAT),
                  helper.make_node("Mul", [f"{name}_float", f"{name}_scale"], [name], f"{name}_dequantize")]
    nodes += graph.node
    del graph.node[:]
    graph.node.extend(nodes)
    return out
