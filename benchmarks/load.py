"""Serving under load: many simultaneous API users of `vaekit-ui` on one bundle, over raw HTTP.

Each user POSTs /gradio_api/call/sample (16 samples) and then reads its event stream until the
result (or an error) arrives, as a script or another service would. All users start at once. The
server runs as its own process (`vaekit-ui BUNDLE`) on 127.0.0.1; while the users wait, a probe
fetches the page every 0.25 s (is it still responsive?) and the server's memory is sampled. Prints,
per burst size: answered, turned away (HTTP 503 "queue full"), errors, latency percentiles of the
answered, the page's slowest load and the server's peak memory; writes benchmarks/results/load.json.

With --against REF, the UI as of git commit REF (its runtime/ and ui/, exported with `git archive`) is
served too, in the same environment, and every burst goes to both servers in turn (the order alternates
between rounds), so a change is measured side by side in one run; --rounds repeats each burst and the
table gives medians and the ratios new / REF.

Loopback only, bounded: every user gives up after --timeout seconds and the script stops the servers
itself. The load generator runs on the same cores as the servers (2 here), so it takes its share.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "ui"))  # the UI tests' helpers
from common import ROOT, print_table, write_result  # noqa: E402
from ui_helpers import free_port  # noqa: E402

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
    load_avg_1m: float = field(default_factory=lambda: os.getloadavg()[0])  # the machine's, as the burst starts

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
                "answered_per_s": round(self.answered / max(self.latencies, default=1.0), 1),
                "load_avg_1m": round(self.load_avg_1m, 2)}


async def _exchange(host: str, port: int, request: bytes, until: tuple[bytes, ...] = ()) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request on a fresh connection; (status, what was read): the whole response, or the
    first line starting with one of `until` and the line after it (an event stream's event and its data)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        if not until:
            return status, await reader.read()
        while line := await reader.readline():
            if line.startswith(until):
                return status, line + await reader.readline()
        return status, b""
    finally:
        writer.close()


def _http(method: str, path: str, host: str, body: bytes = b"") -> bytes:
    """A minimal HTTP/1.1 request that closes its connection after the answer."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def call_sample(host: str, port: int, seed: int) -> tuple[str, float, Any]:
    """One user over raw HTTP: POST the call, read its event stream; ("ok" | "503" | what went wrong, seconds,
    the result's data when ok: a list holding the grid's file data)."""
    start = time.perf_counter()
    body = json.dumps({"data": [SAMPLES, seed, 1.0]}).encode()
    try:
        status, answer = await _exchange(host, port, _http("POST", "/gradio_api/call/sample", host, body))
        if status != 200:
            return ("503" if status == 503 else f"POST {status}"), time.perf_counter() - start, None
        event_id = json.loads(answer.split(b"\r\n\r\n", 1)[1])["event_id"]
        status, lines = await _exchange(host, port, _http("GET", f"/gradio_api/call/sample/{event_id}", host),
                                        until=(b"event: complete", b"event: error"))
        event, _, data = lines.partition(b"\n")
        if event.startswith(b"event: complete"):
            return "ok", time.perf_counter() - start, json.loads(data.removeprefix(b"data:"))
    except (OSError, ValueError, IndexError, KeyError) as e:
        return type(e).__name__, time.perf_counter() - start, None
    return (lines.decode().strip() or "stream ended early"), time.perf_counter() - start, None


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
        status, seconds, _ = outcome
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


