"""`vaekit-ui BUNDLE`: the Gradio app on a bundle, on 127.0.0.1:7860 unless told otherwise."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys

from vaekit.runtime.errors import InputError
from vaekit.runtime.extras import bundle_parser, run_command

log = logging.getLogger("vaekit.ui")
PROG = "vaekit-ui"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    p = bundle_parser(PROG, "Sample, interpolate, explore and reconstruct with a vaekit bundle in the browser.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs internet)")
    return p.parse_args(argv)


def is_local(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of `vaekit-ui`: serve until interrupted; errors become one message and exit status 1."""
    args = parse_args(argv)
    logging.getLogger("vaekit").setLevel(logging.INFO)  # which device the model runs on (run_command sets the format)
    return run_command(PROG, lambda: _serve(args))


def _serve(args: argparse.Namespace) -> None:
    """Serve the app until Ctrl+C or SIGTERM, then close it."""
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port must be from 1 to 65535, got {args.port}")
    if not is_local(args.host) or args.share:
        log.warning("vaekit-ui: the app will be reachable from other machines (%s); anyone who can reach it can "
                    "use it (docs/security.md: the limits to set on a reverse proxy)", "a public share link" if args.share else f"--host {args.host}")
    from .app import serve  # gradio and onnxruntime load here, once `require` has checked them

    app = serve(args.bundle, args.host, args.port, args.share, device=args.device)
    where = app.local_url + (f" and {app.share_url}" if app.share_url else "")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill`, `docker stop`, systemd: shut down like Ctrl+C
    try:
        print(f"vaekit-ui: serving {args.bundle} on {where} (Ctrl+C to stop)", flush=True)
        app.block_thread()  # returns after closing the server on Ctrl+C or SIGTERM
    except KeyboardInterrupt:  # one that came before gradio's loop could catch it
        app.close()
    print("vaekit-ui: stopped", flush=True)


def _interrupt(signum: int, frame: object) -> None:
    """Turn a termination signal into the KeyboardInterrupt that makes gradio close the server cleanly."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
