"""Refuse ONNX graphs whose tensors keep their data in another file (ONNX "external data"): a bundle's checksums
cover only the files it lists, and onnxruntime would read such data from a path the graph names (relative to the
working folder when the graph comes as bytes). A few lines of protobuf reading, so the runtime needs no onnx;
runtime/js/external_data.mjs is its twin.

The walk follows every place a TensorProto can sit: initializers and sparse initializers of the graph, and the
tensor attributes of every node, in subgraphs (If, Loop, Scan) and in model-local functions too."""

from __future__ import annotations

from .errors import BundleError

# Message -> {field number: message type of that field}, for the fields that can lead to a TensorProto
# (onnx/onnx.proto3: ModelProto.graph 7, .functions 25; GraphProto.node 1, .initializer 5, .sparse_initializer 15;
# FunctionProto.node 7; NodeProto.attribute 5; AttributeProto.t 5, .g 6, .tensors 10, .graphs 11, .sparse_tensor 22,
# .sparse_tensors 23; SparseTensorProto.values 1, .indices 2).
FIELDS: dict[str, dict[int, str]] = {
    "model": {7: "graph", 25: "function"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION, EXTERNAL = 13, 14, 1  # TensorProto.external_data, .data_location


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if byte < 0x80:
            return value, i


def uses_external_data(graph: bytes) -> bool:
    """Whether the serialized ONNX model `graph` has a tensor whose data lives outside it; ValueError when the
    bytes are not a protobuf message."""
    data = memoryview(graph)
    todo = [("model", 0, len(data))]
    while todo:
        kind, i, end = todo.pop()
        while i < end:
            key, i = _varint(data, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, i = _varint(data, i)
                if kind == "tensor" and number == TENSOR_DATA_LOCATION and value == EXTERNAL:
                    return True
            elif wire == 2:
                size, i = _varint(data, i)
                if i + size > end:
                    raise ValueError("a field runs past its message")
                if kind == "tensor" and number == TENSOR_EXTERNAL_DATA:
                    return True
                if number in FIELDS[kind]:
                    todo.append((FIELDS[kind][number], i, i + size))
                i += size
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            else:
                raise ValueError(f"wire type {wire} does not occur in ONNX models")
        if i != end:
            raise ValueError("a field runs past its message")
    return False


def check_graph_bytes(graph: bytes, where: str) -> None:
    """Raise BundleError when `graph` (an ONNX file's bytes) is not a protobuf message or uses external data."""
    try:
        external = uses_external_data(graph)
    except ValueError as e:
        raise BundleError(f"{where}: not an ONNX model ({e}); the bundle is corrupt, re-export it") from e
    if external:
        raise BundleError(f"{where}: the graph reads tensor data from a file outside it (ONNX external data), which "
                          "the bundle's checksums do not cover; re-export the bundle with its weights inside the graph")
