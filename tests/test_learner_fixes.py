"""A learner's first hour (issue 29), the library's and the pages' part: a paused run's clock stops (its
images/s and ETA hold), steering from the live panel is confirmed and its notice goes with the run, counts
read "1 epoch", Compare's names stay apart and its picker starts on the dataset with the most runs, and
Grad-CAM on a tiny map says what it shows."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnn_core.config import TrainConfig
from cnn_core.runs import store
from cnn_core.train import trainer
from cnn_core.train.engine import run_training

ROOT = Path(__file__).resolve().parent.parent
FAST = dict(dataset="mnist", arch="lenet", val_size=100, batch_size=32, epochs=2, lr=0.05, log_every=1, seed=3)


# ---- a paused run ------------------------------------------------------------------------------------------
def test_paused_time_counts_neither_in_images_per_second_nor_in_the_eta(monkeypatch):
    """While paused the heartbeats (one per poll here) report the images/s, ETA and elapsed time of the moment
    it paused, not a speed over a growing time; after Continue the run completes."""
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)
    monkeypatch.setattr(trainer, "PAUSE_POLL_S", 0.05)
    path = store.create_run(TrainConfig(**FAST))
    beats: list[tuple[str, dict]] = []

    def hook(progress):
        status = store.read_run(path).status
        beats.append((status, dict(progress)))
        if progress["step"] == 5 and not any(s == "paused" for s, _ in beats) and status == "running":
            store.steer(path, pause=True)
        if sum(s == "paused" for s, _ in beats) == 10:
            store.steer(path, pause=False)

    assert run_training(path, on_progress=hook).status == "completed"
    paused = [p for s, p in beats if s == "paused"]
    assert len(paused) >= 10
    held = {(p["images_per_sec"], p["eta"], p["elapsed"]) for p in paused}
    assert len(held) == 1, held                # 10 beats over half a second: nothing moved
    (ips, eta, _), = held
    assert ips > 0 and eta is not None


# ---- steering from the live panel ----------------------------------------------------------------------------
def _training(status: str = "running") -> Path:
    """A run whose record says it trains (or is paused) in this live process, at step 12 of 24."""
    import os
    import time

    path = store.create_run(TrainConfig(**FAST), "steered")
    store.update_run(path, status=status, pid=os.getpid(), heartbeat=time.time(),
                     progress={"epoch": 1, "epochs": 2, "step": 12, "total_steps": 24, "steps_per_epoch": 12,
                               "images_per_sec": 400.0, "elapsed": 1.0, "eta": 1.0, "lr": 0.05})
    return path


def _live(path: Path):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "ui" / "train" / "page.py"), default_timeout=90)
    at.query_params["run"] = path.name
    return at.run()


def _notices(at) -> list[str]:
    return [str(e.value) for kind in ("info", "success", "error") for e in getattr(at, kind)]


def test_set_rate_is_confirmed_with_the_rate_asked_then_the_step_it_took_effect():
    """Set rate says at once what was asked and that it applies from the next step; once the run logs the
    change, from which step; once the run has completed, nothing of it stays."""
    from cnn_core.runs import metrics_log

    path = _training()
    at = _live(path)
    at.number_input(key="train.steer_lr").set_value(0.02)
    at.button(key="train.steer").click().run()
    assert not at.exception
    assert "New learning rate 0.02 asked: it applies from the next step." in _notices(at), _notices(at)
    assert store.take_steering(path) == {"lr": 0.02}
    writer = metrics_log.MetricsWriter(path)          # the training process takes it after step 12
    writer.log({"kind": "steer", "step": 12, "epoch": 1, "lr": 0.02, "was": 0.05, "rate": 0.02, "time": 1.0})
    writer.close()
    at.run()
    assert "Learning rate set to 0.02 from step 13 on (it was 0.05)." in _notices(at), _notices(at)
    store.update_run(path, status="completed", summary={"test_acc": 0.9, "best_epoch": 2})
    at.run()
    assert not [n for n in _notices(at) if "asked" in n or "Learning rate set" in n], _notices(at)


def test_a_paused_run_says_when_a_rate_applies_and_continue_leaves_no_notice_once_completed():
    """Paused: a rate asked applies once Continue is pressed; Continue is confirmed while the run is still
    paused; when the run has completed no 'Continue asked' (or any steering notice) is left on the page."""
    path = _training("paused")
    at = _live(path)
    at.number_input(key="train.steer_lr").set_value(0.02)
    at.button(key="train.steer").click().run()
    assert "New learning rate 0.02 asked: it applies from the next step once you press Continue." in _notices(at)
    at.button(key="train.continue").click().run()
    assert "Continue asked: the run goes on within a second." in _notices(at), _notices(at)
    assert store.take_steering(path) == {"lr": 0.02, "pause": False}
    store.update_run(path, status="completed", summary={"test_acc": 0.9, "best_epoch": 2})
    at.run()
    assert not [n for n in _notices(at) if "asked" in n.lower()], _notices(at)
    assert "ETA" in next(m.value for m in at.markdown if 'data-testid="runNumbers"' in m.value)


def test_a_paused_runs_eta_says_it_is_held():
    """The live panel's ETA of a paused run is marked as held."""
    at = _live(_training("paused"))
    numbers = next(m.value for m in at.markdown if 'data-testid="runNumbers"' in m.value)
    assert "held while paused" in numbers


