"""Sweeps on a Ray cluster of the test's own (cnn_core/sweeps/driver.RayTrials): `ray start --head` as a
person starts one, then `sweep --backend ray --address`. A file of its own so that the suite's two
workers share the sweep tests evenly."""
from __future__ import annotations

import os

from test_sweeps import BASE, cli

from cnn_core.runs import store
from cnn_core.sweeps import ledger


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
