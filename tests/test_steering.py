"""Steering a run (cnn_core/train/trainer.py, runs.steer, jobs.more_epochs): a learning-rate change mid-run
takes effect at the next step, is logged, and a run stopped and resumed after it ends exactly like one
never stopped; early stopping's epoch and reason; more epochs on a finished run; pause and continue of a
real training process from the CLI."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_core.cli.entry import main
from cnn_core.config import TrainConfig
from cnn_core.runs import metrics_log, store
from cnn_core.train import jobs, trainer
from cnn_core.train.engine import run_training

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(dataset="mnist", arch="lenet", val_size=100, batch_size=32, epochs=2, lr=0.05, log_every=1, seed=3)


def _log_tail(path, lines=15):
    log = path / store.LOG
    return log.read_text().splitlines()[-lines:] if log.exists() else "(no log)"


def _metrics(path, kind):
    return [m for m in metrics_log.read_metrics(path) if m["kind"] == kind]


def _epochs(path):
    return [{k: m[k] for k in ("epoch", "train_loss", "val_acc", "lr")} for m in _metrics(path, "epoch")]


def _steer_and_cancel(path, steer_at, cancel_at=None):
    """on_progress (every step here): ask for lr 0.01 at `steer_at` (once: taking it reports progress
    again), cancel at `cancel_at`."""
    asked = []

    def hook(progress):
        if progress["step"] == steer_at and not asked:
            asked.append(store.steer(path, lr=0.01))
        if progress["step"] == cancel_at:
            (path / store.CANCEL).touch()
    return hook


def test_a_learning_rate_change_takes_effect_at_the_next_step_and_resumes_exactly(monkeypatch):
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)     # progress every step: the requests land where asked
    whole = store.create_run(TrainConfig(**FAST))
    assert run_training(whole, on_progress=_steer_and_cancel(whole, 5)).status == "completed"
    steps = {m["step"]: m["lr"] for m in _metrics(whole, "step")}
    (steer,) = _metrics(whole, "steer")
    assert (steer["step"], steer["lr"], steer["was"]) == (5, 0.01, 0.05)
    # cosine from 0.05 up to step 5, then the same curve from 0.01: the ratio is exactly 1/5 after it
    total = store.read_run(whole).progress["total_steps"]          # 2 epochs of 16 steps
    cosine = lambda s: 0.5 * (1 + math.cos(math.pi * s / total))  # noqa: E731
    assert steps[5] == pytest.approx(0.05 * cosine(5))
    assert steps[6] == pytest.approx(0.01 * cosine(6)) and steps[30] == pytest.approx(0.01 * cosine(30))
    assert steer["rate"] == pytest.approx(0.01 * cosine(5))

    split = store.create_run(TrainConfig(**FAST))         # the same run, stopped at step 12 and resumed
    stopped = run_training(split, on_progress=_steer_and_cancel(split, 5, cancel_at=12))
    assert stopped.status == "cancelled" and stopped.progress["step"] == 12
    resumed = run_training(split, resume=True)
    assert resumed.status == "completed"
    untimed = lambda path: [{k: v for k, v in m.items() if k != "time"} for m in _metrics(path, "steer")]  # noqa: E731
    assert _epochs(split) == _epochs(whole) and untimed(split) == untimed(whole)
    assert {m["step"]: m["lr"] for m in _metrics(split, "step")} == steps
    assert resumed.summary["test_acc"] == store.read_run(whole).summary["test_acc"]


def test_a_bad_rate_or_a_finished_run_is_refused_with_its_reason():
    path = store.create_run(TrainConfig(**FAST))
    store.update_run(path, status="completed")
    with pytest.raises(ValueError, match=f"run {path.name} is completed: only a training run can be steered"):
        store.steer(path, lr=0.01)
    store.update_run(path, status="running", pid=__import__("os").getpid())
    with pytest.raises(ValueError, match=r"learning rate must be in \(0, 10\], got 0"):
        store.steer(path, lr=0)
    assert not (path / store.STEER).exists()


def test_early_stopping_marks_its_epoch_and_more_epochs_go_on_from_the_checkpoint():
    """min_gain 0.5 cannot be met after the first epoch: with patience 1 the run stops after epoch 2 of 8,
    saying why; two more epochs continue the same run (its curves go on), and patience counts anew, so
    it stops again after one epoch without gain."""
    path = store.create_run(TrainConfig(**{**FAST, "epochs": 8, "patience": 1, "min_gain": 0.5, "log_every": 5}))
    record = run_training(path)
    assert record.status == "completed" and record.summary["stopped_early"] == 2
    assert record.summary["epochs_done"] == 2 and [m["epoch"] for m in _metrics(path, "epoch")] == [1, 2]
    (stop,) = _metrics(path, "stop")
    assert stop["epoch"] == 2 and stop["reason"].startswith(
        "no gain of 0.5 in validation accuracy for 1 epoch (the last at epoch 1: ")
    assert stop["reason"].endswith("stopped after epoch 2 of 8")

    assert jobs.more_epochs(path, 2) == 4
    record = run_training(path, resume=True)
    assert record.status == "completed" and record.summary["stopped_early"] == 3
    assert [m["epoch"] for m in _metrics(path, "epoch")] == [1, 2, 3] and len(_metrics(path, "test")) == 1
    assert [m["epoch"] for m in _metrics(path, "stop")] == [3]
    with pytest.raises(ValueError, match="more epochs must be a whole number of at least 1, got 0"):
        jobs.more_epochs(path, 0)


def test_more_epochs_continue_a_completed_run_as_one():
    path = store.create_run(TrainConfig(**{**FAST, "epochs": 1, "schedule": "none", "log_every": 5}))
    first = run_training(path)
    assert jobs.more_epochs(path, 1) == 2
    second = run_training(path, resume=True)
    assert second.status == "completed" and second.summary["epochs_done"] == 2
    assert [m["epoch"] for m in _metrics(path, "epoch")] == [1, 2]
    steps = [m["step"] for m in _metrics(path, "step")]
    per_epoch = first.progress["total_steps"]
    assert steps == sorted(set(steps)) and [m["step"] for m in _metrics(path, "epoch")] == [per_epoch, 2 * per_epoch]
    straight = store.create_run(TrainConfig(**{**FAST, "epochs": 2, "schedule": "none", "log_every": 5}))
    assert run_training(straight).status == "completed"
    assert _epochs(path) == _epochs(straight)             # the same as 2 epochs at once


def test_pause_and_continue_a_training_process_from_the_cli(runs_dir, capsys):
    """A real detached run: `runs steer --pause` holds it (status paused, no step taken), `--lr` and
    `--continue` let it go on at the new rate (the change and the pause in its log); then it is stopped."""
    # long, and a rate that trains at batch 4 (0.05 there leaves LeNet stuck at chance, on the edge of blowing up)
    path = store.create_run(TrainConfig(**{**FAST, "batch_size": 4, "lr": 0.01, "epochs": 200, "log_every": 10}))
    jobs.launch(path)

    def cli(*args):
        """The CLI's parser and handler in this process (the training is the real process here; a fresh
        interpreter per command would only add 3 s of importing torch each)."""
        code = main(["runs", "steer", path.name, *args])
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    def until(what, timeout=60):
        deadline = time.monotonic() + timeout
        while not what(store.read_run(path)):
            run = store.read_run(path)
            assert run.status not in store.FINISHED and time.monotonic() < deadline, \
                (run.status, run.error, run.progress, _log_tail(path))
            time.sleep(0.1)

    until(lambda r: r.effective_status == "running" and r.progress.get("step"))
    assert cli("--pause").returncode == 0
    until(lambda r: r.effective_status == "paused")
    held = store.read_run(path).progress["step"]
    time.sleep(1.5)
    assert store.read_run(path).progress["step"] == held and store.read_run(path).effective_status == "paused"
    out = cli("--lr", "0.005", "--continue")
    assert out.returncode == 0 and "asked run" in out.stdout, out.stderr
    until(lambda r: r.effective_status == "running" and r.progress["step"] > held + 20)
    assert [m["kind"] for m in metrics_log.read_metrics(path) if m["kind"] in ("pause", "steer")] == ["pause", "steer"]
    (steer,) = _metrics(path, "steer")
    assert steer["lr"] == 0.005 and steer["step"] == held
    assert jobs.cancel(path) in store.ACTIVE and jobs.wait(path, timeout=60) == "cancelled"
    out = cli("--lr", "0.02")
    assert out.returncode == 1 and "is cancelled: only a training run can be steered" in out.stderr
    assert json.loads((path / store.RUN_JSON).read_text())["status"] == "cancelled"


# ---- many tabs steering at once: every request arrives -------------------------------------------
_STEERER = """
import sys, time
from pathlib import Path
from cnn_core.runs import store
path, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
(path.parent / f"ready-{who}").touch()
while not (path.parent / "go").exists():
    time.sleep(0.001)
