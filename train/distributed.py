"""Running the trainer under `torchrun`: process group, data shards, reductions.

Without torchrun's environment (WORLD_SIZE unset or 1) everything here is a no-op, so the
single-process trainer pays nothing for it.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn

TIMEOUT = datetime.timedelta(seconds=int(os.environ.get("VAEKIT_DIST_TIMEOUT", "1800")))


@dataclass
class Distributed:
    """This process's place in the job: `rank` of `world_size`, and whether it writes outputs."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @classmethod
    def from_env(cls) -> Distributed:
        """Join the process group that torchrun describes (gloo on CPU, NCCL on CUDA), if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("VAEKIT_DIST_BACKEND") != "gloo" else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        if not tdist.is_initialized():
            tdist.init_process_group(backend=backend, timeout=TIMEOUT)
        return cls(tdist.get_rank(), tdist.get_world_size(), local, backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_cuda_rank(self) -> bool:
        return self.backend == "nccl"

    def shard_bounds(self, n: int) -> tuple[int, int]:
        """This rank's rows of a global batch of `n`: contiguous, disjoint, covering all of it."""
        return n * self.rank // self.world_size, n * (self.rank + 1) // self.world_size

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world_size == 1:
            return module
        return nn.parallel.DistributedDataParallel(module, device_ids=[self.local_rank] if self.is_cuda_rank else None)

    def mean(self, value: torch.Tensor) -> float:
        """The mean of a scalar over all ranks."""
        if self.world_size > 1:
            value = value.detach().clone()
            tdist.all_reduce(value)
            value /= self.world_size
        return float(value)

    def agree(self, flag: bool) -> bool:
        """True on every rank when it is true on any: ranks must stop at the same step or they hang."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=f"cuda:{self.local_rank}" if self.is_cuda_rank else "cpu")
        tdist.all_reduce(value, op=tdist.ReduceOp.MAX)
        return bool(value.item())

    def agree_min(self, flag: bool, value: float) -> tuple[bool, float]:
        """(`flag` true on any rank, the smallest `value` of all ranks), in one reduction."""
        if self.world_size == 1:
            return flag, value
        both = torch.tensor([float(flag), -value], device=f"cuda:{self.local_rank}" if self.is_cuda_rank else "cpu")
        tdist.all_reduce(both, op=tdist.ReduceOp.MAX)
        return bool(both[0].item()), -float(both[1].item())

    def barrier(self) -> None:
        if self.world_size > 1:
            tdist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and tdist.is_initialized():
            tdist.destroy_process_group()
