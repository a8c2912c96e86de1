"""Many API users at once, at small scale, with the load script's own raw-HTTP client
(benchmarks/load.py): every call within the queue's bound is answered, calls that wait together run as
one batch and each still gets its own samples, and the excess past the bound gets a clean 503.
No timing assertions: the speed figures live in the benchmark."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
import numpy as np
import pytest
from ui_helpers import free_port, pixels

from vaekit.runtime import VAE
from vaekit.ui.app import SAMPLE_BATCH
from vaekit.ui.handlers import Handlers

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # noqa: E402

TIMEOUT = 120.0  # a call not answered by then counts as an error (a hang), never as a pass
HOLD_S = 0.2  # how long each batch holds its worker in the batching test, so that the calls behind it queue up


def _burst(url: str, users: int) -> load.Burst:
    where = urlsplit(url)
    return asyncio.run(load.burst(where.hostname, where.port, users, TIMEOUT))


@contextmanager
def _launched(app: gr.Blocks, bundle: Path) -> Iterator[str]:
    """`app` served on a free localhost port with the app's launch settings; yields its URL."""
    from vaekit.ui import launch_settings

    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
               **launch_settings(bundle))
    try:
        yield app.local_url
    finally:
        app.close()


def test_concurrent_users_are_all_answered(served: tuple[str, Path]) -> None:
    result = _burst(served[0], 40)
    assert result.errors == [] and result.rejected == 0
    assert result.answered == 40 and len(result.latencies) == 40
    assert result.page_loads, "the page was fetched while the calls waited"


@pytest.fixture(scope="module")
def batches(served: tuple[str, Path]) -> Iterator[tuple[str, list[int]]]:
    """(URL, sizes): the app on the same bundle, its /sample function recording the number of calls in each batch
    it runs and holding its worker HOLD_S seconds, as a slower machine would."""
    from vaekit.ui import build_app

    app = build_app(served[1], device="cpu")
    sample = next(fn for fn in app.fns.values() if fn.api_name == "sample")
    assert sample.batch and sample.max_batch_size == SAMPLE_BATCH
    sizes: list[int] = []
    run_batch = sample.fn

    def recorded(*columns: list[Any]) -> Any:
        sizes.append(len(columns[0]))
        time.sleep(HOLD_S)
        return run_batch(*columns)

    sample.fn = recorded
    with _launched(app, served[1]) as url:
        yield url, sizes


def test_calls_that_wait_together_run_as_a_batch_and_each_gets_its_own_samples(
        batches: tuple[str, list[int]], served: tuple[str, Path], tmp_path: Path) -> None:
    url, sizes = batches
    where = urlsplit(url)
    users = SAMPLE_BATCH + 8  # more than one full batch

    async def together() -> list[tuple[str, float, Any]]:
        return await asyncio.gather(*(load.call_sample(where.hostname, where.port, seed) for seed in range(users)))

    outcomes = asyncio.run(together())
    assert [status for status, _, _ in outcomes] == ["ok"] * users
    assert sum(sizes) == users and max(sizes) > 1, sizes
    assert max(sizes) <= SAMPLE_BATCH
    local = Handlers(VAE.load(served[1], device="cpu"), tmp_path)
    for seed, (_, _, data) in enumerate(outcomes):  # seed i's grid went to the caller who asked for seed i
        assert np.array_equal(pixels(data[0]["path"]), np.asarray(local.sample(load.SAMPLES, seed, 1.0))), seed


@pytest.fixture(scope="module")
def tiny_queue(served: tuple[str, Path]) -> Iterator[str]:
    """The app on the same bundle with a queue of 3 waiting calls."""
    from vaekit.ui import build_app

    with _launched(build_app(served[1], device="cpu", queue_size=3), served[1]) as url:
        yield url


def test_past_capacity_the_excess_gets_503_not_a_hang(tiny_queue: str) -> None:
    result = _burst(tiny_queue, 50)
    assert result.errors == [], result.errors  # no timeouts, no broken streams
    assert result.rejected > 0 and result.answered > 0
    assert result.answered + result.rejected == 50
