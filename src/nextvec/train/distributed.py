"""Distributed data parallel under torchrun: `torchrun --nproc_per_node N -m nextvec train ...`.

torchrun sets WORLD_SIZE / RANK / LOCAL_RANK; without them everything here is a no-op for one process.
Backend: NCCL when the run uses CUDA, gloo on CPU. Rank 0 writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from nextvec.run.device import resolve_device


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_preference: str = "auto") -> DistEnv:
    """Join the torchrun process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_preference, local_rank)
    if world <= 1:
        return DistEnv(device=device)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        here = True
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, device, here)


def wrap(model: torch.nn.Module, env: DistEnv) -> torch.nn.Module:
    """DDP-wrap the model in a multi-process run (gradients are averaged across ranks)."""
    if env.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)


def any_rank(flag: bool, env: DistEnv) -> bool:
    """True on every rank if `flag` is True on at least one (e.g. one rank ran out of time)."""
    if env.world_size == 1:
        return flag
    t = torch.tensor([int(flag)], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def from_main(flag: bool, env: DistEnv) -> bool:
    """Rank 0's value of `flag` on every rank (e.g. rank 0 decided to stop early)."""
    if env.world_size == 1:
        return flag
    t = torch.tensor([int(flag)], device=env.device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def barrier(env: DistEnv) -> None:
    if env.world_size > 1:
        dist.barrier()


def teardown(env: DistEnv) -> None:
    if env.initialised_here and dist.is_initialized():
        dist.destroy_process_group()
