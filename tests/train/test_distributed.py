"""torchrun with 2 CPU processes (gloo) gives the single-process result, and resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from vaekit.train.distributed import Distributed
from vaekit.train.rng import epoch_order

# float32: bf16 rounds each process's gradients, so 2 processes would not match 1 (and auto differs between CPUs)
MODEL = ["--model", "mlp", "--hidden", "16", "--latent-dim", "3", "--batch-size", "10", "--nll-k", "4",
         "--nll-images", "16", "--no-progress", "--precision", "float32"]
ARGS = [*MODEL, "--epochs", "3", "--images-every", "1"]


def test_shards_cover_each_global_batch_exactly() -> None:
    n, batch, world = 53, 10, 3
    order = epoch_order(n, seed=0, epoch=4)
    seen: list[int] = []
    for start in range(0, n, batch):
        rows = order[start : start + batch]
        shards = [Distributed(rank=r, world_size=world).shard_bounds(len(rows)) for r in range(world)]
        assert shards[0][0] == 0 and shards[-1][1] == len(rows)
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))  # contiguous, disjoint
        seen += [int(i) for lo, hi in shards for i in rows[lo:hi]]
    assert sorted(seen) == list(range(n))  # the union is the whole data, no image twice in an epoch
    assert not torch.equal(order, epoch_order(n, seed=0, epoch=5))  # epoch-dependent


def _torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun is missing from the environment"
    cmd = [torchrun, "--standalone", "--nproc_per_node=2", "-m", "vaekit.train", *args]
    # PYTHONFAULTHANDLER: a rank that dies of a signal (a rare SIGABRT in C++ was seen once) prints where it was
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"})
    assert result.returncode == 0, result.stderr[-12000:]
    return result


def _assert_same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(b / "checkpoint.pt", weights_only=True)["model"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-5, msg=f"{key} differs")


@pytest.mark.slow
def test_two_processes_match_one_and_resume(tmp_path: Path, tiny_npz: Path) -> None:
    from vaekit.train.train_cli import main as train_main

    data = ["--data", str(tiny_npz)]
    assert train_main([*data, *ARGS, "--out", str(tmp_path / "single")]) == 0
    _torchrun(*data, *ARGS, "--out", str(tmp_path / "ddp"))
    _assert_same_weights(tmp_path / "single", tmp_path / "ddp")
    metrics = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in metrics if '"eval"' in line]
    assert steps[-1] == 3 * 8 and len(steps) == len(set(steps))  # one set of outputs: rank 0 writes alone
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["steps"] == 3 * 8

    # a 2-process run stopped early, then resumed with 2 processes, ends where the single run did
    _torchrun(*data, *ARGS, "--max-time", "1e-9", "--out", str(tmp_path / "stopped"))
    assert torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["step"] == 1
    _torchrun("--resume", str(tmp_path / "stopped"))
    _assert_same_weights(tmp_path / "single", tmp_path / "stopped")


def _worker_pid(torchrun_pid: int, rank: int) -> int | None:
    """The pid of torchrun's worker process with this RANK, read from /proc (None while it is starting)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue  # the process ended meanwhile
        if ppid == torchrun_pid and f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    return None


@pytest.mark.slow
def test_a_killed_rank_stops_the_job_and_the_run_resumes(tmp_path: Path, tiny_npz: Path) -> None:
    """SIGKILL one rank mid-run: torchrun ends the job with a message naming the rank (no hang), the last
    checkpoint stays loadable, and `--resume` with 2 processes finishes where an uninterrupted run does."""
    from vaekit.train.train_cli import main as train_main

    # long enough (a few seconds) that a paced checkpoint lands mid-run, before the kill
    args = ["--data", str(tiny_npz), *MODEL, "--epochs", "400", "--images-every", "400"]
    assert train_main([*args, "--out", str(tmp_path / "single")]) == 0
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    job = subprocess.Popen([torchrun, "--standalone", "--nproc_per_node=2", "-m", "vaekit.train", *args,
                            "--out", str(tmp_path / "killed")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists() and job.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), "the job never wrote its first checkpoint"
        victim = _worker_pid(job.pid, rank=1)
        assert job.poll() is None and victim is not None, "the job ended before rank 1 could be killed"
        os.kill(victim, signal.SIGKILL)
        _, stderr = job.communicate(timeout=120)  # would time out if the surviving rank hung
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode != 0
    assert "rank" in stderr.lower() and ("SIGKILL" in stderr or "-9" in stderr), stderr[-3000:]
    step = torch.load(checkpoint, weights_only=True)["step"]
    assert 0 < step < 400 * 8, "the kill came too late to test a resume"
    _torchrun("--resume", str(tmp_path / "killed"))
    _assert_same_weights(tmp_path / "single", tmp_path / "killed")


@pytest.mark.slow
def test_two_processes_fit_one_plan_to_a_budget(tmp_path: Path, tiny_npz: Path) -> None:
    """Under --max-time both ranks time their steps and must plan the same epochs (and network), or they would
    hang or fail at the first step where they differ: the probe's figures are averaged over the ranks."""
    _torchrun("--data", str(tiny_npz), *MODEL, "--max-time", "6", "--out", str(tmp_path / "budget"))
    config = json.loads((tmp_path / "budget" / "config.json").read_text())
    assert config["why"]["epochs"].startswith("fitted to --max-time 6") and config["train"]["epochs"] >= 1
    summary = json.loads((tmp_path / "budget" / "summary.json").read_text())
    assert summary["steps"] >= 1 and summary["wall_time_s"] < 6
