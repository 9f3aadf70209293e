"""Data parallelism through PyTorch's own stack: ``torchrun`` sets the env, DDP syncs gradients.

Each rank draws different clips (see :func:`global_indices`); rank 0 writes every file.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when started by ``torchrun`` (WORLD_SIZE > 1); else single process.

    On CUDA each rank uses GPU ``LOCAL_RANK`` (set before ComfyUI picks its device).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        # rank 0 validates and writes while the others wait at a barrier: allow long waits
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"),
                                timeout=datetime.timedelta(hours=2))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)


def global_indices(step: int, micro: int, info: DistInfo, batch: int, accumulation: int) -> list[int]:
    """Clip indices of one micro-batch: every optimizer step covers the same global set
    (step·G … step·G + G − 1, G = world·accumulation·batch) however it is split over ranks."""
    per_step = info.world * accumulation * batch
    first = step * per_step + (micro * info.world + info.rank) * batch
    return list(range(first, first + batch))


def mean_across(value: float, info: DistInfo) -> float:
    if info.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t[0]) / info.world


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