for i in range(n):
    store.steer(path, **{f"{who}-{i}": True})
"""

_TAKER = """
import json, sys, time
from pathlib import Path
from types import SimpleNamespace
from cnn_core.train import trainer
path = Path(sys.argv[1])
me = SimpleNamespace(path=path, world=SimpleNamespace(active=False, main=True), step=0)
(path.parent / "ready-taker").touch()
taken = {}
while not (path.parent / "done").exists():
    taken.update(trainer.Trainer._request(me, now=True))      # the training process's own take
print(json.dumps(sorted(taken)))
"""


def _training_run() -> Path:
    """A run whose record says it is running in this (live) process: steer() accepts it."""
    path = store.create_run(TrainConfig(**FAST))
    store.update_run(path, status="running", pid=os.getpid())
    return path


def _start(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _go(path: Path, procs: dict, timeout: float = 60) -> None:
    """Wait until every process is ready, then let them all start at once."""
    deadline = time.monotonic() + timeout
    while not all((path.parent / f"ready-{who}").exists() for who in procs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs.values()), "a child did not start"
        time.sleep(0.01)
    (path.parent / "go").touch()


def test_steering_from_several_processes_at_once_loses_no_request():
    """3 processes x 40 requests with distinct keys, at once: steer.json holds all 120."""
    path = _training_run()
    procs = {who: _start(_STEERER, path, who, 40) for who in ("a", "b", "c")}
    _go(path, procs)
    assert [p.wait(timeout=120) for p in procs.values()] == [0, 0, 0]
    pending = json.loads((path / store.STEER).read_text())
    assert {f"{who}-{i}" for who in procs for i in range(40)} - set(pending) == set()


def test_requests_made_while_the_training_process_takes_them_all_arrive():
    """2 steering processes x 40 requests while a third takes them as the trainer does: each key is
    taken or still waiting, none lost."""
    path = _training_run()
    procs = {who: _start(_STEERER, path, who, 40) for who in ("a", "b")}
    procs["taker"] = taker = _start(_TAKER, path)
    _go(path, procs)
    assert [procs[who].wait(timeout=120) for who in ("a", "b")] == [0, 0]
    (path.parent / "done").touch()
    taken = json.loads(taker.communicate(timeout=120)[0])
    pending = json.loads((path / store.STEER).read_text()) if (path / store.STEER).exists() else {}
    assert {f"{who}-{i}" for who in ("a", "b") for i in range(40)} - {*taken, *pending} == set()
