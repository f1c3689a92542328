"""One run over several processes, GPUs or machines, as PyTorch teaches it: torchrun starts the processes and
does the rendezvous; torch.distributed (gloo on CPU, nccl on CUDA) joins them; the engine wraps the model
in DistributedDataParallel. This module holds who this process is and the few collective steps the engine
needs. With one process (no torchrun: WORLD_SIZE unset or 1) torch.distributed is never initialised and
every helper returns at once.

    torchrun --standalone --nproc-per-node 2 -m cnn_core train --dataset fashion-mnist --arch lenet
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# A collective that waits longer than this fails with the peer named: a queued run waits for its slot
# before its first collective, and a process that hangs is found within this time.
TIMEOUT_S = float(os.environ.get("CNN_DIST_TIMEOUT_S", 1800))
SHUTDOWN_WAIT_S = 120.0     # at the end, how long a process waits for the others (rank 0 tests and saves last)


@dataclass(frozen=True)
class World:
    rank: int = 0                 # this process among all (0 writes the run folder)
    local_rank: int = 0           # among the processes of this machine: its GPU
    size: int = 1
    backend: str | None = None    # "gloo" | "nccl" once initialised

    @property
    def active(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


_world = World()


def current() -> World:
    return _world


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def launched_size() -> int:
    """The number of processes torchrun started for this run (1 without torchrun)."""
    return max(1, _env_int("WORLD_SIZE", 1))


def init() -> World:
    """Join the process group torchrun set up (its env: RANK, WORLD_SIZE, MASTER_ADDR, ...): nccl for CUDA
    tensors where CUDA is present, gloo for the CPU. A no-op with one process."""
    global _world
    if launched_size() == 1 or dist.is_initialized():
        return _world
    local = _env_int("LOCAL_RANK", 0)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local % torch.cuda.device_count())
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=timedelta(seconds=TIMEOUT_S))
    _world = World(dist.get_rank(), local, dist.get_world_size(), "gloo")
    return _world


def uses(device: torch.device) -> None:
    """Record the backend the run's tensors go through: nccl for CUDA, gloo otherwise."""
    global _world
    if _world.active:
        _world = World(_world.rank, _world.local_rank, _world.size, "nccl" if device.type == "cuda" else "gloo")


def shutdown(together: bool = False) -> None:
    """Leave the process group. together: every process ended its work normally, so each waits for the others
    first (a barrier, bounded by SHUTDOWN_WAIT_S) and they leave it at once. Without it, a process done before
    rank 0 (which still tests and saves) tore its gloo connections down while rank 0's were live, and at exit
    it was sometimes aborted ("terminate called without an active exception", SIGABRT: the run completed, but
    torchrun reported the process failed)."""
    global _world
    if dist.is_initialized():
        if together and _world.active:
            try:
                dist.monitored_barrier(timeout=timedelta(seconds=SHUTDOWN_WAIT_S))
            except RuntimeError:       # a peer is gone or late: leave anyway
                pass
        dist.destroy_process_group()
    _world = World()


def broadcast(obj=None):
    """Rank 0's `obj`, on every rank (pickled: small things, or a checkpoint once)."""
    if not _world.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj) -> list:
    """Every rank's `obj`, by rank (on every rank)."""
    if not _world.active:
        return [obj]
    out: list = [None] * _world.size
    dist.all_gather_object(out, obj)
    return out


def hosts() -> list[str]:
    """Each rank's host name, by rank."""
    return gather(socket.gethostname())


def sum_(values: torch.Tensor) -> torch.Tensor:
    """`values` summed over the ranks, in place (and returned)."""
    if _world.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def any_(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any."""
    if not _world.active:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def shard(n: int, world: World | None = None) -> slice:
    """This rank's part of a batch of n: contiguous, sizes differing by at most one, in rank order."""
    w = world or _world
    base, extra = divmod(n, w.size)
    start = w.rank * base + min(w.rank, extra)
    return slice(start, start + base + (w.rank < extra))


def batch_problem(batch_size: int, size: int) -> str | None:
    """Why a global batch of `batch_size` cannot be split over `size` processes, or None."""
    if size <= 1 or (batch_size >= size and batch_size % size == 0):
        return None
    below = batch_size - batch_size % size
    near = " or ".join(str(m) for m in sorted({below, below + size}) if m >= size)
    return (f"batch size {batch_size} does not split evenly over {size} processes (each trains on an equal "
            f"part of every batch): choose a multiple of {size}, such as {near}")


def is_peer_failure(exc: BaseException) -> bool:
    """A collective failed because another process of the run stopped (killed, crashed, unreachable)."""
    if not _world.active:
        return False
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(s in text for s in (
        "Connection closed by peer", "Connection reset by peer", "Broken pipe", "[Gloo]", "gloo", "NCCL"))
