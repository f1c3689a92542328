"""A run trained in this process, its run.json status kept true whatever happens (cancelled, failed with
the reason, a full disk, a peer process lost); under torchrun rank 0 writes and the others follow."""
from __future__ import annotations

import errno
import os
import shutil
import socket
import time
import traceback
from pathlib import Path

import torch

from cnn_core.core import distributed, files
from cnn_core.runs import checkpoints, store
from cnn_core.train.trainer import Cancelled, Trainer, TrainingFailed

RESERVE_BYTES = 256 * 1024         # set aside at start, freed to record `failed` on a full disk


def run_training(path: Path, resume: bool = False, on_progress=None) -> dict | None:
    """Train the run in `path` in this process, keeping run.json's status true whatever happens.
    Returns the final run record. Over several processes (torchrun), rank 0 does this; the others follow
    it (_follow) and return None."""
    path = Path(path)
    world = distributed.current()
    if not world.main:
        return _follow(path, resume)
    _prepare_folder(path, resume)
    started = {"status": "running", "pid": os.getpid(), "host": socket.gethostname(),
               "heartbeat": time.time(), "error": None, "started": time.time()}
    trainer, shared = None, False
    try:
        store.update_run(path, **started)
        trainer = Trainer(path, resume=resume, on_progress=on_progress)
        if world.active:            # the others get the record and checkpoint from here, then report back
            distributed.broadcast({"record": trainer.record, "ckpt": trainer.resumed_from})
            shared = True
            problems = [p for p in distributed.gather(None) if p]
            if problems:
                raise TrainingFailed("; ".join(problems))
        world = distributed.current()   # the backend is known now (the Trainer chose the device)
        store.update_run(path, world_size=world.size, backend=world.backend, hosts=distributed.hosts(),
                        device=str(trainer.device), threads=torch.get_num_threads(),
                        precision=trainer.record.precision,
                        versions={"torch": torch.__version__},
                        n_params=sum(p.numel() for p in trainer.model.parameters()))
        summary = trainer.fit()
    except Cancelled:
        (path / store.CANCEL).unlink(missing_ok=True)   # answered: a later resume must not see it
        return store.update_run(path, status="cancelled", heartbeat=time.time())
    except (TrainingFailed, ValueError, OSError, RuntimeError) as exc:
        _release_reserve(path)
        _log_traceback(path)
        if world.active and not shared:
            distributed.broadcast({"error": str(exc)})     # the others stop too
        if distributed.is_peer_failure(exc):
            return store.update_run(path, status="interrupted", heartbeat=time.time(), error=(
                f"another process of this run stopped ({exc}); the last checkpoint is kept: resume the run"))
        message = _disk_full_message(path, trainer) if _disk_full(exc) else str(exc)
        return store.update_run(path, status="failed", error=message, heartbeat=time.time())
    except BaseException as exc:  # KeyboardInterrupt, MemoryError ...: never leave "running" behind
        _release_reserve(path)
        _log_traceback(path)
        store.update_run(path, status="failed", error=f"{type(exc).__name__}: {exc}", heartbeat=time.time())
        raise
    finally:
        _release_reserve(path)
    return store.update_run(path, status="completed", summary=summary, progress=trainer._progress(),
                           heartbeat=time.time())


def _follow(path: Path, resume: bool) -> None:
    """A process other than rank 0: take the run record and checkpoint from rank 0, build the same Trainer
    (say why not, if it cannot: rank 0 records it), train its part. It writes nothing; rank 0 records
    how the run ends."""
    got = distributed.broadcast(None)
    if "error" in got:
        return None
    trainer, problem = None, None
    try:
        trainer = Trainer(path, resume=resume, record=got["record"], ckpt=got["ckpt"])
    except (TrainingFailed, ValueError, OSError, RuntimeError) as exc:
        problem = f"process {distributed.current().rank} on {socket.gethostname()}: {exc}"
    if any(distributed.gather(problem)):
        return None
    distributed.hosts()
    try:
        trainer.fit()
    except (Cancelled, TrainingFailed):   # every process reached the same decision; rank 0 records it
        pass
    return None


def _prepare_folder(path: Path, resume: bool) -> None:
    """Before a process trains in `path`: drop the temp files a killed writer left behind, clear a
    fresh start of what an earlier attempt wrote, and set aside the space the final status needs."""
    files.remove_stale_temps(path, path / store.SNAPSHOTS)
    if not resume:
        for name in (store.METRICS, store.CHECKPOINT, store.BEST):
            (path / name).unlink(missing_ok=True)
        shutil.rmtree(path / store.SNAPSHOTS, ignore_errors=True)
    try:
        with open(path / store.RESERVE, "wb") as f:
            f.write(bytes(RESERVE_BYTES))
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        _release_reserve(path)   # no room even for that: training will say so at its first write


def _release_reserve(path: Path) -> None:
    try:
        (path / store.RESERVE).unlink(missing_ok=True)
    except OSError:
        pass


def _disk_full(exc: BaseException) -> bool:
    """A write failed for want of space. torch's zip writer reports it as a RuntimeError: "file write failed",
    or, when the disk fills under it, a short write ("unexpected pos 23232 vs 23136")."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, RuntimeError) and any(
        m in str(exc) for m in ("file write failed", "No space left", "unexpected pos"))


def _disk_full_message(path: Path, trainer: "Trainer | None") -> str:
    kept = ""
    if trainer is not None and (path / store.CHECKPOINT).is_file():
        try:
            done = checkpoints.load_checkpoint(path / store.CHECKPOINT)["epoch"]
            kept = f" The last good checkpoint (after epoch {done}) is kept."
        except (checkpoints.CheckpointError, KeyError):
            pass
    return (f"The disk is full: no space left on the device holding {path.parent}.{kept} "
            "Free some space, then resume the run.")


def _log_traceback(path: Path) -> None:
    with open(path / store.LOG, "a") as f:
        f.write(traceback.format_exc())