# ---- "1 epoch", not "1 epochs" ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n, noun, plural, text", [
    (1, "epoch", None, "1 epoch"), (2, "epoch", None, "2 epochs"), (0, "run", None, "0 runs"),
    (1200, "image", None, "1,200 images"), (3, "class", None, "3 classes"), (1, "process", None, "1 process"),
    (2, "batch", None, "2 batches"), (1, "more epoch", "more epochs", "1 more epoch"), (5, "more epoch", "more epochs", "5 more epochs")])
def test_count_writes_one_in_the_singular(n, noun, plural, text):
    """The one helper for a count with its noun (cnn_core.core.progress.count, ui.views.count) says '1 epoch'."""
    from cnn_core.core.progress import count
    from ui import views

    assert count(n, noun, plural) == text and views.count(n, noun, plural) == text


def test_a_one_epoch_run_is_named_1_epoch():
    """The default run name of a 1-epoch run ends '1 epoch' (it read '1 epochs')."""
    from ui import views

    assert views.default_name(TrainConfig(**{**FAST, "epochs": 1})).endswith("· 1 epoch")
    assert views.default_name(TrainConfig(**FAST)).endswith("· 2 epochs")


def test_early_stopping_after_one_epoch_of_patience_says_1_epoch():
    """A run stopped early with patience 1 gives its reason with '1 epoch' (the one place that had its own if)."""
    path = store.create_run(TrainConfig(**{**FAST, "epochs": 4, "patience": 1, "min_gain": 0.5, "log_every": 20}))
    record = run_training(path)
    assert record.status == "completed" and "for 1 epoch (the last" in record.summary["stop_reason"]


def test_the_cli_says_1_more_epoch(capsys):
    """`train --resume RUN --more 1` prints '1 more epoch, 2 in all' (it read '1 more epochs')."""
    from cnn_core.cli.entry import main

    path = store.create_run(TrainConfig(**{**FAST, "epochs": 1, "log_every": 20}))
    assert run_training(path).status == "completed"
    capsys.readouterr()
    assert main(["train", "--resume", path.name, "--more", "1"]) == 0
    assert f"run {path.name}: 1 more epoch, 2 in all" in capsys.readouterr().err


# ---- Compare: names a narrow column keeps apart, the picker's dataset ------------------------------------------
SWEEP_NAME = "sweep of lr, batch_size · mnist · lenet"


