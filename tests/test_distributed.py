"""One run over several processes: real torchrun processes, gloo on this CPU (2 processes x 1 thread).

torchrun is the venv's own `torchrun` script, the command README gives; OMP_NUM_THREADS=1 is what
torchrun itself sets for each process when it is unset, written here so the single-process run it is
compared with uses one thread too."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.core import distributed
from cnn_core.runs import metrics_log, store
from cnn_core.train import engine, jobs

ROOT = Path(__file__).resolve().parent.parent
TORCHRUN = Path(sys.executable).parent / "torchrun"
RUN = ["--dataset", "mnist", "--arch", "lenet", "--val-size", "100", "--seed", "0", "--quiet"]
pytestmark = pytest.mark.skipif(not TORCHRUN.exists(), reason=f"no torchrun beside {sys.executable}")


def torchrun(*args: str, nproc: int = 2, launch: tuple = ("--standalone",), wait: bool = True, timeout=240):
    cmd = [str(TORCHRUN), *launch, "--nproc-per-node", str(nproc), "-m", "cnn_core", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def cli(*args: str, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


def run_folders(runs_dir: Path) -> list[Path]:
    return sorted(p for p in runs_dir.iterdir() if (p / store.RUN_JSON).is_file()) if runs_dir.exists() else []


def test_each_process_takes_a_contiguous_part_of_every_batch():
    parts = [distributed.shard(10, distributed.World(rank, rank, 3)) for rank in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 4), (4, 7), (7, 10)]
    assert distributed.batch_problem(32, 2) is None and distributed.batch_problem(33, 1) is None
    assert distributed.batch_problem(32, 3).endswith("choose a multiple of 3, such as 30 or 33")
    assert distributed.batch_problem(2, 4).endswith("choose a multiple of 4, such as 4")


def test_two_processes_train_one_run_that_learns_like_one(runs_dir):
    """torchrun --nproc-per-node 2 makes one run folder, written by rank 0, that records its world, and
    reaches the single-process run's test accuracy within 1.5 points."""
    alone = cli("train", *RUN, "--epochs", "2", "--batch-size", "32")
    assert alone.returncode == 0, alone.stderr[-2000:]
    together = torchrun("train", *RUN, "--epochs", "2", "--batch-size", "32")
    assert together.returncode == 0, together.stdout[-3000:] + together.stderr[-3000:]
    one, two = (store.read_run(p) for p in sorted(run_folders(runs_dir), key=lambda p: store.read_run(p).created))
    assert len(run_folders(runs_dir)) == 2                              # rank 1 made no folder of its own
    assert (one.world_size, two.world_size, two.backend) == (1, 2, "gloo")
    assert len(two.hosts) == 2 and two.status == "completed"
    assert abs(one.test_acc - two.test_acc) <= 0.015, (one.test_acc, two.test_acc)
    assert one.test_acc > 0.8
    epochs = [m for m in metrics_log.read_metrics(two.path) if m["kind"] == "epoch"]
    assert [m["epoch"] for m in epochs] == [1, 2] and all(m["images_per_sec"] > 0 for m in epochs)
    assert not torch.distributed.is_initialized()                        # nothing here joined a group


