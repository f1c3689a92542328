"""Ray clusters of the test's own (the conftest's ray_cluster: `ray start --head`, as a person starts one):
sweeps' trials as Ray tasks (cnn_core/sweeps/driver.RayTrials, `sweep --backend ray --address`), and class
mode's launched runs, which wait their turn in the queue and then train as Ray tasks on the cluster
(driver.train_on_ray), writing to the shared runs folder. One file: two clusters started at once on one
machine would contend for Ray's fixed ports (its client server's, 10001), and the suite's two workers each
take whole files."""
from __future__ import annotations

import os
import time

from test_sweeps import BASE, cli

from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.runs import metrics_log, store
from cnn_core.sweeps import ledger
from cnn_core.train import jobs


def test_trials_run_as_tasks_on_a_real_ray_cluster(runs_dir, ray_cluster):
    """--address: the driver joins the cluster (with its token: Ray's default since 2.59) and runs each
    trial as a task in the cluster's worker processes, writing to the shared runs folder."""
    out = cli("sweep", *BASE[:-1], "2", "--grid", "lr=0.05,0.1", "--backend", "ray", "--address", ray_cluster,
              "--wait", timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    (sweep,) = ledger.list_sweeps()
    assert sweep.backend == "ray" and sweep.address == ray_cluster
    assert all(t["status"] == "completed" for t in sweep.runs), sweep.runs
    records = store.readable(store.list_runs(runs_dir))
    assert len(records) == 2 and all(r.summary["test_acc"] > 0.3 for r in records), [r.summary for r in records]
    assert all(r.pid != os.getpid() for r in records)            # trained in the cluster's worker processes


RUN = dict(dataset="mnist", val_size=100, batch_size=8, epochs=3, arch="lenet", log_every=5)


def _epochs(path) -> list[int]:
    return [m["epoch"] for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (got := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return got


def _training(path) -> bool:
    record = store.read_run(path)
    assert record.effective_status not in store.FINISHED, (record.status, record.error)
    return record.effective_status == "running" and record.progress.get("step", 0) > 0


def test_two_learners_runs_train_at_once_on_a_ray_cluster(runs_dir, ray_cluster):
    """Each learner's run, once its turn comes, is a Ray task on the cluster: both train at once (each is
    paused mid-training by steering, so both tasks are seen alive together however the machine's load spaces
    their starts), continue, one is stopped and resumed, and both end completed."""
    policy = people.Policy.from_dict({"learners": ["@school.test"], "teachers": ["grace@school.test"],
                                      "ray": ray_cluster, "runs_at_once": 2})
    ada, bob = policy.admits("ada@school.test"), policy.admits("bob@school.test")
    hers = store.create_run(TrainConfig(**{**RUN, "epochs": 6}), name="ada's", by=ada)
    his = store.create_run(TrainConfig(**{**RUN, "epochs": 4}), name="bob's", by=bob)
    waiters = {jobs.launch(hers, by=ada), jobs.launch(his, by=bob)}   # each a local process holding its slot
    for path, person in ((hers, ada), (his, bob)):     # steering reaches a Ray task through the shared folder
        _until(lambda p=path: _training(p), 240, f"{path.name} never trained")
        store.steer(path, by=person, pause=True)
    _until(lambda: all(store.read_run(p).effective_status == "paused" for p in (hers, his)), 60, "both paused")
    records = [store.read_run(p) for p in (hers, his)]
    assert all(r.pid not in waiters for r in records), "trained in the cluster's worker processes"
    for path, person in ((hers, ada), (his, bob)):
        store.steer(path, by=person, pause=False)
    _until(lambda: _training(hers), 60, "ada's run never went on")
    jobs.cancel(hers, by=ada)                                   # Stop reaches the task the same way
    assert jobs.wait(hers, timeout=120) == "cancelled"
    assert jobs.wait(his, timeout=240) == "completed"
    jobs.launch(hers, resume=True, by=ada)                      # resume: a task again, from the checkpoint
    assert jobs.wait(hers, timeout=240) == "completed"
    assert _epochs(hers) == [1, 2, 3, 4, 5, 6] and _epochs(his) == [1, 2, 3, 4]
    for path in (hers, his):
        record = store.read_run(path)
        assert record.summary["test_acc"] > 0.3, record.summary
        assert [m for m in metrics_log.read_metrics(path) if m["kind"] == "pause"], "its pause was logged"
    assert "on the Ray cluster at" in (hers / store.LOG).read_text()
