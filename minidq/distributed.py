"""Data parallelism across processes (`torchrun --nproc-per-node N -m minidq train|distill ...`).

torchrun starts N copies of the same program and tells each its rank (0..N-1) through the
environment. Each copy holds the whole model and takes its share of every global batch; after
backward, PyTorch's DistributedDataParallel (DDP) averages the copies' gradients, so every copy
takes the same optimizer step and the weights stay identical. Rank 0 alone logs, evaluates,
checkpoints and exports. In one process (plain `python -m minidq`) every helper here does
nothing, so a reader who never runs torchrun can skip this file.

What makes N processes compute what one process computes with the same global batch:
  - the global batch is cut into N shards by rank (minidq.data.Batches.epoch(rank=, world_size=));
  - a mean over the batch's tokens must be the mean over the *global* batch's tokens: each rank
    multiplies its local mean by `rank_weight(local count)`, so that DDP's average of the ranks'
    gradients is the gradient of the global mean (a plain average of the ranks' means would
    weigh a token of a short shard more than one of a long shard);
  - the figures rank 0 logs are averaged over the ranks (`mean_over_ranks`), so they are the
    global batch's figures too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from typing import Callable, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .errors import MinidqError

T = TypeVar("T")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0: the process that logs, evaluates, checkpoints and exports."""
    return rank() == 0


def init(device: str) -> None:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, MASTER_ADDR, ...):
    NCCL between GPUs, gloo between CPU processes. Without torchrun (WORLD_SIZE unset or 1): nothing."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    cuda = torch.device(device).type == "cuda"
    if cuda:  # one GPU per process, chosen by the rank on this machine
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo")
    atexit.register(dist.destroy_process_group)


def local_device(device: torch.device) -> torch.device:
    """`cuda` means this process's own GPU under torchrun (cuda:LOCAL_RANK); anything else is kept."""
    if device.type == "cuda" and device.index is None and dist.is_initialized():
        return torch.device("cuda", torch.cuda.current_device())
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model to run forward and backward through: DDP under torchrun (it broadcasts rank 0's
    weights now, and averages the gradients during backward), the model itself in one process."""
    if world_size() == 1:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def no_sync_unless(net: torch.nn.Module, last: bool):
    """Gradient accumulation: skip DDP's gradient averaging on all but the last batch of a step."""
    return net.no_sync() if isinstance(net, DistributedDataParallel) and not last else contextlib.nullcontext()


def total(value: torch.Tensor | int | float) -> torch.Tensor | int | float:
    """The sum of `value` over the ranks (the value itself in one process)."""
    if world_size() == 1:
        return value
    summed = torch.as_tensor(value, dtype=torch.float64, device=_collective_device()).clone()
    dist.all_reduce(summed)
    return summed.item() if not isinstance(value, torch.Tensor) else summed.to(value.device, value.dtype)


def rank_weight(count: torch.Tensor | int) -> float:
    """What a rank multiplies its local mean by to take its part in the global batch's mean:
    count / (global count / world_size). Over N ranks, DDP's average of the weighted local means
    (sum_r / count_r) * count_r / (global_count / N) is sum / global_count, the global mean.
    1.0 in one process (so the single-process loss is the very same number)."""
    if world_size() == 1:
        return 1.0
    count = float(count)
    return count * world_size() / max(total(count), 1.0)  # every rank calls total(), even with count 0


def mean_over_ranks(figures: dict[str, float]) -> dict[str, float]:
    """Each figure averaged over the ranks: for rank_weight-ed means, the global batch's figure."""
    if world_size() == 1:
        return figures
    values = torch.tensor(list(figures.values()), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(values)
    return dict(zip(figures, (values / world_size()).tolist()))


def on_main(fn: Callable[[], T]) -> T:
    """fn() run by rank 0 alone, its result handed to every rank (so all decide alike, e.g. to stop
    on a diverged validation loss). An error on rank 0 is raised on every rank, not left to hang them."""
    if world_size() == 1:
        return fn()
    box: list = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as e:  # raised below, on every rank
            box[0] = ("error", e)
    dist.broadcast_object_list(box, src=0, device=_collective_device())
    kind, value = box[0]
    if kind == "error":
        if is_main():
            raise value
        raise MinidqError(f"rank 0 failed: {value}")
    return value


def gather(obj: T) -> list[T]:
    """Every rank's `obj`, in rank order (on every rank): e.g. the random generator states for last.ckpt."""
    if world_size() == 1:
        return [obj]
    objects: list = [None] * world_size()
    dist.all_gather_object(objects, obj)
    return objects


def barrier() -> None:
    """Wait until every rank gets here (e.g. until rank 0 has prepared the output folder)."""
    if world_size() > 1:
        dist.barrier()


def _collective_device() -> torch.device:
    """NCCL moves only GPU tensors; gloo only CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