def _trials(runs_dir: Path) -> list[str]:
    """Two trials of one sweep, named as sweeps.driver names them, and one plain run."""
    from test_compare import _record, _write

    ids = []
    for n, label in ((1, "lr=0.01, batch_size=32"), (2, "lr=0.1, batch_size=32")):
        rec = _record(f"trial-{n}")
        rec.name, rec.sweep, rec.trial = f"{SWEEP_NAME} #{n}: {label}", "sw1", n
        ids.append(_write(runs_dir, rec).name)
    _write(runs_dir, _record("plain"))
    return ids


def test_runs_table_names_start_with_what_tells_two_trials_apart(runs_dir):
    """A sweep's trials read '#1: lr=0.01, ... · sweep of ...' in the runs table and the picker's labels: the
    first 24 characters (what a medium column shows) differ; a plain run keeps its name."""
    from cnn_core.analysis import compare

    _trials(runs_dir)
    records = store.list_runs()
    names = dict(zip(*compare.runs_table(records)[["id", "name"]].T.values))
    assert names["trial-1"] == f"#1: lr=0.01, batch_size=32 · {SWEEP_NAME}" and names["plain"] == "plain"
    assert names["trial-1"][:24] != names["trial-2"][:24]
    labels = compare.unique_labels(records)
    assert labels["trial-2"].startswith("#2: lr=0.1") and len(set(labels.values())) == 3


def test_hyperparameter_picker_starts_on_the_dataset_with_the_most_runs(runs_dir):
    """Three finished MNIST runs and one CIFAR-2 run ('cifar2' sorts first): the picker opens on mnist."""
    from streamlit.testing.v1 import AppTest
    from test_compare import _record, _write

    for i, lr in enumerate((0.01, 0.05, 0.1)):
        _write(runs_dir, _record(f"m{i}", lr=lr))
    _write(runs_dir, _record("c0", dataset="cifar2"))
    at = AppTest.from_file(str(ROOT / "ui" / "compare" / "page.py"), default_timeout=60).run()
    assert not at.exception
    assert at.selectbox(key="compare.pc_dataset").value == "mnist"


# ---- Grad-CAM on a tiny map --------------------------------------------------------------------------------------
def test_map_sizes_and_the_finer_layer_of_lenet():
    """LeNet on 28x28: conv2 8x8, pool2 and act2 4x4 (at TINY_CAM); the finer layer before act2 is act1 (12x12)."""
    import torch

    from cnn_core.analysis import inspection
    from cnn_core.nets.architectures import build_model

    sizes = inspection.map_sizes(build_model("lenet", (1, 28, 28), 10, {}).eval(), torch.zeros(1, 28, 28))
    assert sizes == {"conv1": (24, 24), "pool1": (12, 12), "act1": (12, 12), "conv2": (8, 8), "pool2": (4, 4),
                     "act2": (4, 4)}
    assert inspection.finer_cam_layer(sizes, "act2") == "conv2" and inspection.finer_cam_layer(sizes, "conv1") is None


def test_grad_cam_on_a_4x4_layer_carries_a_caveat_and_names_an_earlier_layer(runs_dir):
    """Inspect > Saliency, Grad-CAM at LeNet's act2 (4x4): one line says the map is tiny, lights broad blocks
    (often the background) and suggests conv2; at conv2 (8x8) no such line."""
    from streamlit.testing.v1 import AppTest

    path = store.create_run(TrainConfig(**{**FAST, "epochs": 1, "log_every": 20}))
    assert run_training(path).status == "completed"
    at = AppTest.from_file(str(ROOT / "ui" / "inspector" / "page.py"), default_timeout=120)
    at.query_params["run"] = path.name
    at.run()
    at.selectbox(key="inspect.sal_layer").set_value("act2").run()
    assert not at.exception
    notes = [str(c.value) for c in at.caption if "maps are only" in str(c.value)]
    assert len(notes) == 1 and "4×4" in notes[0] and "background" in notes[0] and "conv2" in notes[0], notes
    at.selectbox(key="inspect.sal_layer").set_value("conv2").run()
    assert not [c for c in at.caption if "maps are only" in str(c.value)]
