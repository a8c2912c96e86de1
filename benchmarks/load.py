"""Serving under load: many simultaneous API users of `vaekit-ui` on one bundle, over raw HTTP.

Each user POSTs /gradio_api/call/sample (16 samples) and then reads its event stream until the
result (or an error) arrives, as a script or another service would. All users start at once. The
server runs as its own process (`vaekit-ui BUNDLE`) on 127.0.0.1; while the users wait, a probe
fetches the page every 0.25 s (is it still responsive?) and the server's memory is sampled. Prints,
per burst size: answered, turned away (HTTP 503 "queue full"), errors, latency percentiles of the
answered, the page's slowest load and the server's peak memory; writes benchmarks/results/load.json.

Loopback only, bounded: every user gives up after --timeout seconds and the script stops the server
itself. The load generator runs on the same cores as the server (2 here), so it takes its share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, print_table, write_result  # noqa: E402

DEFAULT_BUNDLE = ROOT / "bundles" / "digits"  # what `make demo` exports
SAMPLES = 16


@dataclass
class Burst:
    """What happened to `users` simultaneous requests: counts, latencies of the answered ones (seconds),
    the page's load times while they waited, and the server's memory."""

    users: int
    answered: int = 0
    rejected: int = 0  # HTTP 503: the queue was full
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rejection_latencies: list[float] = field(default_factory=list)
    page_loads: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    rss_mib_before: float = 0.0
    rss_mib_peak: float = 0.0
    server_cpu_s: float = 0.0  # CPU time the server process spent during the burst

    def summary(self) -> dict[str, Any]:
        """The counts and percentiles, JSON-ready."""
        def ms(values: list[float], q: float) -> float | None:
            return round(float(np.percentile(values, q)) * 1e3, 1) if values else None

        return {"users": self.users, "answered": self.answered, "rejected_503": self.rejected,
                "errors": len(self.errors), "error_examples": sorted(set(self.errors))[:5],
                "p50_ms": ms(self.latencies, 50), "p95_ms": ms(self.latencies, 95), "max_ms": ms(self.latencies, 100),
                "rejection_max_ms": ms(self.rejection_latencies, 100), "page_loads": len(self.page_loads),
                "page_max_ms": ms(self.page_loads, 100), "wall_s": round(self.wall_s, 2),
                "server_rss_mib_before": round(self.rss_mib_before, 1),
                "server_rss_mib_peak": round(self.rss_mib_peak, 1), "server_cpu_s": round(self.server_cpu_s, 2),
                "server_cpu_ms_per_answer": round(1e3 * self.server_cpu_s / max(self.answered, 1), 1),
                "answered_per_s": round(self.answered / max(self.latencies, default=1.0), 1)}


async def _exchange(host: str, port: int, request: bytes, until: tuple[bytes, ...] = ()) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request on a fresh connection; (status, what was read): the whole response, or up to
    the first line starting with one of `until` (for an event stream)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        if not until:
            return status, await reader.read()
        while line := await reader.readline():
            if line.startswith(until):
                return status, line
        return status, b""
    finally:
        writer.close()


def _http(method: str, path: str, host: str, body: bytes = b"") -> bytes:
    """A minimal HTTP/1.1 request that closes its connection after the answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def call_sample(host: str, port: int, seed: int) -> tuple[str, float]:
    """One user over raw HTTP: POST the call, read its event stream; ("ok" | "503" | what went wrong, seconds)."""
    start = time.perf_counter()
    body = json.dumps({"data": [SAMPLES, seed, 1.0]}).encode()
    try:
        status, answer = await _exchange(host, port, _http("POST", "/gradio_api/call/sample", host, body))
        if status != 200:
            return ("503" if status == 503 else f"POST {status}"), time.perf_counter() - start
        event_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["event_id"]
        status, line = await _exchange(host, port, _http("GET", f"/gradio_api/call/sample/{event_id}", host),
                                       until=(b"event: complete", b"event: error"))
    except (OSError, ValueError, IndexError, KeyError) as e:
        return type(e).__name__, time.perf_counter() - start
    outcome = "ok" if line.startswith(b"event: complete") else (line.decode().strip() or "stream ended early")
    return outcome, time.perf_counter() - start


