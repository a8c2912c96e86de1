"""`vaekit-export RUN --out BUNDLE`: a training run -> an ONNX bundle checked against torch."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from vaekit.runtime.bundle import read_manifest
from vaekit.runtime.choices import DTYPES, QUANTIZE
from vaekit.runtime.extras import run_command

PROG = "vaekit-export"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Export a vaekit-train run to an ONNX bundle (encoder.onnx, decoder.onnx, manifest.json) "
                    "after checking that the graphs match torch.",
    )
    p.add_argument("run", metavar="RUN", help="run folder written by vaekit-train (holds checkpoint.pt)")
    p.add_argument("--out", required=True, metavar="BUNDLE", help="bundle folder to write")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="weights and compute precision; inputs and outputs stay float32 (default float32)")
    p.add_argument("--quantize", choices=QUANTIZE, default=None,
                   help="dynamic int8 quantization of the weights (onnxruntime), on float32 graphs")
    p.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the command; exit status 0 on success, 1 with a message on stderr when the export fails."""
    args = parse_args(argv)
    # torch's exporter warns that torchvision's ops cannot be registered; vaekit uses none of them
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

    def export() -> None:
        from .api import export_run  # torch loads here, once `require` has checked that it is installed

        report(export_run(args.run, args.out, dtype=args.dtype, quantize=args.quantize, force=args.force))

    return run_command(PROG, export, interrupted="interrupted; nothing written")


def report(path: Path) -> None:
    """What the written bundle holds and how it was checked, from its manifest; notes go to stderr."""
    manifest = read_manifest(path)
    parity, q = manifest.parity, manifest.score_quantiles
    assert parity.limit is not None and parity.simplification is not None and q is not None  # vaekit-export writes them
    diffs, limits = parity.max_abs_diff, parity.limit
    worst = max(diffs, key=lambda k: diffs[k] / limits[k])
    print(f"wrote {path} ({manifest.dtype}, {manifest.model.kind} {manifest.likelihood}, "
          f"latent_dim {manifest.latent_dim})")
    print(f"parity vs torch over batches {parity.batch_sizes}: closest to its limit is {worst}, max abs diff "
          f"{diffs[worst]:.2e} <= {limits[worst]:.2e} ({parity.rule}, tolerance {parity.tolerance:g})")
    simplification = parity.simplification
    if not simplification["kept"]:
        print(f"note: graphs left unsimplified: {simplification['reason']}", file=sys.stderr)
    print(f"conformance vectors stored in {path / 'conformance'}: check the bundle on any machine with "
          f"`vaekit-check {path}`")
    print(f"held-out scores (k={q.k}, n={q.n}): median {q.q['0.5']:.2f} nats, 1% quantile {q.q['0.01']:.2f}")
    if manifest.colour_reference is None and manifest.score_references is not None:
        parts = ", ".join(manifest.score_references["combined"].parts or ())
        print("note: the run stored no training colours (train_colours.npy: trained before vaekit wrote it), so the "
              f"bundle has no 'colour' score and 'combined' averages {parts}; train again to add it", file=sys.stderr)
    if not manifest.provenance.finished:
        print("note: the run never finished (no summary.json); the manifest has no final metrics", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
