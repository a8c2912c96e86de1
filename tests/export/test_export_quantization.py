"""int8's two schemes on their own: which graph gets which, and the `weights` scheme's int8 weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from vaekit.export.graphs import export_graphs, simplify
from vaekit.export.quantization import DYNAMIC, WEIGHTS, quantize_weights, scheme_for
from vaekit.train.models import build_model

CONFIGS = {
    "mlp": {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "hidden": [16]},
    "conv": {"kind": "conv", "image_shape": [1, 8, 8], "latent_dim": 4, "hidden": [16], "conv_channels": [4, 8],
             "conv_blocks": 1},
}


@pytest.fixture(scope="module")
def conv() -> tuple[torch.nn.Module, dict[str, onnx.ModelProto]]:
    """A tiny conv model with one all-zero output channel in its decoder's last conv, and its simplified graphs."""
    torch.manual_seed(0)
    model = build_model(CONFIGS["conv"]).eval()
    with torch.no_grad():
        model.decoder.body[-1][-4].body[2].weight[1] = 0  # in the last residual block's first conv
    return model, {name: simplify(graph, name) for name, graph in export_graphs(model, "float32").items()}


def _session(model: onnx.ModelProto, **options: str) -> ort.InferenceSession:
    settings = ort.SessionOptions()
    for key, value in options.items():
        setattr(settings, key, value)
    return ort.InferenceSession(model.SerializeToString(), settings, providers=["CPUExecutionProvider"])


def test_the_scheme_follows_what_the_graph_holds(conv: tuple[torch.nn.Module, dict[str, onnx.ModelProto]]) -> None:
    torch.manual_seed(0)
    mlp = export_graphs(build_model(CONFIGS["mlp"]), "float32")
    assert {scheme_for(g) for g in mlp.values()} == {DYNAMIC}  # integer products, the same on every CPU
    assert {scheme_for(g) for g in conv[1].values()} == {WEIGHTS}  # convolutions and GroupNorm compute in float32


def test_weights_are_int8_with_one_scale_per_output_channel(conv: tuple[torch.nn.Module, dict[str, onnx.ModelProto]]) -> None:
    zero_channels = 0
    for graph in conv[1].values():
        before = {t.name: numpy_helper.to_array(t) for t in graph.graph.initializer}
        after = {t.name: numpy_helper.to_array(t) for t in quantize_weights(graph).graph.initializer}
        weighted = [n for n in graph.graph.node if n.op_type in ("Conv", "Gemm") and n.input[1] in before]
        assert weighted and all(n.input[1] not in after for n in weighted)
        for node in weighted:
            name = node.input[1]
            integers, scale = after[f"{name}_int8"], after[f"{name}_scale"]
            axis = 0  # Conv and the exporter's Gemm (transB=1) keep output channels first
            assert integers.dtype == np.int8 and integers.shape == before[name].shape
            assert scale.dtype == np.float32 and scale.size == before[name].shape[axis]
            assert np.abs(integers).max() <= 127
            np.testing.assert_allclose(integers * scale, before[name], rtol=0, atol=float(scale.max()) / 2 * (1 + 1e-6))
            used = np.abs(integers).reshape(len(integers), -1).max(axis=1)
            zero = ~before[name].reshape(len(integers), -1).any(axis=1)
            assert np.all(used[~zero] == 127) and np.all(used[zero] == 0)  # the full range, and 0 stays 0 (no NaN)
            assert np.all(np.isfinite(scale))
            zero_channels += int(zero.sum())
    assert zero_channels == 1


def test_onnxruntime_folds_the_weights_back_to_float_when_it_loads(conv: tuple[torch.nn.Module, dict[str, onnx.ModelProto]],
                                                                   tmp_path: Path) -> None:
    """The Cast and Mul of every weight depend on constants only: the loaded graph runs float32 Convs on constant
    weights, as a float32 bundle's does (which is why it is as fast), and computes what those weights give."""
    model, graphs = conv
    decoder = quantize_weights(graphs["decoder.onnx"])
    optimized = tmp_path / "optimized.onnx"
    _session(decoder, optimized_model_filepath=str(optimized))
    loaded = onnx.load(optimized)
    assert not [n for n in loaded.graph.node if n.op_type == "Cast" and n.input[0].endswith("_int8")]
    latents = np.random.default_rng(0).standard_normal((5, 4), dtype=np.float32)
    got = _session(decoder).run(["logits"], {"latent": latents})[0]
    with torch.no_grad():
        want = model.decoder.likelihood_params(torch.from_numpy(latents))["logits"].numpy()
    assert 0 < np.abs(got - want).max() <= 5e-2 * max(1.0, float(np.abs(want).max()))  # int8 weights, within int8's tolerance
