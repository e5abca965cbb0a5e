"""torch.distributed set-up for ``torchrun``: one process per GPU (or per CPU worker with gloo).

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``;
when they are absent the run is a plain single process and nothing here touches
``torch.distributed``. The backend is NCCL when the device is CUDA and gloo otherwise (CPU CI,
laptops). Only rank 0 writes files and prints progress; :func:`barrier` keeps the other ranks from
racing ahead of a checkpoint being written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from sam_moelora_ros.inference.device import resolve_device

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = CPU

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_name: str = "auto") -> DistInfo:
    """Initialise the process group if launched by ``torchrun``; pick this rank's device.

    The device comes from :func:`~sam_moelora_ros.inference.device.resolve_device`, the one
    the Segmenter uses too, given this process's ``LOCAL_RANK`` so that ``auto`` and ``cuda``
    mean this rank's GPU; a name this machine cannot use raises its ``DeviceError``.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank=local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (no-op in a single process)."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def gather_tensors(tensor: torch.Tensor, info: DistInfo) -> list[torch.Tensor]:
    """Every rank's copy of a same-shape tensor (used for per-rank RNG states)."""
    if not info.enabled:
        return [tensor]
    moved = tensor.to(info.device) if info.device.type == "cuda" else tensor
    out = [torch.empty_like(moved) for _ in range(info.world_size)]
    dist.all_gather(out, moved)
    return [t.cpu() for t in out]