def start_server(bundle: Path, port: int, threads: int | None, source: Path | None = None) -> subprocess.Popen[str]:
    """`vaekit-ui BUNDLE --port PORT --device cpu` as a child process, returned once it serves; with `source`, a
    folder holding a `vaekit` package tree, that code is served instead of the installed one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if source:
        env["PYTHONPATH"] = str(source)
    code = "import sys; from vaekit.ui.ui_cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, str(bundle), "--port", str(port), "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    while proc.poll() is None:
        lines.append(proc.stdout.readline())
        if "serving" in lines[-1]:
            return proc
    sys.exit("vaekit-ui did not start:\n" + "".join(lines))


def export_source(ref: str, folder: Path) -> Path:
    """The runtime and UI of git commit `ref` as `folder`/vaekit/{runtime,ui}, importable with `folder` on the path."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "--prefix=vaekit/", ref, "runtime", "ui"],
                             capture_output=True)
    if archive.returncode != 0:
        sys.exit(f"--against {ref}: git archive failed: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def medians(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One row for several rounds of one burst: medians of the timings, totals of the counts, the highest memory."""
    def median(key: str) -> float | None:
        values = [s[key] for s in summaries if s[key] is not None]
        return round(statistics.median(values), 1) if values else None

    return {"users": summaries[0]["users"], "rounds": len(summaries), "answered": sum(s["answered"] for s in summaries),
            "rejected_503": sum(s["rejected_503"] for s in summaries), "errors": sum(s["errors"] for s in summaries),
            **{k: median(k) for k in ("p50_ms", "p95_ms", "max_ms", "rejection_max_ms", "page_max_ms",
                                      "server_cpu_ms_per_answer", "answered_per_s", "load_avg_1m")},
            "server_rss_mib_peak": max(s["server_rss_mib_peak"] for s in summaries)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help=f"bundle to serve (default {DEFAULT_BUNDLE})")
    p.add_argument("--users", type=int, nargs="+", default=[200, 2000],
                   help="simultaneous users per burst, one burst each (default 200 2000)")
    p.add_argument("--rounds", type=int, default=1, help="bursts of each size per server; the table gives medians (default 1)")
    p.add_argument("--against", metavar="REF", help="also serve the UI of git commit REF and burst both in turn")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds each user waits at most (default 60)")
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of the server (default: unset)")
    args = p.parse_args(argv)
    if not (args.bundle / "manifest.json").is_file():
        sys.exit(f"bundle {args.bundle} not found: run `make demo` (or vaekit-train + vaekit-export) or pass --bundle")
    if max(args.users) > 5000:
        sys.exit("at most 5000 users per burst: this script is for loopback load tests, not a flood")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # a socket per user, and the page probe
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * max(args.users) + 256)), hard))
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="vaekit-load-") as tmp:
        sources = {"this tree": None}
        if args.against:
            sources[args.against] = export_source(args.against, Path(tmp))
        servers = {name: start_server(args.bundle, free_port(), args.threads, source) for name, source in sources.items()}
        ports = {name: int(server.args[server.args.index("--port") + 1]) for name, server in servers.items()}
        runs: dict[str, dict[int, list[dict[str, Any]]]] = {name: {n: [] for n in args.users} for name in servers}
        try:
            before = {name: rss_mib(server.pid) for name, server in servers.items()}
            for r in range(args.rounds):
                for users in args.users:
                    for name in (list(servers) if r % 2 == 0 else list(servers)[::-1]):
                        b = asyncio.run(burst("127.0.0.1", ports[name], users, args.timeout, servers[name].pid))
                        b.rss_mib_before = before[name]
                        runs[name][users].append(b.summary())
                        time.sleep(2.0)  # let the queue drain between bursts
        finally:
            for server in servers.values():
                server.terminate()
                server.communicate(timeout=60)
    from vaekit.ui.app import CONCURRENCY, QUEUE_SIZE, REQUEST_SECONDS, SAMPLE_BATCH

    table = {name: [medians(runs[name][n]) for n in args.users] for name in servers}
    rows = [[name, b["users"], b["answered"], b["rejected_503"], b["errors"], b["p50_ms"], b["p95_ms"], b["max_ms"],
             b["rejection_max_ms"], b["page_max_ms"], b["server_rss_mib_peak"], b["server_cpu_ms_per_answer"],
             b["answered_per_s"]] for name, bursts in table.items() for b in bursts]
    print_table(f"/sample of {SAMPLES} images, all users at once (this tree: queue {QUEUE_SIZE}, batches of up to "
                f"{SAMPLE_BATCH}, concurrency {CONCURRENCY}); medians of {args.rounds} round(s), counts summed",
                ["server", "users", "answered", "503", "errors", "p50 ms", "p95 ms", "max ms", "503 max ms", "page max ms",
                 "server RSS MiB", "server CPU ms/answer", "answered/s"], rows)
    ratios = {}
    if args.against:
        def ratio(new: float | None, old: float | None) -> float | None:
            return round(new / old, 2) if new and old else None

        ratios = {str(n): {k: ratio(new[k], old[k]) for k in ("p95_ms", "server_cpu_ms_per_answer", "answered_per_s")}
                  for n, new, old in zip(args.users, table["this tree"], table[args.against])}
        print_table(f"this tree / {args.against}", ["users", "p95", "server CPU per answer", "answered/s"],
                    [[n, r["p95_ms"], r["server_cpu_ms_per_answer"], r["answered_per_s"]] for n, r in ratios.items()])
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    result = {"samples": SAMPLES, "queue_size": QUEUE_SIZE, "assumed_request_s": REQUEST_SECONDS,
              "sample_batch": SAMPLE_BATCH, "concurrency": CONCURRENCY, "timeout_s": args.timeout,
              "server_threads": args.threads, "event_loop": loop, "rounds": args.rounds, "against": args.against,
              "load_avg_1m_before": load_before, "medians": table, "ratios": ratios,
              "bursts": {name: [s for n in args.users for s in runs[name][n]] for name in servers}}
    print(f"\nwrote {write_result('load', result)}")
    return result


if __name__ == "__main__":
    main()
