"""Training as a detached subprocess: launch, queue, poll, cancel.

A launched run is `python -m cnn_core train --run-dir DIR` in its own process session, so it
outlives page reruns, browser reloads and even the dashboard server; it gets its share of the
CPU cores as OMP_NUM_THREADS unless that is set already. At most MAX_JOBS runs
train at once (default 1 on CPU, where two runs only slow each other down; 2 on a GPU); the
others wait in status `queued`, oldest first. A slot is an flock on runs/.slots/N.lock, which
the kernel releases when the process dies, however it dies.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import files, runs

MAX_JOBS_ENV = "CNN_MAX_JOBS"
POLL_S = 0.5


def max_jobs() -> int:
    """Runs that may train at once: $CNN_MAX_JOBS, else 2 with a CUDA GPU and 1 without."""
    try:
        return max(1, int(os.environ[MAX_JOBS_ENV]))
    except (KeyError, ValueError):
        import torch  # here, not at the top: pages import jobs without paying for torch
        return 2 if torch.cuda.is_available() else 1


def threads_per_job() -> int:
    """CPU threads each training process may use: the cores shared among the runs that may train at
    once (two runs of 2 threads on 2 cores measured ~600 images/s each, of 1 thread ~3,300 each)."""
    return max(1, (os.cpu_count() or 1) // max_jobs())


def max_processes() -> int:
    """How many processes one run may train with on this machine: one per GPU, else one per core."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else (os.cpu_count() or 1)


def launch(path: Path, resume: bool = False, processes: int = 1) -> int:
    """Start the run in `path` as a detached process; returns its pid. Output goes to train.log.
    processes > 1: torchrun on this machine (--standalone) starts that many, trained together (DDP); each
    gets its share of this job's CPU threads."""
    path = Path(path).resolve()
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a whole number of at least 1, got {processes!r}")
    if processes > 1 and processes > (most := max_processes()):
        raise ValueError(f"{processes} processes asked; this machine can run at most {most} for one run "
                         f"(one per {'GPU' if _has_cuda() else 'CPU core'})")
    record = runs.read_run(path)
    status = runs.effective_status(record)
    if status in runs.ACTIVE and record.pid:   # a queued run no process has taken yet may start
        raise ValueError(f"run {record.id} is already {status}")
    if resume and not (path / runs.CHECKPOINT).is_file():
        raise ValueError(f"run {record.id} has no checkpoint to resume from")
    (path / runs.CANCEL).unlink(missing_ok=True)
    runs.update_run(path, status="queued", error=None, pid=None, heartbeat=time.time(),
                    host=socket.gethostname(), queued_at=time.time())
    cmd = [sys.executable, "-m", "cnn_core", "train", "--run-dir", str(path), "--quiet"]
    if processes > 1:     # torchrun is this module: `python -m torch.distributed.run` needs no PATH lookup
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
               *cmd[1:]]
    if resume:
        cmd.append("--resume")
    pid = start_detached(cmd, path / runs.LOG,
                         {"OMP_NUM_THREADS": str(max(1, threads_per_job() // processes))})
    runs.update_run(path, pid=pid)
    return pid


def more_epochs(path: Path, n) -> int:
    """Let a finished or stopped run train `n` epochs more: the same run goes on from its checkpoint (its
    curves continue) to the epochs it has done plus n; a schedule stretches to the new length and early
    stopping counts its patience anew. The new number of epochs; launch(path, resume=True) trains them."""
    from .config import MAX_EPOCHS

    path = Path(path).resolve()
    record = runs.read_run(path)
    if (status := runs.effective_status(record)) in runs.ACTIVE:
        raise ValueError(f"run {record.id} is {status}: more epochs are for a finished or stopped run")
    if not (path / runs.CHECKPOINT).is_file():
        raise ValueError(f"run {record.id} has no checkpoint to go on from")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"more epochs must be a whole number of at least 1, got {n!r}")
    done = int(record.summary.get("epochs_done") or 0)
    if done + n > MAX_EPOCHS:
        raise ValueError(f"{done} + {n} epochs is more than {MAX_EPOCHS:,}")
    runs.update_run(path, config={**record.config, "epochs": done + n})
    return done + n


def start_detached(cmd: list[str], log: Path, defaults: dict | None = None, **env) -> int:
    """Start `cmd` in its own process session (it outlives the caller), output appended to `log`, this project
    importable; `defaults` fill environment variables not set already, `env` overrides. Its pid."""
    project_root = Path(__file__).resolve().parent.parent
    full = {**(defaults or {}), **os.environ, **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(project_root), os.environ.get("PYTHONPATH")]))}
    with open(log, "a") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=full)    # the caller's folder: relative paths hold
    # Reap the child when it ends so it never lingers as a zombie that looks alive.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def cancel(path: Path) -> str:
    """Ask a queued or running run to stop (it saves a checkpoint and ends `cancelled`).
    Returns the status it had."""
    path = Path(path)
    status = runs.effective_status(runs.read_run(path))
    if status in runs.ACTIVE:
        (path / runs.CANCEL).touch()
    return status