def test_one_process_initialises_no_process_group(runs_dir):
    record = engine.run_training(store.create_run(TrainConfig(dataset="mnist", arch="mlp", val_size=50, epochs=1,
                                                             batch_size=64)))
    assert record.status == "completed" and record.world_size == 1 and record.backend is None
    assert record.hosts == [socket.gethostname()]
    assert not torch.distributed.is_initialized() and distributed.current().size == 1


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_killing_one_of_two_processes_leaves_an_interrupted_run_that_resumes_with_one(runs_dir):
    """kill -9 of rank 1 mid-epoch: torchrun stops rank 0, the run reads interrupted, its last checkpoint
    is kept; `train --resume` in one process (another world size) finishes it, each epoch logged once."""
    proc = torchrun("train", *RUN, "--epochs", "12", "--batch-size", "8", "--lr", "0.01", "--log-every", "5",
                    wait=False)                                         # 12 short epochs: time to act mid-run
    try:
        deadline = time.monotonic() + 180
        while True:
            found = run_folders(runs_dir)
            record = store.read_run(found[0]) if found else None
            if record and record.status == "running" and record.progress.get("step", 0) >= 80:
                break                                                   # past epoch 1's checkpoint (68 steps)
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            time.sleep(0.2)
        rank0 = record.pid
        (rank1,) = [p for p in _children(proc.pid) if p != rank0]
        os.kill(rank1, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    record = store.read_run(found[0])
    assert record.effective_status == "interrupted", (record.status, record.error)
    assert torch.load(found[0] / store.CHECKPOINT, weights_only=False)["epoch"] >= 1
    resumed = cli("train", "--resume", record.id)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    done = store.read_run(found[0])
    assert done.status == "completed" and done.world_size == 1
    assert [m["epoch"] for m in metrics_log.read_metrics(found[0]) if m["kind"] == "epoch"] == list(range(1, 13))


def test_a_batch_the_processes_cannot_share_is_refused_before_anything_is_written(runs_dir):
    out = torchrun("train", *RUN, "--epochs", "1", "--batch-size", "33")
    assert out.returncode != 0
    assert "batch size 33 does not split evenly over 2 processes" in out.stdout + out.stderr
    assert "such as 32 or 34" in out.stdout + out.stderr
    assert run_folders(runs_dir) == []


def test_a_rendezvous_endpoint_that_does_not_answer_fails_in_its_stated_time(runs_dir):
    """192.0.2.1 (TEST-NET-1) never answers. read_timeout is shortened from its 60 s default to 4 s (README
    says how) to keep the suite short; torchrun gives up then, before any process of the product starts."""
    started = time.monotonic()
    out = torchrun("train", *RUN, "--epochs", "1", nproc=1, timeout=120, launch=(
        "--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "192.0.2.1:29400",
        "--rdzv-conf", "join_timeout=4,read_timeout=4"))
    took = time.monotonic() - started
    assert out.returncode != 0 and took < 30, took
    assert "RendezvousConnectionError" in out.stderr and "C10d store has failed" in out.stderr
    assert run_folders(runs_dir) == []


def test_resuming_with_another_architectures_checkpoint_fails_clearly_on_every_process(runs_dir):
    paths = {}
    for arch in ("lenet", "mlp"):
        paths[arch] = store.create_run(TrainConfig(dataset="mnist", arch=arch, val_size=50, epochs=2, batch_size=64))
        assert engine.run_training(paths[arch]).status == "completed"
    shutil.copy(paths["mlp"] / store.CHECKPOINT, paths["lenet"] / store.CHECKPOINT)
    out = torchrun("train", "--resume", paths["lenet"].name, "--quiet", timeout=120)
    assert out.returncode != 0
    record = store.read_run(paths["lenet"])
    assert record.status == "failed" and "lenet" in record.error, record.error
    assert "interrupted" not in record.error


def test_the_dashboard_launches_a_run_over_two_processes(runs_dir):
    """jobs.launch(processes=2) is what the Train page's Processes setting does: torchrun on this machine."""
    most = jobs.max_processes()
    with pytest.raises(ValueError, match=rf"{most + 1} processes asked; this machine can run at most {most} for one run"):
        jobs.launch(store.create_run(TrainConfig(dataset="mnist", arch="mlp", epochs=1)), processes=most + 1)
    path = store.create_run(TrainConfig(dataset="mnist", arch="mlp", val_size=50, epochs=1, batch_size=64))
    jobs.launch(path, processes=2)
    assert jobs.wait(path, timeout=180) == "completed", (path / store.LOG).read_text()[-3000:]
    record = store.read_run(path)
    assert record.world_size == 2 and record.summary["test_acc"] > 0.5
    assert json.loads((path / store.RUN_JSON).read_text())["hosts"] == record.hosts
