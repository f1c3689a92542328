"""The training engine on small generated data: learning, determinism, cancel, exact resume, failures."""
from __future__ import annotations

import pytest
import torch

from cnn_core import checkpoints, engine, runs
from cnn_core.config import TrainConfig
from cnn_core.engine import run_training
from cnn_core.predict import load_model

FAST = dict(dataset="mnist", val_size=100, batch_size=32, epochs=2, lr=0.05, log_every=5, seed=3)


def _run(**overrides) -> tuple[dict, object]:
    path = runs.create_run(TrainConfig(**{**FAST, **overrides}))
    return run_training(path), path


def _epochs(path) -> list[dict]:
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
    return [{k: m[k] for k in keys} for m in runs.read_metrics(path) if m["kind"] == "epoch"]


def test_learning_happens_on_separable_classes():
    """lenet reaches well above chance (10%) on the generated classes within two epochs."""
    record, path = _run(arch="lenet")
    assert record["status"] == "completed", record.get("error")
    assert record["summary"]["test_acc"] > 0.8
    assert [m["epoch"] for m in runs.read_metrics(path) if m["kind"] == "epoch"] == [1, 2]


def test_run_folder_is_complete():
    """A finished run leaves run.json, metrics, checkpoint, best weights and per-epoch snapshots."""
    record, path = _run(arch="simple-cnn", epochs=1)
    names = {p.name for p in path.iterdir()}
    assert {"run.json", "metrics.jsonl", "checkpoint.pt", "best.pt", "snapshots"} <= names
    assert sorted(p.name for p in (path / "snapshots").iterdir()) == ["epoch-000.pt", "epoch-001.pt"]
    best = torch.load(path / "best.pt", weights_only=True)
    assert best["arch"] == "simple-cnn" and best["num_classes"] == 10 and best["input_shape"] == [1, 28, 28]
    assert len(best["mean"]) == 1 and best["std"][0] > 0
    kinds = {m["kind"] for m in runs.read_metrics(path)}
    assert kinds == {"step", "epoch", "test"}
    assert record["progress"]["step"] == record["progress"]["total_steps"]


def test_best_checkpoint_predicts_like_the_saved_model():
    """The model rebuilt from best.pt alone gives the test accuracy the run reported."""
    from cnn_core import data

    record, path = _run(arch="lenet", epochs=1)
    model, meta = load_model(path)
    splits = data.load_splits("mnist", 100, seed=FAST["seed"])
    _, acc = engine.evaluate(model, splits.test_x, splits.test_y)
    assert acc == pytest.approx(record["summary"]["test_acc"], abs=1e-9)


def test_same_seed_same_metrics():
    """Two runs of the same config and seed on CPU log identical epoch metrics."""
    _, a = _run(arch="cifar-net", arch_params={"dropout": 0.2}, augment="standard")
    _, b = _run(arch="cifar-net", arch_params={"dropout": 0.2}, augment="standard")
    assert _epochs(a) == _epochs(b)


@pytest.mark.parametrize("stop_step", [7, 19])  # mid-epoch and exactly at the end of epoch 1 (19 steps)
def test_resume_equals_uninterrupted(monkeypatch, stop_step):
    """A run cancelled at step k and resumed ends with the same metrics as one never stopped."""
    cfg = dict(arch="lenet", arch_params={"dropout": 0.3}, augment="standard", schedule="onecycle")
    _, whole = _run(**cfg)
    path = runs.create_run(TrainConfig(**{**FAST, **cfg}))
    monkeypatch.setattr(engine, "HEARTBEAT_S", 0.0)   # report every step so the cancel lands at stop_step

    def cancel_at(progress):
        if progress["step"] == stop_step:
            (path / runs.CANCEL).touch()
    stopped = run_training(path, on_progress=cancel_at)
    assert stopped["status"] == "cancelled"
    assert stopped["progress"]["step"] == stop_step
    resumed = run_training(path, resume=True)
    assert resumed["status"] == "completed"
    assert _epochs(path) == _epochs(whole)
    assert resumed["summary"]["test_acc"] == runs.read_run(whole)["summary"]["test_acc"]


def test_cancel_leaves_loadable_checkpoint(monkeypatch):
    """Cancel ends `cancelled` with a checkpoint that loads and rebuilds the model."""
    path = runs.create_run(TrainConfig(**{**FAST, "arch": "mlp"}))
    monkeypatch.setattr(engine, "HEARTBEAT_S", 0.0)
    record = run_training(path, on_progress=lambda p: (path / runs.CANCEL).touch())
    assert record["status"] == "cancelled"
    assert runs.effective_status(runs.read_run(path)) == "cancelled"
    model, meta = load_model(path, which="latest")
    assert meta["arch"] == "mlp" and model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_nan_loss_fails_with_message():
    """A learning rate that blows the weights up ends the run `failed`, saying so."""
    record, path = _run(arch="mlp", lr=10.0, momentum=0.99, epochs=1)
    assert record["status"] == "failed"
    assert "loss became" in record["error"] and "learning rate" in record["error"]
    assert not (path / "best.pt").exists() or checkpoints.load_checkpoint(path / "best.pt")


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle"])
def test_schedules_change_the_learning_rate(schedule):
    """Each schedule moves the logged learning rate away from its starting value."""
    _, path = _run(arch="mlp", schedule=schedule, step_size=1, epochs=2)
    rates = [m["lr"] for m in runs.read_metrics(path) if m["kind"] == "step"]
    assert len(set(round(r, 8) for r in rates)) > 1


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adaptive_optimizers_learn(optimizer):
    """Adam and AdamW at their usual rate learn the generated classes."""
    record, _ = _run(arch="simple-cnn", optimizer=optimizer, lr=0.003, epochs=1)
    assert record["summary"]["test_acc"] > 0.5


def test_cifar_shapes_train():
    """A colour dataset trains through the same loop (cifar2: two classes)."""
    record, _ = _run(dataset="cifar2", arch="res-net-deep", arch_params={"n_blocks": 2}, val_size=20,
                     augment="standard", epochs=1, batch_size=16)
    assert record["status"] == "completed", record.get("error")
    assert record["classes"] == ["airplane", "bird"]


def test_progress_keeps_speed_and_eta_across_epoch_boundaries(monkeypatch):
    """Every progress report after the first steps, epoch ends included, has images/s and an ETA."""
    monkeypatch.setattr(engine, "HEARTBEAT_S", 0.0)
    reports = []
    path = runs.create_run(TrainConfig(**{**FAST, "arch": "mlp", "epochs": 3}))
    record = run_training(path, on_progress=reports.append)
    late = [p for p in reports if p["step"] > 2]
    assert late and all(p["images_per_sec"] > 0 and p["eta"] is not None for p in late)
    assert record["progress"]["images_per_sec"] > 0
