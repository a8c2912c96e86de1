"""Bundles exported from really trained runs, checked with plain onnxruntime against torch and the spec."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from bundle_helpers import spec_log_prior
from export_helpers import BATCH_SIZES, FILES, TOLERANCES, Bundle, grow, session

from vaekit.export.api import bare_name
from vaekit.export.export_cli import main
from vaekit.export.graphs import all_nodes
from vaekit.runtime.bundle import SCORE_QUANTILE_LEVELS, read_manifest
from vaekit.runtime.manifest import Prior
from vaekit.runtime.prior import standard_normal
from vaekit.train import load_run

DECODER_OUTPUTS = {"bernoulli": ["image", "logits"], "gaussian": ["image", "logvar"]}


def test_files_and_checksums(bundle: Bundle) -> None:
    manifest = bundle.manifest()
    written = {p.relative_to(bundle.path).as_posix() for p in bundle.path.rglob("*") if p.is_file()}
    assert written == FILES | set(manifest["files"])
    assert set(manifest["files"]) == {"encoder.onnx", "decoder.onnx"} | {f"conformance/{name}.npy" for name in (
        "encoder.image", "encoder.mean", "encoder.logvar", "decoder.latent", "decoder.image",
        f"decoder.{DECODER_OUTPUTS[manifest['likelihood']][1]}")}
    for name in manifest["files"]:  # every file is pinned, the conformance vectors too
        data = (bundle.path / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert read_manifest(bundle.path).to_json() == manifest  # the runtime's reader accepts it, checksums included


def test_tensor_names_types_and_dynamic_batch(bundle: Bundle) -> None:
    manifest = bundle.manifest()
    c, h, w = manifest["image_shape"]
    d = manifest["latent_dim"]
    outputs = DECODER_OUTPUTS[manifest["likelihood"]]
    encoder, decoder = session(bundle.path / "encoder.onnx"), session(bundle.path / "decoder.onnx")
    assert [(i.name, i.type) for i in encoder.get_inputs()] == [("image", "tensor(float)")]
    assert [(o.name, o.type) for o in encoder.get_outputs()] == [("mean", "tensor(float)"), ("logvar", "tensor(float)")]
    assert [(i.name, i.type) for i in decoder.get_inputs()] == [("latent", "tensor(float)")]
    assert [(o.name, o.type) for o in decoder.get_outputs()] == [(n, "tensor(float)") for n in outputs]
    assert manifest["tensors"] == {"encoder": {"inputs": ["image"], "outputs": ["mean", "logvar"]},
                                   "decoder": {"inputs": ["latent"], "outputs": outputs}}
    # the batch dimension is symbolic ("batch") in the graphs' declared inputs and outputs, the others fixed
    def declared(graph: ort.InferenceSession) -> dict[str, list]:
        return {t.name: t.shape for t in graph.get_inputs() + graph.get_outputs()}

    assert declared(encoder) == {"image": ["batch", c, h, w], "mean": ["batch", d], "logvar": ["batch", d]}
    assert declared(decoder) == {"latent": ["batch", d], "image": ["batch", c, h, w], outputs[1]: ["batch", c, h, w]}
    images = grow(load_run(bundle.run).heldout(), max(BATCH_SIZES))
    for n in BATCH_SIZES:
        mean, logvar = encoder.run(None, {"image": images[:n]})
        assert mean.shape == logvar.shape == (n, d) and mean.dtype == logvar.dtype == np.float32
        params = dict(zip(outputs, decoder.run(None, {"latent": mean})))
        assert params["image"].shape == (n, c, h, w) and params["image"].dtype == np.float32
        assert params["image"].min() >= 0 and params["image"].max() <= 1
        second = params[outputs[1]]
        assert second.dtype == np.float32 and np.broadcast_shapes(second.shape, (n, c, h, w)) == (n, c, h, w)


def test_graphs_use_standard_deterministic_ops(bundle: Bundle) -> None:
    """Only ops of the default ONNX domain (readable by any ONNX runtime), none of them random."""
    for name in ("encoder.onnx", "decoder.onnx"):
        model = onnx.load(bundle.path / name)
        nodes = all_nodes(model)
        assert nodes and {n.domain for n in nodes} == {""}
        assert not [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
        assert not {n.op_type for n in nodes if n.op_type.startswith("Random") or n.op_type in ("Multinomial", "Bernoulli")}


def test_onnxruntime_matches_torch(bundle: Bundle) -> None:
    """Parity measured here, independently of the exporter's own check: held-out images and fresh random
    latents (another seed than the exporter's) at batch sizes 1, 7 and 64."""
    run = load_run(bundle.run)
    tolerance = TOLERANCES[bundle.precision]
    outputs = DECODER_OUTPUTS[run.model_config.likelihood]
    encoder, decoder = session(bundle.path / "encoder.onnx"), session(bundle.path / "decoder.onnx")
    images = grow(run.heldout(), max(BATCH_SIZES))
    latents = np.random.default_rng(123).standard_normal((max(BATCH_SIZES), run.model_config.latent_dim), dtype=np.float32)

    def check(expected: list[torch.Tensor], got: list[np.ndarray]) -> None:
        for ref, out in zip(expected, got):
            ref = ref.numpy()
            scale = 1.0 if bundle.precision == "float32" else max(1.0, float(np.abs(ref).max()))
            assert out.shape == ref.shape and np.abs(out - ref).max() <= tolerance * scale

    with torch.no_grad():
        for n in BATCH_SIZES:
            expected = run.model.encoder(torch.from_numpy(images[:n]))
            check(list(expected), encoder.run(None, {"image": images[:n]}))
            for z in (latents[:n], expected[0].numpy()):
                params = run.model.decoder.likelihood_params(torch.from_numpy(z))
                check([params[o] for o in outputs], decoder.run(None, {"latent": z}))


def test_manifest_records_parity(bundle: Bundle) -> None:
    parity = bundle.manifest()["parity"]
    assert parity["precision"] == bundle.precision and parity["tolerance"] == TOLERANCES[bundle.precision]
    assert parity["batch_sizes"] == list(BATCH_SIZES) and parity["passed"] is True
    assert parity["rule"] == ("max_abs_diff <= tolerance" if bundle.precision == "float32"
                              else "max_abs_diff <= tolerance * max(1, max_abs_reference)")
    keys = {"encoder.mean", "encoder.logvar", "decoder.image", f"decoder.{'logits' if 'bernoulli' in bundle.run_name else 'logvar'}"}
    assert set(parity["max_abs_diff"]) == set(parity["limit"]) == keys
    assert all(0 <= parity["max_abs_diff"][k] <= parity["limit"][k] for k in keys)
    assert parity["simplification"]["kept"] is True and "onnxscript" in parity["simplification"]["pass"]


def test_manifest_describes_model_and_training(bundle: Bundle) -> None:
    manifest = bundle.manifest()
    run = load_run(bundle.run)
    mixture = run.model.prior is not None  # the mlp recipe's learned mixture prior: format version 2
    assert (manifest["format"], manifest["format_version"], manifest["dtype"]) == ("vaekit-bundle", 1 + mixture,
                                                                                   bundle.precision)
    assert ("prior" in manifest) == mixture
    if mixture:
        prior = manifest["prior"]
        trained = {name: p.detach() for name, p in run.model.prior.named_parameters()}
        np.testing.assert_allclose(prior["weights"], torch.softmax(trained["logits"].double(), 0).numpy(), rtol=1e-12)
        assert prior["means"] == trained["means"].tolist() and prior["logvars"] == trained["logvars"].tolist()
    assert manifest["model"] == run.model_config.to_dict()
    assert manifest["image_shape"] == list(run.model_config.image_shape)
    assert (manifest["latent_dim"], manifest["likelihood"]) == (run.model_config.latent_dim, run.model_config.likelihood)
    for name in ("encoder.onnx", "decoder.onnx"):
        opsets = {o.domain: o.version for o in onnx.load(bundle.path / name).opset_import}
        assert opsets[""] == manifest["opset"]
    producer = manifest["producer"]
    assert (producer["torch"], producer["onnx"], producer["onnxruntime"]) == (torch.__version__, onnx.__version__, ort.__version__)
    provenance = manifest["provenance"]
    assert provenance["finished"] is True and provenance["run"] == bundle.run.name
    assert provenance["epochs"] == run.train_config["epochs"]
    paths = {key: bare_name(value) for key, value in run.train_config.items() if key in ("data", "out")}
    assert provenance["train_config"] == {**run.train_config, **paths} and paths["data"] == bare_name(run.train_config["data"])
    # the run's summary, copied field for field (only `run` says which folder it was)
    assert {k: v for k, v in provenance.items() if k not in ("run", "finished", "train_config")} == \
        {k: bare_name(v) if k == "data" else v for k, v in run.summary.to_dict().items() if k != "run"}


def test_provenance_publishes_no_absolute_path(bundle: Bundle) -> None:
    """The app, its Model tab and vaekit-web show the provenance to anyone: it names the run folder and the data file,
    never where they were on the training machine (the runs' parent folder appears nowhere in the manifest)."""
    text = (bundle.path / "manifest.json").read_text(encoding="utf-8")
    assert str(bundle.run.resolve().parent) not in text and str(bundle.run.parent) not in text
    provenance = json.loads(text)["provenance"]
    assert provenance["run"] == bundle.run.name and "/" not in provenance["train_config"].get("out", "")
    assert "/" not in provenance["train_config"]["data"] and "/" not in provenance["data"]
    assert bare_name("C:\\runs\\x.npz") == "x.npz" and bare_name("digits") == "digits" and bare_name(None) is None
    assert set(provenance["metrics"]) == {"test_elbo", "test_recon", "test_kl"}
    assert math.isfinite(provenance["test_nll"]) and provenance["test_nll_k"] == 4


def _spec_scores(bundle: Path, images: np.ndarray, seed: int) -> np.ndarray:
    """Each image's ELBO (k=1) computed as docs/bundle-format.md says, with plain numpy and onnxruntime."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    mean, logvar = session(bundle / "encoder.onnx").run(["mean", "logvar"], {"image": images})
    eps = standard_normal(seed, 0, len(images) * manifest["latent_dim"]).reshape(len(images), -1)  # spec: Seeded noise
    z = mean + np.exp(0.5 * logvar) * eps
    names = DECODER_OUTPUTS[manifest["likelihood"]]
    params = {k: v.astype(np.float64) for k, v in zip(names, session(bundle / "decoder.onnx").run(names, {"latent": z}))}
    x = images.astype(np.float64)
    if manifest["likelihood"] == "bernoulli":
        per_pixel = x * params["logits"] - np.logaddexp(0.0, params["logits"])
    else:
        lv = params["logvar"]
        per_pixel = -0.5 * (np.log(2 * np.pi) + lv + (x - params["image"]) ** 2 * np.exp(-lv))
    m, lv = mean.astype(np.float64), logvar.astype(np.float64)
    if "prior" in manifest:  # spec, The score: a mixture's KL is estimated from the same sample
        kl = -0.5 * (np.log(2 * np.pi) + lv + eps.astype(np.float64) ** 2).sum(axis=1) - spec_log_prior(Prior(**manifest["prior"]), z)
    else:
        kl = 0.5 * (np.exp(lv) + m**2 - 1.0 - lv).sum(axis=1)
    return per_pixel.sum(axis=(1, 2, 3)) - kl


def test_score_quantiles_follow_the_spec(bundle: Bundle) -> None:
    quantiles = bundle.manifest()["score_quantiles"]
    images = load_run(bundle.run).heldout(2000)
    assert (quantiles["k"], quantiles["n"], quantiles["seed"]) == (1, len(images), 0)
    assert list(quantiles["q"]) == list(SCORE_QUANTILE_LEVELS)
    scores = _spec_scores(bundle.path, images, quantiles["seed"])
    expected = [np.quantile(scores, float(level)) for level in SCORE_QUANTILE_LEVELS]
    np.testing.assert_allclose(list(quantiles["q"].values()), expected, rtol=1e-5, atol=1e-5)
    assert quantiles["mean"] == pytest.approx(scores.mean(), rel=1e-5)
    assert expected == sorted(expected)


def test_latent_pca_is_that_of_the_heldout_posterior_means(bundle: Bundle) -> None:
    """latent_pca recomputed with numpy from plain onnxruntime encodings of the held-out images."""
    pca = bundle.manifest()["latent_pca"]
    images = load_run(bundle.run).heldout(2000)
    codes = session(bundle.path / "encoder.onnx").run(["mean"], {"image": images})[0].astype(np.float64)
    mean, axes, variance = (np.array(pca[key]) for key in ("mean", "axes", "variance"))
    d = codes.shape[1]
    assert pca["n"] == len(images) and axes.shape == (d, d) and variance.shape == mean.shape == (d,)
    np.testing.assert_allclose(mean, codes.mean(axis=0), atol=1e-6)
    covariance = np.cov(codes, rowvar=False, bias=True)
    np.testing.assert_allclose(variance, np.linalg.eigvalsh(covariance)[::-1], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(axes.T @ np.diag(variance) @ axes, covariance, atol=1e-7)  # the same axes
    np.testing.assert_allclose(axes @ axes.T, np.eye(d), atol=1e-9)
    assert list(variance) == sorted(variance, reverse=True)
    assert np.all(axes[np.arange(d), np.abs(axes).argmax(axis=1)] > 0)  # signs fixed as the format says


def test_reduced_precision_graphs(bundle: Bundle) -> None:
    """float16 bundles hold float16 weights, int8 bundles int8 weights; both keep float32 edges (checked above)."""
    for name in ("encoder.onnx", "decoder.onnx"):
        model = onnx.load(bundle.path / name)
        weights = {t.data_type for t in model.graph.initializer if len(t.dims) >= 2}
        ops = {n.op_type for n in model.graph.node}
        if bundle.precision == "float16":
            assert weights == {onnx.TensorProto.FLOAT16}
        elif bundle.precision == "int8":  # integer products (MLP), or int8 weights turned into float32 (conv)
            scheme = json.loads((bundle.path / "manifest.json").read_text())["quantization"][name]["scheme"]
            assert onnx.TensorProto.INT8 in weights
            assert ("DynamicQuantizeLinear" in ops) == (scheme == "dynamic") and ("Conv" in ops) == (scheme == "weights")
            initializers = {t.name for t in model.graph.initializer}
            assert not any(n.input[1] in initializers for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul"))
        else:
            assert weights == {onnx.TensorProto.FLOAT}


def test_cli_reports_what_it_wrote(cli_export: subprocess.CompletedProcess, bundles: dict[str, Bundle]) -> None:
    done = cli_export
    assert done.returncode == 0, done.stderr
    assert f"wrote {bundles['float32-mlp-bernoulli'].path} (float32, mlp bernoulli, latent_dim 3)" in done.stdout
    assert "parity vs torch over batches [1, 7, 64]" in done.stdout and "tolerance 0.0001" in done.stdout
    assert "held-out scores (k=1, n=180)" in done.stdout
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr and "colour" not in done.stderr


def test_force_replaces_a_bundle_with_one_of_an_unfinished_run(bundles: dict[str, Bundle], tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A run stopped before its summary still exports (without final figures, and saying so); --force swaps
    the new bundle in for the old one and leaves no staging folder behind."""
    run = Path(shutil.copytree(bundles["float32-mlp-gaussian"].run, tmp_path / "run"))
    (run / "summary.json").unlink()
    out = Path(shutil.copytree(bundles["float32-mlp-bernoulli"].path, tmp_path / "bundle"))
    assert main([str(run), "--out", str(out), "--force"]) == 0
    assert "note: the run never finished (no summary.json); the manifest has no final metrics" in capsys.readouterr().err
    manifest = read_manifest(out)
    assert manifest.likelihood == "gaussian"  # the new bundle, not the old one
    provenance = manifest.provenance
    assert provenance.finished is False and provenance.metrics == {} and provenance.test_nll is None
    assert provenance.data == "digits"  # from the run's config, as there is no summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "run"]


def test_a_run_trained_before_vaekit_stored_its_colours_exports_without_the_colour_score(
        bundles: dict[str, Bundle], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = Path(shutil.copytree(bundles["float32-mlp-bernoulli"].run, tmp_path / "run"))
    (run / "train_colours.npy").unlink()
    assert main([str(run), "--out", str(tmp_path / "bundle")]) == 0
    assert "note: the run stored no training colours" in capsys.readouterr().err
    manifest = read_manifest(tmp_path / "bundle")
    assert manifest.colour_reference is None and manifest.score_references is not None
    assert manifest.score_references["combined"].parts == ["likelihood", "complexity", "reconstruction", "prior"]
