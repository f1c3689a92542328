"""The waiting line of launched runs (cnn_core/train/jobs.py), with real detached processes: a cap on how many
wait (refused in words, never overshot by launches side by side), a waiting process that has not imported
torch and reads no other run, cancel while waiting, a waiter killed with kill -9 giving up its place, and
torchrun not started before its run has a slot.

Every test holds the training slots itself (an flock on runs/.slots/N.lock, as a training process does),
so the launched processes wait and none of them imports torch or trains: each test takes seconds.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pagekit import page_file, shown

from cnn_core.config import TrainConfig
from cnn_core.core import files
from cnn_core.runs import store
from cnn_core.train import jobs

SMALL = dict(dataset="mnist", arch="mlp", epochs=1, val_size=50)


def _until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.05)
    return value


@contextlib.contextmanager
def _slots_taken(runs_dir: Path):
    """Every training slot held by this test, as training processes hold them."""
    (runs_dir / ".slots").mkdir(parents=True, exist_ok=True)
    held = [open(runs_dir / ".slots" / f"{n}.lock", "a") for n in range(jobs.max_jobs())]
    for handle in held:
        fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        for handle in held:
            handle.close()


def _waiting(runs_dir: Path, *paths: Path) -> None:
    """Until each run's own process sits in the line: its ticket is there (launch makes it) and the process
    has written its first heartbeat (launch writes heartbeat = queued_at; the waiting process, later ones)."""
    def sitting() -> bool:
        line, records = jobs.waiting_runs(runs_dir), [store.read_run(p) for p in paths]
        return all(r.id in line and r.pid and r.heartbeat > r.queued_at for r in records)
    _until(sitting, 30, f"{[p.name for p in paths]} waiting for a slot")


def _tickets(runs_dir: Path) -> list[str]:
    """The ticket files in the queue folder, dead or alive (its lock file aside)."""
    return [p.name for p in (runs_dir / jobs.QUEUE).iterdir() if not p.name.startswith(".")]


def _cancel_all(paths) -> None:
    for p in paths:
        jobs.cancel(p)
    for p in paths:
        assert jobs.wait(p, timeout=30) in ("cancelled", "interrupted")


@pytest.fixture
def one_slot(monkeypatch, runs_dir):
    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    runs_dir.mkdir(parents=True, exist_ok=True)
    return runs_dir


def test_the_launch_past_the_cap_is_refused_in_words_and_starts_nothing(one_slot, monkeypatch):
    """CNN_MAX_QUEUED=2 with the slot busy: two launches wait, the third is refused with the limit named;
    no process, ticket or log for it; once one waiter is cancelled a launch is taken again."""
    monkeypatch.setenv("CNN_MAX_QUEUED", "2")
    paths = [store.create_run(TrainConfig(**SMALL)) for _ in range(3)]
    with _slots_taken(one_slot):
        try:
            first, second = jobs.launch(paths[0]), jobs.launch(paths[1])
            with pytest.raises(jobs.QueueFull, match=r"^2 runs are already waiting for a training slot \(the limit, "
                               r"CNN_MAX_QUEUED=2\): wait for one to finish, or stop one$"):
                jobs.launch(paths[2])
            refused = store.read_run(paths[2])
            assert refused.pid is None and refused.queued_at is None and not (paths[2] / store.LOG).exists()
            _waiting(one_slot, paths[0], paths[1])
            assert jobs.waiting_runs(one_slot) == [paths[0].name, paths[1].name]     # oldest first
            assert {store.read_run(p).pid for p in paths[:2]} == {first, second}
            _cancel_all(paths[:1])
            assert jobs.launch(paths[2])
            _waiting(one_slot, paths[2])
        finally:
            _cancel_all(p for p in paths if store.read_run(p).pid)


def test_launches_side_by_side_do_not_overshoot_the_cap(one_slot, monkeypatch):
    """Six launches at once from six threads with room for two: exactly two start, four are refused."""
    monkeypatch.setenv("CNN_MAX_QUEUED", "2")
    paths = [store.create_run(TrainConfig(**SMALL)) for _ in range(6)]
    started, refused, go = [], [], threading.Barrier(6)

    def launch(path):
        go.wait()
        try:
            started.append(jobs.launch(path))
        except jobs.QueueFull as exc:
            refused.append(str(exc))

    with _slots_taken(one_slot):
        try:
            threads = [threading.Thread(target=launch, args=(p,)) for p in paths]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(started) == 2 and len(refused) == 4, (started, refused)
            assert all(r.startswith("2 runs are already waiting") for r in refused)
            assert len(jobs.waiting_runs(one_slot)) == 2
        finally:
            _cancel_all(p for p in paths if store.read_run(p).pid)


def _audit_hook(tmp_path: Path) -> tuple[Path, Path]:
    """A sitecustomize that logs every run.json a Python process opens (sys.addaudithook): put its folder on
    PYTHONPATH and a launched process loads it. The folder and the log."""
    hook, log = tmp_path / "hook", tmp_path / "opened.log"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, sys\n"
        f"_log = open({str(log)!r}, 'a', buffering=1)\n"
        "def _hook(event, args):\n"
        "    if event == 'open' and str(args[0]).endswith('run.json'):\n"
        "        _log.write(f'{args[0]}\\n')\n"
        "sys.addaudithook(_hook)\n")
    return hook, log


def test_a_waiting_process_is_small_and_reads_no_other_run(one_slot, monkeypatch, tmp_path):
    """A launched run waiting behind four others (queued records, never launched): its process holds under
    100 MB (about 600 MB when it imported torch first), maps no torch library, and in 2 s of waiting
    (4 polls) opens no run.json but its own. CNN_MAX_JOBS unset, as on a plain server."""
    monkeypatch.delenv("CNN_MAX_JOBS")
    hook, log = _audit_hook(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(hook))
    others = [store.create_run(TrainConfig(**SMALL)) for _ in range(4)]
    path = store.create_run(TrainConfig(**SMALL))
    with _slots_taken(one_slot):
        try:
            pid = jobs.launch(path)
            _waiting(one_slot, path)
            opened_before = log.read_text().split()
            time.sleep(2.0)
            status = Path(f"/proc/{pid}/status").read_text()
            rss_mb = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
            assert rss_mb < 100, f"a waiting process holds {rss_mb:.0f} MB"
            assert "torch" not in Path(f"/proc/{pid}/maps").read_text()
            opened = log.read_text().split()
            assert opened and set(opened) == {str(path / store.RUN_JSON)}, set(opened) - {str(path / store.RUN_JSON)}
            assert len(opened) == len(opened_before), "the waiting process read its own run.json while it waited"
            assert store.effective_status(store.read_run(path)) == "queued" and store.read_run(path).pid == pid
        finally:
            _cancel_all([path])
    assert all(store.read_run(o).pid is None for o in others)


def test_cancel_while_waiting_ends_the_run_cancelled_and_frees_its_place(one_slot):
    """Stop on a waiting run: its process ends within a poll or two, the run reads cancelled, its log says
    so, and its ticket is gone."""
    path = store.create_run(TrainConfig(**SMALL))
    with _slots_taken(one_slot):
        pid = jobs.launch(path)
        _waiting(one_slot, path)
        assert jobs.cancel(path) == "queued"
        _until(lambda: not files.pid_alive(pid), 10, "the waiting process ending")
    assert store.read_run(path).status == "cancelled"
    assert f"run {path.name} cancelled while queued" in (path / store.LOG).read_text()
    assert jobs.waiting_runs(one_slot) == [] and not _tickets(one_slot)


def test_a_waiter_killed_with_kill_9_gives_up_its_place(one_slot):
    """The first in line is killed with SIGKILL: it reads interrupted, its ticket is removed by the next
    look at the line, and the run behind it gets the slot as soon as the slot frees."""
    first, second = (store.create_run(TrainConfig(**SMALL)) for _ in range(2))
    with _slots_taken(one_slot):
        pid = jobs.launch(first)
        _waiting(one_slot, first)
        os.kill(pid, signal.SIGKILL)
        _until(lambda: not files.pid_alive(pid), 10, "the killed process gone")
        assert store.effective_status(store.read_run(first)) == "interrupted"
        assert jobs._ticket(first, store.read_run(first).queued_at, pid).exists()
    with jobs.slot(second) as n:       # this process waits in line, as a launched one does
        assert n == 0
        held = jobs._ticket(second, store.read_run(second).queued_at, os.getpid())   # kept while it trains
        assert jobs.waiting_runs(one_slot) == [] and _tickets(one_slot) == [jobs.TRAINING + held.name]
        assert store.read_run(second).pid == os.getpid()
    assert not _tickets(one_slot)


def test_torchrun_starts_only_once_its_run_has_a_slot(one_slot):
    """launch(processes=2) with the slot busy: the waiting process is still the small one (no torchrun, no
    torch); cancelled, the run reads cancelled and torchrun never started."""
    path = store.create_run(TrainConfig(**SMALL))
    with _slots_taken(one_slot):
        pid = jobs.launch(path, processes=2)
        _waiting(one_slot, path)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert b"torch.distributed.run" not in cmdline and b"--processes" in cmdline
        assert "torch" not in Path(f"/proc/{pid}/maps").read_text()
        jobs.cancel(path)
        assert jobs.wait(path, timeout=30) == "cancelled"
    assert "torch.distributed" not in (path / store.LOG).read_text()


def test_a_bad_cap_is_refused_in_words(one_slot, monkeypatch):
    """CNN_MAX_QUEUED that is not a whole number of at least 1 is named, and nothing starts."""
    path = store.create_run(TrainConfig(**SMALL))
    for bad in ("0", "many", "-3"):
        monkeypatch.setenv("CNN_MAX_QUEUED", bad)
        with pytest.raises(ValueError, match=rf"CNN_MAX_QUEUED must be a whole number of at least 1 .*got '{bad}'"):
            jobs.launch(path)
    assert store.read_run(path).pid is None and not (path / store.LOG).exists()


def test_the_cli_refuses_a_detached_run_past_the_cap_and_keeps_nothing(one_slot, monkeypatch):
    """`train --detach` with the line full: exit 1 with the message, and no run folder is left behind."""
    monkeypatch.setenv("CNN_MAX_QUEUED", "1")
    waiting = store.create_run(TrainConfig(**SMALL))
    with _slots_taken(one_slot):
        try:
            jobs.launch(waiting)
            out = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--dataset", "mnist", "--arch", "mlp",
                                  "--epochs", "1", "--detach"], capture_output=True, text=True, timeout=120)
            assert out.returncode == 1, out.stderr
            assert "error: 1 run is already waiting for a training slot (the limit, CNN_MAX_QUEUED=1)" in out.stderr
            assert [r.id for r in store.list_runs(one_slot)] == [waiting.name]
        finally:
            _cancel_all([waiting])


def test_launch_on_the_train_page_with_the_line_full_says_so_and_keeps_nothing(one_slot, monkeypatch):
    """The Train form's Launch with CNN_MAX_QUEUED runs waiting: the refusal in words, and no run folder
    made for it (only the run already waiting is there)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNN_MAX_QUEUED", "1")
    waiting = store.create_run(TrainConfig(**SMALL))
    with _slots_taken(one_slot):
        try:
            jobs.launch(waiting)
            at = AppTest.from_file(page_file("train"), default_timeout=90)
            at.session_state["train.tab"] = "New run"     # with a run waiting, the page opens on Live
            at.run()
            at.button(key="train.launch").click().run()
            said = [shown(e.value) for e in at.error]
            assert "Not launched: 1 run is already waiting for a training slot (the limit, CNN_MAX_QUEUED=1): wait " \
                   "for one to finish, or stop one." in said, said
            assert [r.id for r in store.list_runs(one_slot)] == [waiting.name]
        finally:
            _cancel_all([waiting])
