"""`vaekit-check BUNDLE`: run the bundle's conformance vectors on this machine and say whether it computes
what the exporting torch model computed. Exit status 0 when every output is within its limit, 1 otherwise
(a failed check, a bundle without vectors, or an error)."""

from __future__ import annotations

import argparse
import sys

from .extras import bundle_parser, run_command

PROG = "vaekit-check"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    return bundle_parser(PROG, "Check a vaekit bundle on this machine against the reference outputs it carries (its "
                         "conformance vectors); exit 0 if it passes.").parse_args(argv)


def report(bundle: str, device: str) -> tuple[bool, str]:
    """Whether the bundle passes on `device`, and the lines to print: what runs where, each output's figure
    and the verdict."""
    from .model import VAE  # onnxruntime loads here, once `require` has checked that it is installed

    vae = VAE.load(bundle, device=device)
    m = vae.manifest
    lines = [f"{bundle}: {m.dtype} {m.model.kind} {vae.likelihood}, latent_dim {vae.latent_dim}, "
             f"on {vae.device} ({', '.join(vae.providers)})"]
    verification = vae.verify()
    width = max((len(o.name) for o in verification.outputs), default=0)
    lines += [f"  {o.name:<{width}}  max abs diff {o.max_abs_diff:.2e}  limit {o.limit:.2e}  "
              f"{'ok' if o.passed else 'FAILED'}" for o in verification.outputs]
    lines.append(verification.summary())
    return verification.passed, "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-check`."""
    args = parse_args(argv)

    def check() -> int:
        passed, text = report(args.bundle, args.device)
        print(text)
        return 0 if passed else 1

    return run_command(PROG, check)


if __name__ == "__main__":
    sys.exit(main())
