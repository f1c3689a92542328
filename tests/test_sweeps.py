"""Sweeps (cnn_core/sweeps/ledger.py, driver.py): bad spaces refused before anything launches, a grid driven
to its end on the local queue with a failed trial recorded and the sweep going on, cancel and delete,
pruning (median, ASHA), and a driver killed with kill -9 then resumed. Ray: test_sweeps_ray.py."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pagekit import page_file

from cnn_core.cli.entry import main
from cnn_core.runs import metrics_log, store
from cnn_core.sweeps import driver, ledger

ROOT = Path(__file__).resolve().parent.parent
BASE = ["--dataset", "mnist", "--arch", "mlp", "--val-size", "50", "--batch-size", "64", "--epochs", "1"]


def cli(*args: str, timeout=300, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **env})


def cli_here(capsys, *args) -> tuple[int, str, str]:
    """The CLI's parser and handlers in this process, for commands that refuse before launching anything
    (a fresh process would only add 3 s of importing torch)."""
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def nothing_launched(runs_dir: Path) -> bool:
    return not store.list_runs(runs_dir) and not list(ledger.folder(runs_dir).glob("*.json"))


@pytest.mark.parametrize("space, words", [
    ((), "the search space is empty"),
    (("--grid", "colour=red,blue"), "'colour' is not a setting a sweep can vary"),
    (("--grid", "lr=0.1,0"), "learning rate must be in (0, 10], got 0 (in lr=0)"),
    (("--grid", "batch_size=64,0"), "batch size must be between 1 and 8,192, got 0 (in batch_size=0)"),
    (("--sample", "lr=log:0.001:0.1", "--trials", "1001"), "a sweep has 1 to 1,000 trials; this one would have 1001"),
    (("--grid", "lr=" + ",".join(str(i / 1000) for i in range(1, 41)), "--grid",
      "batch_size=" + ",".join(str(b) for b in range(8, 34))), "this one would have 1040"),
    (("--sample", "weight_decay=0.5:0.1", "--trials", "3"), "LOW must be below HIGH"),
    (("--grid", "lr=0.1", "--sample", "momentum=0:0.9"), "give --grid or --sample, not both"),
])
def test_bad_spaces_are_refused_with_their_reason_and_nothing_launches(capsys, runs_dir, space, words):
    code, _, err = cli_here(capsys, "sweep", *BASE, *space)
    assert code == 2 and words in err, err
    assert nothing_launched(runs_dir)


def test_a_ray_address_that_does_not_answer_is_refused_quickly(capsys, runs_dir):
    started = time.monotonic()
    code, _, err = cli_here(capsys, "sweep", *BASE, "--grid", "lr=0.01,0.1", "--backend", "ray",
                            "--address", "192.0.2.1:6379")
    assert code == 1 and "the Ray cluster at 192.0.2.1:6379 does not answer" in err and "nothing was launched" in err
    assert time.monotonic() - started < ledger.CONNECT_TIMEOUT_S + 5
    assert nothing_launched(runs_dir)


def test_a_grid_runs_every_trial_as_a_run_records_a_failure_and_names_the_best(runs_dir):
    """lr 10 blows LeNet up (the engine stops it as failed); the sweep records why and goes on."""
    out = cli("sweep", *BASE[:2], "--arch", "lenet", *BASE[4:], "--grid", "lr=0.05,10", "--wait")
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    (sweep,) = ledger.list_sweeps()
    assert sweep.status == "completed" and [t["number"] for t in sweep.runs] == [1, 2]
    by_lr = {t["params"]["lr"]: t for t in sweep.runs}
    assert by_lr[10]["status"] == "failed" and "diverged" in by_lr[10]["reason"]
    assert by_lr[0.05]["status"] == "completed" and by_lr[0.05]["score"] > 0.5
    assert f"best: trial #{by_lr[0.05]['number']}" in out.stdout and "--lr 0.05" in out.stdout
    trials = sorted(store.readable(store.list_runs(runs_dir)), key=lambda r: r.trial)
    assert [(r.sweep, r.trial) for r in trials] == [(sweep.id, 1), (sweep.id, 2)]
    assert {r.config["lr"] for r in trials} == {0.05, 10}
    shown = cli("sweeps", "show", sweep.id)
    assert "completed" in shown.stdout and "diverged" in shown.stdout


def test_cancel_stops_the_trials_and_delete_removes_them(runs_dir, capsys):
    out = cli("sweep", "--dataset", "mnist", "--arch", "lenet", "--val-size", "50", "--batch-size", "8", "--epochs",
              "10", "--sample", "lr=log:0.001:0.01", "--trials", "6", "--sampler", "random")   # slow trials
    assert out.returncode == 0, out.stderr
    (sweep,) = ledger.list_sweeps()
    deadline = time.monotonic() + 120
    while not any(t["status"] == "running" for t in ledger.read(sweep.id).runs):
        assert time.monotonic() < deadline, ledger.read(sweep.id)
        time.sleep(0.3)
    assert cli_here(capsys, "sweeps", "cancel", sweep.id)[0] == 0
    while ledger.effective_status(ledger.read(sweep.id)) in ledger.ACTIVE:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    done = ledger.read(sweep.id)
    assert done.status == "cancelled" and len(done.runs) < 6
    ended = {r.id: r.effective_status for r in store.readable(store.list_runs(runs_dir))}
    assert "cancelled" in ended.values() and set(ended.values()) <= {"cancelled", "completed"}
    assert {t["run"]: t["status"] for t in done.runs} == ended
    code, out, _ = cli_here(capsys, "sweeps", "delete", sweep.id)
    assert code == 0 and f"and its {len(done.runs)} runs" in out
    assert nothing_launched(runs_dir)


@pytest.mark.stress   # 17 s; the ASHA test below covers pruning in the suite (kept within 10 minutes)
def test_the_median_rule_stops_a_poor_trial_and_says_why(runs_dir, monkeypatch):
    """Grid points run in the order given, one at a time here (CNN_MAX_JOBS=1): two good learning rates
    complete, then lr 1e-6 sits at chance and is stopped early (Optuna's median rule, from 2 completed
    trials), cancelled with the reason; the sweep still completes. The driver runs in this process (what
    `sweep --wait` runs), its trials as real processes."""
    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    from cnn_core.config import TrainConfig

    base = TrainConfig(dataset="mnist", arch="lenet", val_size=50, batch_size=8, lr=0.01, epochs=8)  # ~0.3 s an epoch
    sweep = driver.drive(ledger.create(base, grid={"lr": [0.01, 0.02, 0.000001]}, prune="median").id)
    assert [t["status"] for t in sweep.runs] == ["completed", "completed", "pruned"], sweep.runs
    assert re.match(r"stopped early by the median rule after epoch [1-7]: best validation accuracy 0\.\d+ was "
                    "among the worst", sweep.runs[2]["reason"]), sweep.runs[2]["reason"]
    (pruned,) = [r for r in store.readable(store.list_runs(runs_dir)) if r.trial == 3]
    assert pruned.status == "cancelled" and pruned.summary.get("epochs_done", 0) < 8


def test_a_killed_driver_resumes_and_asha_stops_the_poor_trial(runs_dir, capsys):
    """Grid lr 0.02 then 1e-6, one trial at a time (CNN_MAX_JOBS=1), 6 epochs each. The driver is killed
    (kill -9) while trial 1 trains: the sweep reads interrupted and trial 1, a detached run, trains on.
    `sweeps resume --wait` follows trial 1 to its end (the same process: not restarted), then runs trial 2,
    which ASHA (successive halving) compares with trial 1 at its first rung, epoch 1, and stops."""
    base = ["--dataset", "mnist", "--arch", "lenet", "--val-size", "50", "--batch-size", "8", "--epochs", "6"]
    out = cli("sweep", *base, "--grid", "lr=0.02,0.000001", "--prune", "asha", CNN_MAX_JOBS="1")
    assert out.returncode == 0, out.stderr
    (sweep,) = ledger.list_sweeps()
    deadline = time.monotonic() + 120
    while not any(t["status"] == "running" for t in sweep.runs):
        assert time.monotonic() < deadline, sweep
        time.sleep(0.2)
        sweep = ledger.read(sweep.id)
    first = store.read_run(runs_dir / sweep.runs[0]["run"])
    os.kill(sweep.pid, signal.SIGKILL)
    while ledger.effective_status(ledger.read(sweep.id)) != "interrupted":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert store.read_run(first.path).effective_status == "running"          # the trial trains on
    code, _, err = cli_here(capsys, "sweeps", "resume", sweep.id)            # not twice, nor a finished one
    assert code == 0
    code, _, err = cli_here(capsys, "sweeps", "resume", sweep.id)
    assert code == 1 and f"sweep {sweep.id} is starting: only an interrupted or failed sweep resumes" in err, err
    os.kill(ledger.read(sweep.id).pid, signal.SIGKILL)                       # this test follows it with --wait
    while ledger.effective_status(ledger.read(sweep.id)) != "interrupted":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    out = cli("sweeps", "resume", sweep.id, "--wait", CNN_MAX_JOBS="1")
    assert out.returncode == 0 and "best: trial #1" in out.stdout, out.stdout + out.stderr[-3000:]
    done = ledger.read(sweep.id)
    assert done.status == "completed" and [t["status"] for t in done.runs] == ["completed", "pruned"], done.runs
    assert re.match(r"stopped early by the asha rule after epoch 1: ", done.runs[1]["reason"]), done.runs[1]
    trained = {r.trial: r for r in store.readable(store.list_runs(runs_dir))}
    assert sorted(trained) == [1, 2] and trained[1].pid == first.pid and trained[1].summary["epochs_done"] == 6
    assert [m["epoch"] for m in metrics_log.read_metrics(first.path) if m.get("kind") == "epoch"] == [1, 2, 3, 4, 5, 6]
    assert trained[2].status == "cancelled" and trained[2].summary.get("epochs_done", 0) < 6


def test_a_sweep_waits_for_room_in_a_full_line_then_runs_every_trial(runs_dir, monkeypatch):
    """CNN_MAX_QUEUED=1 and the line full (an outside run waits for the one slot, which this test holds): the
    driver launches no trial past the cap; its first trial is held, status queued, no process. Once the
    outside run is cancelled the trial takes the free place in line, and with the slot let go both trials
    train and the sweep completes."""
    import fcntl
    import threading

    from cnn_core.config import TrainConfig
    from cnn_core.train import jobs

    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    monkeypatch.setenv("CNN_MAX_QUEUED", "1")
    base = TrainConfig(dataset="mnist", arch="mlp", val_size=50, batch_size=64, epochs=1)
    outside = store.create_run(base)
    (runs_dir / ".slots").mkdir(parents=True)
    slot = open(runs_dir / ".slots" / "0.lock", "a")
    fcntl.flock(slot, fcntl.LOCK_EX)
    jobs.launch(outside)
    sweep = ledger.create(base, grid={"lr": [0.05, 0.1]})
    drive_thread = threading.Thread(target=driver.drive, args=(sweep.id,), daemon=True)
    drive_thread.start()
    try:
        deadline = time.monotonic() + 60
        while not (trials := ledger.read(sweep.id).runs):
            assert time.monotonic() < deadline, "no trial made"
            time.sleep(0.1)
        first = runs_dir / trials[0]["run"]
        time.sleep(2.5)                         # two retries of the held trial, both refused
        held = store.read_run(first)
        assert held.pid is None and held.effective_status == "queued" and not (first / store.LOG).exists()
        assert jobs.waiting_runs(runs_dir) == [outside.name] and len(ledger.read(sweep.id).runs) == 1
        jobs.cancel(outside)
        while first.name not in jobs.waiting_runs(runs_dir):
            assert time.monotonic() < deadline, "the held trial never took the free place"
            time.sleep(0.1)
    finally:
        slot.close()
    drive_thread.join(240)
    done = ledger.read(sweep.id)
    assert not drive_thread.is_alive() and done.status == "completed", done
    assert [t["status"] for t in done.runs] == ["completed", "completed"], done.runs
    assert store.read_run(outside).status == "cancelled"


@pytest.fixture
def listener():
    """A real TCP server on this machine that accepts nothing by itself: (its HOST:PORT, a function that says
    whether anything connected to it since)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.3)

        def connected() -> bool:
            try:
                server.accept()[0].close()
                return True
            except TimeoutError:
                return False
        yield f"127.0.0.1:{server.getsockname()[1]}", connected


