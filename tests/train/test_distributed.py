"""torchrun with 2 CPU processes (gloo) gives the single-process result, and resumes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaekit.train.distributed import Distributed
from vaekit.train.trainer import epoch_order

ARGS = ["--model", "mlp", "--hidden", "16", "--latent-dim", "3", "--epochs", "3", "--batch-size", "10",
        "--nll-k", "4", "--nll-images", "16", "--no-progress", "--images-every", "1"]


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
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _assert_same_weights(a: Path, b: Path) -> None:
    wa = torch.load(a / "checkpoint.pt", weights_only=True)["model"]
    wb = torch.load(b / "checkpoint.pt", weights_only=True)["model"]
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-4, atol=1e-5, msg=f"{key} differs")


@pytest.mark.slow
def test_two_processes_match_one_and_resume(tmp_path: Path, tiny_npz: Path) -> None:
    from vaekit.train.cli import main as train_main

    data = ["--data", str(tiny_npz)]
    assert train_main([*data, *ARGS, "--out", str(tmp_path / "single")]) == 0
    _torchrun(*data, *ARGS, "--out", str(tmp_path / "ddp"))
    _assert_same_weights(tmp_path / "single", tmp_path / "ddp")
    metrics = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert sum('"eval"' in line for line in metrics) == 3  # one set of outputs: rank 0 writes alone
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["steps"] == 3 * 8

    # a 2-process run stopped early, then resumed with 2 processes, ends where the single run did
    _torchrun(*data, *ARGS, "--max-time", "1e-9", "--out", str(tmp_path / "stopped"))
    assert torch.load(tmp_path / "stopped" / "checkpoint.pt", weights_only=True)["step"] == 1
    _torchrun("--resume", str(tmp_path / "stopped"))
    _assert_same_weights(tmp_path / "single", tmp_path / "stopped")
