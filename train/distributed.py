"""Multi-process training under `torchrun --nproc-per-node K`: rank, world, device, agreement.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process and every
helper here is a no-op. NCCL on CUDA, gloo on CPU (the tests run 2 CPU processes with gloo).
Only rank 0 writes files; all ranks stop at the same step (`any_rank`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from perceptual_edge.train.device import select_device as base_select_device


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    return Dist(
        rank=int(os.environ.get("RANK", "0")),
        world=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def select_device(requested: str, dist: Dist) -> torch.device:
    """The common device rule (train/device.py), then one GPU per local rank under torchrun."""
    device = base_select_device(requested)
    if device.type == "cuda" and dist.enabled:
        torch.cuda.set_device(dist.local_rank)
        return torch.device("cuda", dist.local_rank)
    return device


def init(dist: Dist, device: torch.device) -> None:
    if not dist.enabled or torch.distributed.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend=backend)


def shutdown(dist: Dist) -> None:
    if dist.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def any_rank(dist: Dist, flag: bool, device: torch.device) -> bool:
    """True if `flag` is true on any rank (so all ranks stop together on a signal)."""
    if not dist.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(dist: Dist) -> None:
    if dist.enabled:
        torch.distributed.barrier()


def mean_over_ranks(dist: Dist, values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar losses averaged over ranks: with equal per-rank batches, the global batch mean."""
    names = list(values)
    t = torch.stack([values[k].detach().float().reshape(()) for k in names])
    if dist.enabled:
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
        t = t / dist.world
    return dict(zip(names, t.tolist(), strict=True))
