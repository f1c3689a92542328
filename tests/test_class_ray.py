"""Class mode past one machine: with a Ray cluster in the class's settings, each launched run waits its turn in
the queue, then trains as a Ray task on the cluster (cnn_core/sweeps/driver.train_on_ray), writing to the
shared runs folder. A real cluster (`ray start --head`, the conftest's ray_cluster) and real launches."""
from __future__ import annotations

import time

from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.runs import metrics_log, store
from cnn_core.train import jobs

RUN = dict(dataset="mnist", val_size=100, batch_size=8, epochs=3, arch="lenet", log_every=5)


def _epochs(path) -> list[int]:
    return [m["epoch"] for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]


def test_two_learners_runs_train_at_once_on_a_ray_cluster(runs_dir, ray_cluster):
    policy = people.Policy.from_dict({"learners": ["@school.test"], "teachers": ["grace@school.test"],
                                      "ray": ray_cluster, "runs_at_once": 2})
    ada, bob = policy.admits("ada@school.test"), policy.admits("bob@school.test")
    hers = store.create_run(TrainConfig(**{**RUN, "epochs": 6}), name="ada's", by=ada)
    his = store.create_run(TrainConfig(**RUN), name="bob's", by=bob)
    waiters = {jobs.launch(hers, by=ada), jobs.launch(his, by=bob)}   # each a local process holding its slot
    both, deadline = False, time.monotonic() + 240
    while not both:
        assert time.monotonic() < deadline, [store.read_run(p).status for p in (hers, his)]
        records = [store.read_run(p) for p in (hers, his)]
        both = all(r.effective_status == "running" and r.progress.get("step", 0) > 0 for r in records)
        time.sleep(0.2)
    assert all(r.pid not in waiters for r in records), "trained in the cluster's worker processes"
    jobs.cancel(hers, by=ada)                                   # Stop reaches the task through the shared folder
    assert jobs.wait(hers, timeout=120) == "cancelled"
    assert jobs.wait(his, timeout=240) == "completed"
    jobs.launch(hers, resume=True, by=ada)                      # resume: a task again, from the checkpoint
    assert jobs.wait(hers, timeout=240) == "completed"
    assert _epochs(hers) == [1, 2, 3, 4, 5, 6] and _epochs(his) == [1, 2, 3]
    for path in (hers, his):
        record = store.read_run(path)
        assert record.summary["test_acc"] > 0.3, record.summary
    assert "on the Ray cluster at" in (hers / store.LOG).read_text()
