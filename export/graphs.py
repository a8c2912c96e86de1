"""Torch modules -> ONNX graphs with the bundle's tensor names, a dynamic batch and float32 edges."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import onnx
import onnxscript
import torch
from onnxscript import optimizer
from torch import nn
from torch.export import Dim

from vaekit.runtime.bundle import (
    DECODER_FILE,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    ENCODER_FILE,
    ENCODER_INPUTS,
    ENCODER_OUTPUTS,
)
from vaekit.train.models import VAEModule

from .errors import ExportError
from .quantization import quantize_int8

OPSET = 18
EXPORTER = "torch.onnx.export(dynamo=True, optimize=False)"
SIMPLIFIER = f"onnxscript {onnxscript.__version__} optimizer.optimize (constant folding, dead-code elimination)"
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial", "Bernoulli"}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16}
EXAMPLE_BATCH = 2  # not 0 or 1, which torch.export would specialize instead of keeping dynamic


class EncoderGraph(nn.Module):
    """image -> (mean, logvar); computes in the weights' dtype, takes and gives float32."""

    def __init__(self, encoder: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.encoder, self.dtype = encoder, dtype

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.encoder(image.to(self.dtype))
        return mean.float(), logvar.float()


class DecoderGraph(nn.Module):
    """latent -> the likelihood's parameters in bundle order (`image`, then `logits` or `logvar`)."""

    def __init__(self, decoder: nn.Module, dtype: torch.dtype, outputs: list[str]) -> None:
        super().__init__()
        self.decoder, self.dtype, self.outputs = decoder, dtype, outputs

    def forward(self, latent: torch.Tensor) -> tuple[torch.Tensor, ...]:
        params = self.decoder.likelihood_params(latent.to(self.dtype))
        return tuple(params[name].float() for name in self.outputs)


def _checked(step: Callable[[], onnx.ModelProto], what: str) -> onnx.ModelProto:
    """Run one export step and onnx.checker on its result; ExportError naming the step when either fails."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export internals, not the user's business
            model = step()
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the exporter raises many types; the user needs to know which graph failed
        raise ExportError(f"{what} failed ({type(e).__name__}: {str(e)[:500]})") from e
    return model


def to_onnx(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str], what: str) -> onnx.ModelProto:
    """The exporter's graph of `module`, with a dynamic batch dimension and no simplification."""
    return _checked(lambda: torch.onnx.export(
        module.eval(), (example,), input_names=inputs, output_names=outputs, opset_version=OPSET, dynamo=True,
        dynamic_shapes=({0: Dim("batch")},), optimize=False, verbose=False,
    ).model_proto, f"exporting the {what} to ONNX")


def simplify(model: onnx.ModelProto, what: str) -> onnx.ModelProto:
    """The simplification pass (onnxscript's optimizer, what `optimize=True` would run inside the exporter),
    on a copy; `check_parity` keeps its result only where it still matches torch."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    return _checked(lambda: optimizer.optimize(work), f"simplifying the {what} graph")


def all_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Every node of a model: its graph, its subgraphs and its functions."""
    nodes: list[onnx.NodeProto] = []
    graphs = [model.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            nodes.append(node)
            graphs += [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]
    return nodes + [node for function in model.functions for node in function.node]


def check_deterministic(model: onnx.ModelProto, what: str) -> None:
    """The format allows no random ops anywhere in the graphs (sampling happens in the runtime, seeded)."""
    random = sorted({n.op_type for n in all_nodes(model) if n.op_type in RANDOM_OPS})
    if random:
        raise ExportError(f"the {what} graph holds random ops {random}; the bundle format forbids them (sampling "
                          "belongs to the runtime): export a model whose forward pass is deterministic in eval mode")


def export_graphs(model: VAEModule, precision: str) -> dict[str, onnx.ModelProto]:
    """The exporter's plain graphs of the bundle's two files, computing in `precision`'s float type
    (float32 for int8, which `finish_graphs` quantizes)."""
    cfg = model.config
    dtype = TORCH_DTYPES.get(precision, torch.float32)
    work = copy.deepcopy(model).to(dtype)
    outputs = DECODER_OUTPUTS[cfg.likelihood]
    graphs = {
        ENCODER_FILE: to_onnx(EncoderGraph(work.encoder, dtype), torch.rand(EXAMPLE_BATCH, *cfg.image_shape),
                              ENCODER_INPUTS, ENCODER_OUTPUTS, "encoder"),
        DECODER_FILE: to_onnx(DecoderGraph(work.decoder, dtype, outputs), torch.randn(EXAMPLE_BATCH, cfg.latent_dim),
                              DECODER_INPUTS, outputs, "decoder"),
    }
    for name, graph in graphs.items():
        check_deterministic(graph, name)
    return graphs


def finish_graphs(graphs: dict[str, onnx.ModelProto], precision: str, simplified: bool) -> dict[str, bytes]:
    """The files to write, {name: bytes}: `graphs` simplified (or not), then quantized for int8 (each graph in
    the scheme `quantization.scheme_for` picks)."""
    if simplified:
        graphs = {name: simplify(graph, name) for name, graph in graphs.items()}
    if precision == "int8":
        graphs = {name: _checked(lambda g=graph: quantize_int8(g), f"quantizing the {name} graph to int8")
                  for name, graph in graphs.items()}
    return {name: graph.SerializeToString() for name, graph in graphs.items()}