def test_the_dashboard_path_refuses_an_unconfigured_ray_address_without_connecting(runs_dir, monkeypatch, listener):
    """sweeps.create(cluster=...) takes only a name the server is configured with (CNN_RAY_ADDRESSES): an
    address that answers, passed as the cluster, is refused in words before any socket reaches it, and
    nothing is written; the configured name resolves to its address (the reachability probe connects)."""
    from cnn_core.config import TrainConfig

    address, connected = listener
    base = TrainConfig(dataset="mnist", arch="mlp", epochs=1)
    monkeypatch.delenv(ledger.RAY_ADDRESSES_ENV, raising=False)
    with pytest.raises(ValueError, match=rf"^'{address}' is not a Ray cluster this server is configured with; choose "
                       r"a local Ray instance or one of: none is configured \(the server's CNN_RAY_ADDRESSES\)"):
        ledger.create(base, grid={"lr": [0.1]}, backend="ray", cluster=address)
    monkeypatch.setenv(ledger.RAY_ADDRESSES_ENV, f"lab={address}, gpu=10.0.0.9:6379")
    with pytest.raises(ValueError, match=r"^'elsewhere' is not a Ray cluster .* one of: lab, gpu; nothing was launched"):
        ledger.create(base, grid={"lr": [0.1]}, backend="ray", cluster="elsewhere")
    assert not connected() and nothing_launched(runs_dir)
    sweep = ledger.create(base, grid={"lr": [0.1]}, backend="ray", cluster="lab")
    assert sweep.address == address and ledger.read(sweep.id).address == address and connected()


