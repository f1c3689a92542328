"""Training as a detached subprocess: launch, queue, poll, cancel.

A launched run is `python -m cnn_core train --run-dir DIR` in its own process session, so it
outlives page reruns, browser reloads and even the dashboard server; it gets its share of the
CPU cores as OMP_NUM_THREADS unless that is set already. At most MAX_JOBS runs
train at once (default 1 on CPU, where two runs only slow each other down; 2 on a GPU); the
others wait in status `queued`, oldest first. A slot is an flock on runs/.slots/N.lock, which
the kernel releases when the process dies, however it dies.

A waiting process is small: `train --run-dir` waits for its slot before it imports torch (cli.py), and
it reads no other run: it holds a ticket in runs/.queue (`<queued_at>.<pid>.<run id>`, an empty file), so
its place in line is one directory listing, and a ticket whose process died is removed by whoever sees it.
At most MAX_QUEUED runs wait at once: launch refuses the next (QueueFull).

The line takes turns between people (class mode, core/people.py): a ticket's name carries a tag of its run's
owner, and a training run keeps its ticket (renamed `run.<name>`) while it holds its slot, so the next to go
is the oldest ticket of the person with the fewest runs training or ahead in line (round-robin). One learner
launching 20 runs does not hold the others back. Outside class mode every run has the same tag: oldest first.

With a Ray cluster (launch's `cluster`, class mode's `ray`), the process that waited for its slot hands its
run to the cluster as a Ray task (sweeps' RayTrials) and waits for it, slot held: the run trains on a node,
writing to the shared runs folder, and Stop, steering and resume work through its files as they do here.
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
from dataclasses import dataclass
from pathlib import Path

from cnn_core.core import files, people
from cnn_core.runs import owners, store

MAX_JOBS_ENV = "CNN_MAX_JOBS"
MAX_QUEUED_ENV = "CNN_MAX_QUEUED"
MAX_QUEUED = 16         # runs waiting at once: a waiting process costs ~20 MB (a training one, torch: ~600 MB)
SLOT_HELD_ENV = "CNN_SLOT_HELD"   # "N:<run dir>": this process's parent (torchrun) holds slot N for that run
QUEUE = ".queue"
TRAINING = "run."       # a training run's ticket: its waiting name with this in front
SERVED = ".served"      # runs/.queue/.served/<owner tag>: touched when a run of theirs takes a slot
POLL_S = 0.5
HEARTBEAT_S = 15.0      # a waiting run's heartbeat; readers on other hosts call it gone after 60 s


class QueueFull(ValueError):
    """Launch refused: MAX_QUEUED runs already wait for a slot."""


def max_queued() -> int:
    """Runs that may wait for a slot at once: $CNN_MAX_QUEUED, else MAX_QUEUED."""
    text = os.environ.get(MAX_QUEUED_ENV, "").strip()
    if not text:
        return MAX_QUEUED
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_QUEUED_ENV} must be a whole number of at least 1 (runs that may wait for a "
                         f"training slot at once), got {text!r}")
    return int(text)


def max_jobs() -> int:
    """Runs that may train at once: $CNN_MAX_JOBS, else 2 with a CUDA GPU and 1 without."""
    try:
        return max(1, int(os.environ[MAX_JOBS_ENV]))
    except (KeyError, ValueError):
        import torch  # here, not at the top: pages import jobs without paying for torch
        return 2 if torch.cuda.is_available() else 1


def slots_for(by: people.Person | None = None) -> int:
    """Runs that train at once for launches by `by`: their class's runs_at_once when it sets one (a Ray
    cluster's share), else max_jobs()."""
    policy = by.policy if by is not None else None
    return policy.runs_at_once if policy and policy.runs_at_once else max_jobs()