def wait(path: Path, timeout: float = 600.0, until=runs.FINISHED) -> str:
    """Poll until the run's effective status is in `until`; returns it (TimeoutError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        status = runs.effective_status(runs.read_run(path))
        if status in until:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {Path(path).name} still {status} after {timeout:.0f} s")
        time.sleep(POLL_S)


def delete_run(path: Path, runs_dir: Path | None = None, timeout: float = 60.0) -> str:
    """Delete one run folder; a queued or running run is cancelled first and waited for (its checkpoint
    saved, its process gone). Returns the status the run had. ValueError when it will not stop within
    `timeout` s, or when `path` is not a run of the runs folder; nothing is deleted then."""
    path = Path(path)
    try:
        record = runs.read_run(path)
        status, pid = runs.effective_status(record), record.pid
        here = record.host == socket.gethostname()
    except ValueError:
        status, pid, here = "corrupt", None, False
    deadline = time.monotonic() + timeout
    while status in runs.ACTIVE and pid:
        # Stop asked again on every poll: the engine drops a request made before its first step. The
        # process writes `cancelled` before it lets go of its folder (the disk reserve, train.log): the
        # folder goes once the process has ended too.
        if cancel(path) not in runs.ACTIVE and not (here and files.pid_alive(int(pid))):
            break
        if time.monotonic() > deadline:
            raise ValueError(f"run {path.name} did not stop within {timeout:.0f} s; nothing deleted, "
                             "try again in a moment")
        time.sleep(0.25)
    runs.delete_run(path, runs_dir)
    return status


def active_runs(runs_dir: Path | None = None) -> list[runs.Run]:
    """Runs queued or running right now, oldest first."""
    return in_progress(runs.list_runs(runs_dir))


def in_progress(records: list) -> list[runs.Run]:
    """The runs of a listing that are queued or running, oldest first."""
    return sorted((r for r in records if r.effective_status in runs.ACTIVE), key=lambda r: r.queued_at or 0)


@contextlib.contextmanager
def slot(path: Path, runs_dir: Path | None = None):
    """Hold one of max_jobs() training slots for the life of the block; wait (status queued,
    heartbeat kept) until one is free and this run is the oldest waiting. Yields the slot
    number, or None when a cancel was requested while the run was still waiting."""
    path = Path(path).resolve()
    slots = path.parent / ".slots"
    slots.mkdir(exist_ok=True)
    my_id = path.name
    runs.update_run(path, status="queued", pid=os.getpid(), host=socket.gethostname(),
                    heartbeat=time.time(), queued_at=runs.read_run(path).queued_at or time.time())
    while True:
        if (path / runs.CANCEL).exists():
            yield None
            return
        if _oldest_waiting(path.parent, my_id):
            for n in range(max_jobs()):
                handle = open(slots / f"{n}.lock", "a")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                try:
                    yield n
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                    handle.close()
                return
        runs.update_run(path, heartbeat=time.time())
        time.sleep(POLL_S)


def _oldest_waiting(root: Path, my_id: str) -> bool:
    """True when no live queued run was queued before `my_id`."""
    queued = [r for r in runs.list_runs(root) if r.effective_status == "queued" and r.pid]
    queued.sort(key=lambda r: (r.queued_at or 0, r.id))
    return not queued or queued[0].id == my_id