def test_a_bad_ray_address_setting_is_named(monkeypatch):
    """CNN_RAY_ADDRESSES with an entry that is not NAME=HOST:PORT or HOST:PORT is refused naming it."""
    monkeypatch.setenv(ledger.RAY_ADDRESSES_ENV, "lab=10.0.0.5:6379, gpu=http://gpu-box")
    with pytest.raises(ValueError, match=r"CNN_RAY_ADDRESSES: 'gpu=http://gpu-box' is not NAME=HOST:PORT or HOST:PORT"):
        ledger.ray_addresses()
    monkeypatch.setenv(ledger.RAY_ADDRESSES_ENV, "lab=10.0.0.5:6379, 127.0.0.1:6380")
    assert ledger.ray_addresses() == {"lab": "10.0.0.5:6379", "127.0.0.1:6380": "127.0.0.1:6380"}


def test_the_sweep_tab_offers_configured_ray_clusters_and_no_free_address(monkeypatch):
    """Train's Sweep tab: no text box for an address; with backend ray, a picker of a local Ray instance and
    the server's configured clusters, by name."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(ledger.RAY_ADDRESSES_ENV, "lab=10.0.0.5:6379, gpu=10.0.0.9:6379")
    at = AppTest.from_file(page_file("train"), default_timeout=90)
    at.session_state["train.tab"] = "Sweep"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="sweep.backend").set_value("ray").run()
    assert not at.exception and not at.text_input, [t.label for t in at.text_input]
    picker = at.selectbox(key="sweep.cluster")
    assert picker.options == ["a local Ray instance", "lab", "gpu"] and not picker.disabled
    assert picker.set_value("gpu").run().selectbox(key="sweep.cluster").value == "gpu"


def test_the_sweep_tab_names_settings_by_the_forms_labels():
    """Train's Sweep tab offers each setting by the label the New run form shows (not its field id) and
    sweeps the field that label names."""
    import pandas as pd

    from ui.train import sweep

    assert {"Learning rate", "Batch size", "Label smoothing"} <= set(sweep.SWEPT) and "lr" not in sweep.SWEPT
    rows = pd.DataFrame([{"field": "Learning rate", "values": "0.01,0.1"}, {"field": "Batch size", "values": "32,64"}])
    assert sweep._space(rows, sample=False) == ({"lr": [0.01, 0.1], "batch_size": [32, 64]}, {})
