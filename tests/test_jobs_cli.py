"""Background jobs and the CLI, as real subprocesses: launch, queue, kill -9, resume, predict."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from cnn_core.config import TrainConfig
from cnn_core.runs import metrics_log, store
from cnn_core.train import jobs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLOW = dict(dataset="mnist", val_size=100, batch_size=8, epochs=4, arch="lenet", log_every=5)


def cli(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _wait_step(path, step, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.read_run(path)
        if record.progress.get("step", 0) >= step:
            assert record.status == "running", f"run ended before the test could act: {record.status}"
            return record
        time.sleep(0.2)
    raise TimeoutError(f"run never reached step {step}: {store.read_run(path)}")


@pytest.mark.stress   # reliability/test_faults kills runs (kill -9) and resumes them exactly in the suite (10 minutes)
def test_kill_9_reads_interrupted_and_resumes(runs_dir):
    """A launched job killed with SIGKILL shows `interrupted`; resume finishes the run."""
    path = store.create_run(TrainConfig(**SLOW))
    pid = jobs.launch(path)
    _wait_step(path, 80)          # past the first epoch's checkpoint (63 steps)
    os.kill(pid, signal.SIGKILL)
    assert jobs.wait(path, timeout=10) == "interrupted"
    jobs.launch(path, resume=True)
    assert jobs.wait(path, timeout=120) == "completed"
    record = store.read_run(path)
    assert [m["epoch"] for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"] == [1, 2, 3, 4]
    assert record.summary["test_acc"] > 0.5


@pytest.mark.stress   # reliability/test_concurrency's third-waits-its-turn covers the queue; the suite's 10 minutes
def test_second_run_queues_until_the_first_ends(runs_dir, monkeypatch):
    """With one slot, a second launched run waits `queued`, then trains after the first."""
    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    first = store.create_run(TrainConfig(**{**SLOW, "epochs": 40}))   # long enough to be still training here
    second = store.create_run(TrainConfig(**{**SLOW, "epochs": 1, "arch": "mlp"}))
    jobs.launch(first)
    _wait_step(first, 5)
    jobs.launch(second)
    deadline = time.monotonic() + 30
    while True:   # until the second process sits in the line (its ticket there, its first heartbeat written)
        waiting = store.read_run(second)
        if (waiting.heartbeat > waiting.queued_at and second.name in jobs.waiting_runs(runs_dir)) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    assert store.read_run(first).status == "running"
    assert store.effective_status(waiting) == "queued" and waiting.pid
    assert jobs.wait(first, timeout=120) == "completed"
    assert jobs.wait(second, timeout=120) == "completed"
    assert store.read_run(second).started >= store.read_run(first).started


def test_cancel_a_launched_run(runs_dir):
    """jobs.cancel stops a running job: status cancelled and a checkpoint on disk."""
    path = store.create_run(TrainConfig(**SLOW))
    jobs.launch(path)
    _wait_step(path, 10)
    assert jobs.cancel(path) == "running"
    assert jobs.wait(path, timeout=30) == "cancelled"
    assert (path / "checkpoint.pt").stat().st_size > 0


def test_cli_train_show_predict(runs_dir, tmp_path):
    """`train` completes a run, `runs show` prints its epochs and test accuracy, `predict` gives top-3."""
    out = cli("train", "--dataset", "mnist", "--arch", "lenet", "--epochs", "2", "--val-size", "100",
              "--batch-size", "32", "--lr", "0.05", "--name", "cli run", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "test accuracy" in out.stdout
    run_id = store.list_runs(runs_dir)[0].id
    show = cli("runs", "show", run_id)
    assert "<- best" in show.stdout and "test accuracy" in show.stdout
    image = tmp_path / "digit.png"
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255                      # a plain vertical stroke
    Image.fromarray(digit).save(image)
    pred = cli("predict", "--run", run_id, str(image))
    assert pred.returncode == 0, pred.stderr
    assert pred.stdout.startswith(str(image)) and pred.stdout.count(" 0.") + pred.stdout.count(" 1.") == 3


def test_cli_bad_config_names_fields_and_writes_nothing(runs_dir):
    """Bad flags exit 2 naming every bad field, and no run folder appears."""
    out = cli("train", "--lr", "0", "--batch-size", "0", "--param", "dropout=1.5", "--arch", "cifar-net")
    assert out.returncode == 2
    for words in ("lr", "batch_size", "arch_params.dropout"):
        assert words in out.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_cli_refuses_path_escape(runs_dir):
    """`runs delete ../x` is refused with a message and deletes nothing."""
    out = cli("runs", "delete", "../etc")
    assert out.returncode == 1 and "no run" in out.stderr


def test_launched_runs_share_the_cores(runs_dir, monkeypatch):
    """Each launched process gets cores // CNN_MAX_JOBS torch threads, so concurrent runs do not thrash."""
    monkeypatch.setenv("CNN_MAX_JOBS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    path = store.create_run(TrainConfig(**{**SLOW, "epochs": 1, "dry_run_batches": 2}))
    jobs.launch(path)
    assert jobs.wait(path, timeout=120) == "completed"
    assert store.read_run(path).threads == max(1, (os.cpu_count() or 1) // 2) == jobs.threads_per_job()


def test_cli_exits_non_zero_on_a_diverged_run(runs_dir):
    """`train --lr 10` ends failed: exit 1, the divergence named on stderr, the run folder says so too."""
    out = cli("train", "--dataset", "mnist", "--arch", "lenet", "--lr", "10", "--epochs", "1", "--val-size", "100",
              "--quiet")
    assert out.returncode == 1 and "diverged" in out.stderr and "Lower the learning rate" in out.stderr
    (record,) = store.list_runs(runs_dir)
    assert record.status == "failed" and "diverged" in record.error


def test_runs_show_warns_of_chance_accuracy(runs_dir, capsys):
    """`runs show` of a run that completed at chance level ends with the warning (the first look in
    this process, the second as a real CLI process)."""
    from cnn_core.cli import entry as command_line
    from cnn_core.train import engine

    path = store.create_run(TrainConfig(dataset="mnist", epochs=1, val_size=100))
    record = engine.run_training(path)
    assert command_line.main(["runs", "show", path.name]) == 0 and "warning" not in capsys.readouterr().out
    store.update_run(path, summary={**record.summary, "test_acc": record.summary["chance_acc"]})
    shown = cli("runs", "show", path.name).stdout
    assert "warning: test accuracy" in shown and "is chance level" in shown


def test_predict_and_show_take_a_run_folder_named_outside_the_runs_folder(tmp_path, monkeypatch, capsys):
    """The bundled model, named by its folder, predicts from the shell; `runs show` reads it; commands that
    change a run still refuse a folder outside the runs folder."""
    digit = tmp_path / "seven.png"
    img = np.zeros((28, 28), dtype=np.uint8)
    img[4:6, 6:22] = 255
    for r in range(6, 24):
        img[r, 21 - (r - 6) // 2:23 - (r - 6) // 2] = 255
    Image.fromarray(img).save(digit)
    out = cli("predict", "--run", "models/mnist-bundled", str(digit))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{digit}: 7 ")
    from cnn_core.cli import entry as command_line

    monkeypatch.chdir(ROOT)
    assert command_line.main(["runs", "show", "models/mnist-bundled"]) == 0
    assert "Bundled MNIST model" in capsys.readouterr().out
    assert command_line.main(["runs", "rename", "models/mnist-bundled", "x"]) == 1
    assert "outside" in capsys.readouterr().err