def threads_per_job() -> int:
    """CPU threads each training process may use: the cores shared among the runs that may train at
    once (two runs of 2 threads on 2 cores measured ~600 images/s each, of 1 thread ~3,300 each)."""
    return max(1, (os.cpu_count() or 1) // max_jobs())


def max_processes() -> int:
    """How many processes one run may train with on this machine: one per GPU, else one per core."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else (os.cpu_count() or 1)


def launch(path: Path, resume: bool = False, processes: int = 1, by: people.Person | None = None,
           cluster: str | None = None) -> int:
    """Start the run in `path` as a detached process; returns its pid. Output goes to train.log.
    processes > 1: torchrun on this machine (--standalone) starts that many, trained together (DDP); each
    gets its share of this job's CPU threads. by: the Person launching it in class mode (theirs to launch,
    within their limits: people.NotYours, people.OverLimit); their class's Ray cluster and runs at once.
    cluster: a Ray cluster's address: the run becomes a Ray task there once its turn comes."""
    path = Path(path).resolve()
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a whole number of at least 1, got {processes!r}")
    if processes > 1 and processes > (most := max_processes()):
        raise ValueError(f"{processes} processes asked; this machine can run at most {most} for one run "
                         f"(one per {'GPU' if _has_cuda() else 'CPU core'})")
    record = store.check_change(path, by)
    status = store.effective_status(record)
    if status in store.ACTIVE and record.pid:   # a queued run no process has taken yet may start
        raise ValueError(f"run {record.id} is already {status}")
    if resume and not (path / store.CHECKPOINT).is_file():
        raise ValueError(f"run {record.id} has no checkpoint to resume from")
    owners.check_room(by, path.parent, epochs=record.config.get("epochs"), n_params=record.n_params,
                      starting=record.id)
    policy = by.policy if by is not None else None
    cluster = cluster or (policy.ray if policy else None)
    cap, slots = max_queued(), slots_for(by)
    cmd = [sys.executable, "-m", "cnn_core", "train", "--run-dir", str(path), "--quiet"]
    if processes > 1:     # the process waits for its slot, then becomes torchrun (cli.py)
        if cluster:
            raise ValueError("a run on a Ray cluster trains in one process (one Ray task)")
        cmd += ["--processes", str(processes)]
    if cluster:
        cmd += ["--ray", cluster]
    if resume:
        cmd.append("--resume")
    with _queue_lock(path.parent):     # counted and joined at once: launches side by side cannot overshoot
        if (waiting := len(waiting_runs(path.parent))) >= cap:
            raise QueueFull(f"{waiting} {'runs are' if waiting != 1 else 'run is'} already waiting for a training "
                            f"slot (the limit, {MAX_QUEUED_ENV}={cap}): wait for one to finish, or stop one")
        (path / store.CANCEL).unlink(missing_ok=True)
        queued_at = time.time()
        store.update_run(path, status="queued", error=None, pid=None, heartbeat=queued_at,
                        host=socket.gethostname(), queued_at=queued_at)
        pid = start_detached(cmd, path / store.LOG, {"OMP_NUM_THREADS": str(max(1, threads_per_job() // processes)),
                                                    MAX_JOBS_ENV: str(slots)})   # the waiter need not ask torch
        _ticket(path, queued_at, pid, record.owner).touch()   # before the lock goes: the process removes it only after
        store.update_run(path, pid=pid)
    return pid


def more_epochs(path: Path, n, by: people.Person | None = None) -> int:
    """Let a finished or stopped run train `n` epochs more: the same run goes on from its checkpoint (its
    curves continue) to the epochs it has done plus n; a schedule stretches to the new length and early
    stopping counts its patience anew. The new number of epochs; launch(path, resume=True) trains them."""
    from cnn_core.config import MAX_EPOCHS

    path = Path(path).resolve()
    record = store.check_change(path, by)
    if (status := store.effective_status(record)) in store.ACTIVE:
        raise ValueError(f"run {record.id} is {status}: more epochs are for a finished or stopped run")
    if not (path / store.CHECKPOINT).is_file():
        raise ValueError(f"run {record.id} has no checkpoint to go on from")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"more epochs must be a whole number of at least 1, got {n!r}")
    done = int(record.summary.get("epochs_done") or 0)
    if done + n > MAX_EPOCHS:
        raise ValueError(f"{done} + {n} epochs is more than {MAX_EPOCHS:,}")
    owners.check_room(by, path.parent, epochs=done + n, starting=None)
    store.update_run(path, config={**record.config, "epochs": done + n})
    return done + n


def start_detached(cmd: list[str], log: Path, defaults: dict | None = None, **env) -> int:
    """Start `cmd` in its own process session (it outlives the caller), output appended to `log`, this project
    importable; `defaults` fill environment variables not set already, `env` overrides. Its pid."""
    project_root = Path(__file__).resolve().parents[2]
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


def cancel(path: Path, by: people.Person | None = None) -> str:
    """Ask a queued or running run to stop (it saves a checkpoint and ends `cancelled`).
    Returns the status it had."""
    path = Path(path)
    status = store.effective_status(store.check_change(path, by))
    if status in store.ACTIVE:
        (path / store.CANCEL).touch()
    return status


def wait(path: Path, timeout: float = 600.0, until=store.FINISHED) -> str:
    """Poll until the run's effective status is in `until`; returns it (TimeoutError after `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        status = store.effective_status(store.read_run(path))
        if status in until:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {Path(path).name} still {status} after {timeout:.0f} s")
        time.sleep(POLL_S)


def delete_run(path: Path, runs_dir: Path | None = None, timeout: float = 60.0,
               by: people.Person | None = None) -> str:
    """Delete one run folder; a queued or running run is cancelled first and waited for (its checkpoint
    saved, its process gone). Returns the status the run had. ValueError when it will not stop within
    `timeout` s, or when `path` is not a run of the runs folder; nothing is deleted then. by: the Person in
    class mode (people.NotYours for another's run)."""
    path = Path(path)
    if by is not None:
        try:
            store.check_change(path, by)
        except people.NotYours:
            raise
        except ValueError:      # an unreadable one: store.delete_run asks for a teacher
            pass
    try:
        record = store.read_run(path)
        status, pid = store.effective_status(record), record.pid
        here = record.host == socket.gethostname()
    except ValueError:
        status, pid, here = "corrupt", None, False
    deadline = time.monotonic() + timeout
    while status in store.ACTIVE and pid:
        # Stop asked again on every poll: the engine drops a request made before its first step. The
        # process writes `cancelled` before it lets go of its folder (the disk reserve, train.log): the
        # folder goes once the process has ended too.
        if cancel(path) not in store.ACTIVE and not (here and files.pid_alive(int(pid))):
            break
        if time.monotonic() > deadline:
            raise ValueError(f"run {path.name} did not stop within {timeout:.0f} s; nothing deleted, "
                             "try again in a moment")
        time.sleep(0.25)
    store.delete_run(path, runs_dir, by=by)
    return status


def active_runs(runs_dir: Path | None = None) -> list[store.Run]:
    """Runs queued or running right now, oldest first."""
    return in_progress(store.list_runs(runs_dir))


def in_progress(records: list) -> list[store.Run]:
    """The runs of a listing that are queued or running, oldest first."""
    return sorted((r for r in records if r.effective_status in store.ACTIVE), key=lambda r: r.queued_at or 0)


# ---- the queue: tickets, slots --------------------------------------------------------------------
_held: dict[Path, tuple[int | None, object]] = {}     # run folder -> (slot, its lock file) held by this process


def _queue_dir(root: Path) -> Path:
    folder = Path(root) / QUEUE
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def _queue_lock(root: Path):
    """Held while a ticket is counted and made (launch), made or removed (the waiter): a waiter cannot take
    its slot and remove its ticket before the launch that started it has made that ticket."""
    with open(_queue_dir(root) / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ticket(path: Path, queued_at: float, pid: int, owner: str | None = None) -> Path:
    """The run's place in line: `<queued_at>.<pid>.<owner's tag>.<run id>`; sorted by name, the oldest first."""
    return _queue_dir(path.parent) / f"{queued_at:017.6f}.{pid}.{people.tag(owner)}.{path.name}"


@dataclass(frozen=True)
class Ticket:
    file: Path
    pid: int
    tag: str          # the owner's (people.tag)
    run_id: str
    training: bool    # renamed run.<name>: its run holds a slot


def _tickets(root: Path) -> list[Ticket]:
    """The live tickets, oldest first, waiting and training; those of dead processes met on the way are
    removed (killed while waiting or training: the place is free)."""
    out = []
    for name in sorted(os.listdir(_queue_dir(root))):
        training = name.startswith(TRAINING)
        parts = name.removeprefix(TRAINING).split(".", 4)   # seconds, micro, pid, tag, run id (may hold dots)
        if len(parts) != 5 or not (parts[0].isdigit() and parts[2].isdigit() and parts[4]):
            continue
        file = Path(root) / QUEUE / name
        if files.pid_alive(int(parts[2])):
            out.append(Ticket(file, int(parts[2]), parts[3], parts[4], training))
        else:
            file.unlink(missing_ok=True)
    return out


def turns(tickets: list[Ticket], served: dict[str, float] | None = None) -> list[tuple[Ticket, int]]:
    """The waiting tickets in the order they get slots, each with its turn: a person's k-th waiting run has
    turn (their runs training) + k, and lower turns go first; within a turn, the person served longest ago
    first (`served`: owner tag -> when a run of theirs last took a slot), then the oldest ticket. Round-robin
    between people; with one owner, plain first come first served."""
    count: dict[str, int] = {}
    for t in tickets:
        if t.training:
            count[t.tag] = count.get(t.tag, 0) + 1
    ordered = []
    for t in tickets:                       # oldest first: each person's own runs keep their order
        if not t.training:
            ordered.append((count.get(t.tag, 0), (served or {}).get(t.tag, 0.0), t.file.name, t))
            count[t.tag] = count.get(t.tag, 0) + 1
    return [(o[3], o[0]) for o in sorted(ordered, key=lambda o: o[:3])]


def _served(root: Path) -> dict[str, float]:
    """When a run of each owner last took a slot (runs/.queue/.served/<tag>'s modification time)."""
    folder = _queue_dir(root) / SERVED
    try:
        return {e.name: e.stat().st_mtime for e in os.scandir(folder)}
    except FileNotFoundError:
        return {}


def _line(root: Path) -> list[tuple[Ticket, int]]:
    """The waiting runs' tickets in the order they get slots, with their turns (dead tickets removed)."""
    return turns(_tickets(root), _served(root))


def waiting_runs(runs_dir: Path | None = None) -> list[str]:
    """The runs whose processes wait for a training slot now, next in line first (one directory listing)."""
    return [t.run_id for t, _ in _line(Path(runs_dir or store.default_runs_dir()))]


def queue(runs_dir: Path | None = None) -> list[dict]:
    """The line as a teacher sees it: each waiting run's id and turn, next first, then the runs training."""
    root = Path(runs_dir or store.default_runs_dir())
    tickets = _tickets(root)
    return ([{"run": t.run_id, "turn": turn, "training": False} for t, turn in turns(tickets, _served(root))]
            + [{"run": t.run_id, "turn": None, "training": True} for t in tickets if t.training])


def _try_slot(slots: Path):
    """The first free slot: (number, its locked file), or None when all are taken."""
    for n in range(max_jobs()):
        handle = open(slots / f"{n}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return n, handle
        except BlockingIOError:
            handle.close()
    return None


def _wait_in_line(path: Path, ticket: Path):
    """Poll until this ticket is first in line and a slot is free: (number, locked file); None on cancel.
    Each poll: the queue's listing, a stat of the cancel file, and the slot locks when first."""
    slots = path.parent / ".slots"
    slots.mkdir(exist_ok=True)
    beat = time.monotonic()
    while True:
        if (path / store.CANCEL).exists():
            return None
        line = _line(path.parent)
        if line and line[0][0].file.name == ticket.name and (got := _try_slot(slots)) is not None:
            return got
        if time.monotonic() - beat > HEARTBEAT_S:
            store.update_run(path, heartbeat=time.time())
            beat = time.monotonic()
        time.sleep(POLL_S)


@contextlib.contextmanager
def slot(path: Path, runs_dir: Path | None = None):
    """Hold one of max_jobs() training slots for the life of the block; wait (status queued, a ticket in
    runs/.queue, heartbeat kept) until one is free and this run is the oldest waiting. Yields the slot
    number, or None when a cancel was requested while the run was still waiting. Nested in a block of
    its own for the same run, it yields what the outer one holds; under torchrun started by a waiting
    process (SLOT_HELD_ENV), the slot that process holds."""
    path = Path(path).resolve()
    if path in _held:
        yield _held[path][0]
        return
    n, _, held_for = os.environ.get(SLOT_HELD_ENV, "").partition(":")
    record = store.update_run(path, status="queued", pid=os.getpid(), host=socket.gethostname(),
                             heartbeat=time.time(), queued_at=store.read_run(path).queued_at or time.time())
    if n.isdigit() and held_for == str(path):
        yield int(n)
        return
    ticket = _ticket(path, record.queued_at, os.getpid(), record.owner)
    training = ticket.with_name(TRAINING + ticket.name)
    with _queue_lock(path.parent):
        ticket.touch()
    got = None
    try:
        got = _wait_in_line(path, ticket)
    finally:
        with _queue_lock(path.parent):
            if got:         # it keeps its ticket while it trains: its owner's turns count it
                ticket.rename(training)
                (served := _queue_dir(path.parent) / SERVED).mkdir(exist_ok=True)
                (served / people.tag(record.owner)).touch()
            else:
                ticket.unlink(missing_ok=True)
    _held[path] = got or (None, None)
    try:
        yield _held[path][0]
    finally:
        del _held[path]
        training.unlink(missing_ok=True)
        if got:
            fcntl.flock(got[1], fcntl.LOCK_UN)
            got[1].close()


def hand_over(path: Path, cmd: list[str]) -> None:
    """Become `cmd` (os.execv), the slot held for `path` kept: its lock file stays open in the new program,
    which SLOT_HELD_ENV tells (cnn_core's train under torchrun takes it as its own). Never returns."""
    n, handle = _held[Path(path).resolve()]
    os.set_inheritable(handle.fileno(), True)
    os.environ[SLOT_HELD_ENV] = f"{n}:{Path(path).resolve()}"
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


def end_cancelled_while_queued(path: Path) -> str:
    """Record that a run was cancelled before it got a slot; the line to print."""
    store.update_run(path, status="cancelled")
    return f"run {Path(path).name} cancelled while queued"
