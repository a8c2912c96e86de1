"""Many API users at once, at small scale, with the load script's own raw-HTTP client
(benchmarks/load.py): every call within the queue's bound is answered, the excess gets a clean 503.
No timing assertions: the speed figures live in the benchmark."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ui_helpers import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # noqa: E402

TIMEOUT = 120.0  # a call not answered by then counts as an error (a hang), never as a pass


def _burst(url: str, users: int) -> load.Burst:
    where = urlsplit(url)
    return asyncio.run(load.burst(where.hostname, where.port, users, TIMEOUT))


def test_concurrent_users_are_all_answered(served: tuple[str, Path]) -> None:
    result = _burst(served[0], 40)
    assert result.errors == [] and result.rejected == 0
    assert result.answered == 40 and len(result.latencies) == 40
    assert result.page_loads, "the page was fetched while the calls waited"


@pytest.fixture(scope="module")
def tiny_queue(served: tuple[str, Path]) -> Iterator[str]:
    """The app on the same bundle with a queue of 3 waiting calls."""
    from vaekit.ui import build_app, launch_settings

    app = build_app(served[1], device="cpu", queue_size=3)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
               **launch_settings(served[1]))
    try:
        yield app.local_url
    finally:
        app.close()


def test_past_capacity_the_excess_gets_503_not_a_hang(tiny_queue: str) -> None:
    result = _burst(tiny_queue, 50)
    assert result.errors == [], result.errors  # no timeouts, no broken streams
    assert result.rejected > 0 and result.answered > 0
    assert result.answered + result.rejected == 50
