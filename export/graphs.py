"""Torch modules -> ONNX graphs with the bundle's tensor names, a dynamic batch and float32 edges."""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn
from torch.export import Dim

from vaekit.runtime.bundle import DECODER_FILE, DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_FILE, ENCODER_INPUTS, ENCODER_OUTPUTS
from vaekit.train.models import VAE

from .errors import ExportError

OPSET = 18
EXPORTER = "torch.onnx.export(dynamo=True)"
PRECISIONS = ("float32", "float16", "int8")
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


def to_onnx(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str], what: str) -> onnx.ModelProto:
    """Export `module` with a dynamic batch dimension and check the result with onnx.checker."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.export internals, not the user's business
            program = torch.onnx.export(
                module.eval(), (example,), input_names=inputs, output_names=outputs, opset_version=OPSET,
                dynamo=True, dynamic_shapes=({0: Dim("batch")},), verbose=False,
            )
        model = program.model_proto
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # the exporter raises many types; the user needs to know which graph failed
        raise ExportError(f"exporting the {what} to ONNX failed ({type(e).__name__}: {str(e)[:500]})") from None
    return model


def export_graphs(model: VAE, precision: str) -> dict[str, bytes]:
    """The bundle's two ONNX files, serialized, for `precision` (float32, float16 or int8)."""
    cfg = model.config
    dtype = TORCH_DTYPES.get(precision, torch.float32)  # int8 quantizes a float32 export
    work = copy.deepcopy(model).to(dtype)
    outputs = DECODER_OUTPUTS[cfg.likelihood]
    graphs = {
        ENCODER_FILE: to_onnx(EncoderGraph(work.encoder, dtype), torch.rand(EXAMPLE_BATCH, *cfg.image_shape),
                              ENCODER_INPUTS, ENCODER_OUTPUTS, "encoder"),
        DECODER_FILE: to_onnx(DecoderGraph(work.decoder, dtype, outputs), torch.randn(EXAMPLE_BATCH, cfg.latent_dim),
                              DECODER_INPUTS, outputs, "decoder"),
    }
    if precision == "int8":
        graphs = {name: quantize_int8(graph) for name, graph in graphs.items()}
    return {name: graph.SerializeToString() for name, graph in graphs.items()}


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxruntime's dynamic quantization, after its recommended pre-processing (shape inference and
    basic optimization): int8 weights for Conv and linear layers (Gemm becomes MatMul)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized_path = Path(tmp) / "prepared.onnx", Path(tmp) / "quantized.onnx"
        quant_pre_process(model, prepared)
        quantize_dynamic(prepared, quantized_path, weight_type=QuantType.QInt8)
        quantized = onnx.load(quantized_path)
    onnx.checker.check_model(quantized, full_check=True)
    return quantized
