"""Conformance vectors written at export, and int8 bundles that compute the same on every CPU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from export_helpers import Bundle

from vaekit.runtime.check_cli import main as check_main
from vaekit.train import load_run

# CPU models that qemu's user-mode emulator presents to onnxruntime, whatever this machine's CPU is, so that its
# other kernels run too; this machine's own CPU (AVX-512 with VNNI, or AVX2 only) is the native run.
EMULATED_CPUS = {"EPYC-Milan": "AVX2 without AVX-512 (AMD EPYC 7003)", "Nehalem": "SSE4.2, no AVX"}
# numpy's bundled OpenBLAS picks its kernels by its own CPU detection, which under qemu can choose one the
# emulated model lacks (seen on an AMD EPYC with AVX-512: `import numpy` died of an illegal instruction as
# Nehalem); naming the model's OpenBLAS core keeps the run about onnxruntime's kernels, which it does not touch.
OPENBLAS_CORES = {"EPYC-Milan": "Zen", "Nehalem": "Nehalem"}
# Run in a fresh interpreter (natively or under qemu): every int8 bundle's outputs on its conformance inputs.
RUN_VECTORS = """
import json, sys, numpy as np
from vaekit.runtime import VAE
out = {}
for path in sys.argv[2:]:
    vae = VAE.load(path, device="cpu")
    spec = vae.manifest.conformance
    for graph, feed in (("encoder", "image"), ("decoder", "latent")):
        x = np.load(f"{path}/{getattr(spec, graph).inputs[feed]}")
        names = list(getattr(spec, graph).outputs)
        for name, value in zip(names, getattr(vae, "_" + graph).run({feed: x}, names)):
            out[f"{path}|{graph}.{name}"] = value
    out[f"{path}|passed"] = np.array(vae.verify().passed)
np.savez(sys.argv[1], **out)
"""


def test_vectors_hold_torch_outputs_in_plain_npy(bundle: Bundle) -> None:
    manifest = bundle.manifest()
    entry = manifest["conformance"]
    model = load_run(bundle.run).model
    arrays = {}
    for graph in ("encoder", "decoder"):
        for name in [*entry[graph]["inputs"].values(), *(o["file"] for o in entry[graph]["outputs"].values())]:
            data = (bundle.path / name).read_bytes()
            assert data.startswith(b"\x93NUMPY\x01\x00") and b"'descr': '<f4'" in data  # .npy 1.0, float32 LE
            arrays[name] = np.load(bundle.path / name, allow_pickle=False)
    images = arrays[entry["encoder"]["inputs"]["image"]]
    latents = arrays[entry["decoder"]["inputs"]["latent"]]
    assert images.shape[1:] == tuple(manifest["image_shape"]) and 1 <= len(images) <= 8
    assert latents.shape == (2 * len(images), manifest["latent_dim"])  # seeded N(0, I), then the images' means
    with torch.no_grad():
        mean, logvar = model.encoder(torch.from_numpy(images))
        params = model.decoder.likelihood_params(torch.from_numpy(latents))
    expected = {"encoder.mean": mean, "encoder.logvar": logvar, **{f"decoder.{k}": v for k, v in params.items()}}
    for graph in ("encoder", "decoder"):
        for name, output in entry[graph]["outputs"].items():
            np.testing.assert_allclose(arrays[output["file"]], expected[f"{graph}.{name}"].numpy(), rtol=0, atol=1e-6)
            assert output["limit"] == manifest["parity"]["limit"][f"{graph}.{name}"]
    np.testing.assert_allclose(latents[len(images):], mean.numpy(), atol=1e-6)


def test_every_bundle_kind_passes_vaekit_check(bundle: Bundle, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_main([str(bundle.path), "--device", "cpu"]) == 0, capsys.readouterr().out
    assert "checked on this machine (cpu)" in capsys.readouterr().out


def test_int8_records_its_scheme_and_keeps_half_its_tolerance(bundles: dict[str, Bundle]) -> None:
    """Each graph's quantization scheme is recorded: integer products in the CPU-independent scheme for the MLP, int8
    weights computed in float32 for the conv family; parity leaves at least 2x headroom, even after one epoch."""
    int8 = [b for b in bundles.values() if b.precision == "int8"]
    assert len(int8) == 4
    for bundle in int8:
        manifest = bundle.manifest()
        schemes = manifest["quantization"]
        assert sorted(schemes) == ["decoder.onnx", "encoder.onnx"]
        for scheme in schemes.values():
            assert scheme["scheme"] == ("weights" if manifest["model"]["kind"] == "conv" else "dynamic")
            assert scheme["per_channel"] is True and scheme["reduce_range"] is (scheme["scheme"] == "dynamic")
        parity = manifest["parity"]
        for key, diff in parity["max_abs_diff"].items():
            assert diff <= parity["limit"][key] / 2, f"{bundle.id} {key}: {diff} uses over half of {parity['limit'][key]}"
    assert all("quantization" not in b.manifest() for b in bundles.values() if b.precision != "int8")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None,
                    reason="needs qemu's user-mode emulator to present other CPUs: apt-get install qemu-user")
@pytest.mark.parametrize("cpu", sorted(EMULATED_CPUS))
def test_int8_bundles_compute_the_same_on_other_cpus(cpu: str, bundles: dict[str, Bundle], tmp_path: Path) -> None:
    """onnxruntime picks its int8 kernels by CPU (VNNI, AVX-512, AVX2, SSE); with the MLP's scheme every one computes
    the same integers (the old scheme put AVX2 up to 4.6x over), and the conv family computes in float32, so outputs
    agree within 5% of their limits and a bundle checked on one machine holds on all."""
    paths = [str(b.path) for b in bundles.values() if b.precision == "int8"]
    script = tmp_path / "run_vectors.py"
    script.write_text(RUN_VECTORS)
    native, emulated = tmp_path / "native.npz", tmp_path / "emulated.npz"
    for command, env in (([sys.executable, str(script), str(native), *paths], os.environ),
                         (["qemu-x86_64", "-cpu", cpu, sys.executable, str(script), str(emulated), *paths],
                          os.environ | {"OPENBLAS_CORETYPE": OPENBLAS_CORES[cpu]})):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    with np.load(native) as here, np.load(emulated) as there:
        assert sorted(here.files) == sorted(there.files)
        for key in here.files:
            if key.endswith("|passed"):
                assert bool(there[key]), f"{key} fails its conformance check on {cpu} ({EMULATED_CPUS[cpu]})"
                continue
            path, output = key.split("|")
            graph, name = output.split(".")
            limit = json.loads((Path(path) / "manifest.json").read_text())["conformance"][graph]["outputs"][name]["limit"]
            # the integer products are the same on every kernel; float steps (sigmoid, exp) may round apart
            assert float(np.abs(here[key] - there[key]).max()) <= 0.05 * limit, f"{key} differs on {cpu}"
