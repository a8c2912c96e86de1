"""The graph steps on their own: the simplification pass is kept only where parity holds; no random ops."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
import torch

from vaekit.export import ExportError, ParityError
from vaekit.export.graphs import (
    check_deterministic,
    export_graphs,
    finish_graphs,
    to_onnx,
)
from vaekit.export.parity import check_parity
from vaekit.train.models import build_model

CONFIG = {"kind": "mlp", "image_shape": [1, 8, 8], "latent_dim": 3, "likelihood": "bernoulli", "hidden": [16]}


@pytest.fixture(scope="module")
def models() -> tuple[torch.nn.Module, torch.nn.Module]:
    """A tiny model, and a copy whose encoder is off by 0.01: graphs of the one never match the other."""
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.encoder.head[-1].bias.add_(0.01)
    return model, other


@pytest.fixture(scope="module")
def plain(models: tuple[torch.nn.Module, torch.nn.Module]) -> dict[str, onnx.ModelProto]:
    """The exporter's unsimplified graphs of the tiny model."""
    return export_graphs(models[0], "float32")


@pytest.fixture(scope="module")
def heldout() -> np.ndarray:
    return np.random.default_rng(0).random((16, 1, 8, 8), dtype=np.float32)


def test_simplification_shrinks_the_graphs(models: tuple[torch.nn.Module, torch.nn.Module],
                                          plain: dict[str, onnx.ModelProto], heldout: np.ndarray) -> None:
    graphs, figures = check_parity(models[0], lambda simplified: finish_graphs(plain, "float32", simplified), heldout,
                                   "float32")
    assert figures["simplification"]["kept"] is True
    for name, data in graphs.items():
        assert len(onnx.load_from_string(data).graph.node) < len(plain[name].graph.node)


def test_simplification_is_dropped_where_it_breaks_parity(models: tuple[torch.nn.Module, torch.nn.Module],
                                                         plain: dict[str, onnx.ModelProto], heldout: np.ndarray) -> None:
    """When the simplified graphs differ from torch but the plain ones match, the plain ones are written."""
    model, other = models
    wrong = export_graphs(other, "float32")
    builds = {True: finish_graphs(wrong, "float32", True), False: finish_graphs(plain, "float32", False)}
    graphs, figures = check_parity(model, builds.__getitem__, heldout, "float32")
    assert graphs == builds[False] and figures["passed"] is True
    simplification = figures["simplification"]
    assert simplification["kept"] is False
    assert "the simplified graphs differ from torch beyond the limits (encoder.mean: max abs diff" in simplification["reason"]
    builds[False] = builds[True]
    with pytest.raises(ParityError, match=r"float32 ONNX graphs do not match torch \(encoder\.mean.*nothing was written") as e:
        check_parity(model, builds.__getitem__, heldout, "float32")
    assert e.value.figures["passed"] is False and e.value.figures["max_abs_diff"]["encoder.mean"] > 1e-3


class Noisy(torch.nn.Module):
    """A module that samples inside its forward pass, which the bundle format forbids."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.randn_like(x)


def test_random_ops_are_refused() -> None:
    graph = to_onnx(Noisy(), torch.rand(2, 3), ["latent"], ["image"], "noisy")
    with pytest.raises(ExportError, match=r"the noisy graph holds random ops \['RandomNormalLike'\]; the bundle format forbids"):
        check_deterministic(graph, "noisy")