async def burst(host: str, port: int, users: int, timeout: float, pid: int | None = None) -> Burst:
    """`users` simultaneous calls (each given up after `timeout` s) to the server on host:port; meanwhile
    the page is fetched every 0.25 s and (given its `pid`) the server's memory sampled."""
    result = Burst(users)
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            start = time.perf_counter()
            try:
                status, _ = await asyncio.wait_for(_exchange(host, port, _http("GET", "/", host)), timeout)
                if status == 200:
                    result.page_loads.append(time.perf_counter() - start)
                else:
                    result.errors.append(f"page: HTTP {status}")
            except (OSError, asyncio.TimeoutError) as e:
                result.errors.append(f"page: {type(e).__name__}")
            if pid is not None:
                result.rss_mib_peak = max(result.rss_mib_peak, rss_mib(pid))
            await asyncio.sleep(0.25)

    watcher = asyncio.create_task(watch())
    start, cpu = time.perf_counter(), cpu_seconds(pid) if pid else 0.0
    calls = [asyncio.wait_for(call_sample(host, port, seed), timeout) for seed in range(users)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    result.wall_s = time.perf_counter() - start
    result.server_cpu_s = cpu_seconds(pid) - cpu if pid else 0.0
    done.set()
    await watcher
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            result.errors.append(f"no answer within {timeout:g} s" if isinstance(outcome, asyncio.TimeoutError)
                                 else type(outcome).__name__)
            continue
        status, seconds = outcome
        if status == "ok":
            result.answered += 1
            result.latencies.append(seconds)
        elif status == "503":
            result.rejected += 1
            result.rejection_latencies.append(seconds)
        else:
            result.errors.append(status)
    return result


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of process `pid` in MiB (0 when it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(bundle: Path, port: int, threads: int | None) -> subprocess.Popen[str]:
    """`vaekit-ui BUNDLE --port PORT --device cpu` as a child process, returned once it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    code = "import sys; from vaekit.ui.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(bundle), "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    while proc.poll() is None:
        lines.append(proc.stdout.readline())
        if "serving" in lines[-1]:
            return proc
    sys.exit("vaekit-ui did not start:\n" + "".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help=f"bundle to serve (default {DEFAULT_BUNDLE})")
    p.add_argument("--users", type=int, nargs="+", default=[200, 2000],
                   help="simultaneous users per burst, one burst each (default 200 2000)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds each user waits at most (default 60)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the server (default: unset)")
    args = p.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        sys.exit(f"bundle {args.bundle} not found: run `make demo` (or vaekit-train + vaekit-export) or pass --bundle")
    if max(args.users) > 5000:
        sys.exit("at most 5000 users per burst: this script is for loopback load tests, not a flood")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per user, and the page probe
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * max(args.users) + 256)), hard))
    port = free_port()
    server = start_server(args.bundle, port, args.threads)
    try:
        before = rss_mib(server.pid)
        bursts = []
        for users in args.users:
            b = asyncio.run(burst("127.0.0.1", port, users, args.timeout, server.pid))
            b.rss_mib_before = before
            bursts.append(b.summary())
            time.sleep(2.0)  # let the queue drain between bursts
    finally:
        server.terminate()
        server.communicate(timeout=60)
    from vaekit.ui.app import CONCURRENCY, QUEUE_SIZE, REQUEST_SECONDS

    rows = [[b["users"], b["answered"], b["rejected_503"], b["errors"], b["p50_ms"], b["p95_ms"], b["max_ms"],
             b["rejection_max_ms"], b["page_max_ms"], b["server_rss_mib_peak"], b["server_cpu_ms_per_answer"],
             b["answered_per_s"]] for b in bursts]
    print_table(f"/sample of {SAMPLES} images, all users at once (queue {QUEUE_SIZE}, concurrency {CONCURRENCY})",
                ["users", "answered", "503", "errors", "p50 ms", "p95 ms", "max ms", "503 max ms", "page max ms",
                 "server RSS MiB", "server CPU ms/answer", "answered/s"], rows)
    result = {"samples": SAMPLES, "queue_size": QUEUE_SIZE, "assumed_request_s": REQUEST_SECONDS,
              "concurrency": CONCURRENCY, "timeout_s": args.timeout,
              "server_threads": args.threads, "bursts": bursts}
    print(f"\nwrote {write_result('load', result)}")
    return result


if __name__ == "__main__":
    main()
