"""The training engine on small generated data: learning, determinism, cancel, exact resume, failures."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from cnn_core import recipe
from cnn_core.analysis.predict import load_model
from cnn_core.config import TrainConfig
from cnn_core.runs import checkpoints, metrics_log, store
from cnn_core.train import trainer
from cnn_core.train.engine import run_training

FAST = dict(dataset="mnist", val_size=100, batch_size=32, epochs=2, lr=0.05, log_every=5, seed=3)


def _run(**overrides) -> tuple[dict, object]:
    path = store.create_run(TrainConfig(**{**FAST, **overrides}))
    return run_training(path), path


def _epochs(path) -> list[dict]:
    keys = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc")
    return [{k: m[k] for k in keys} for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]


def test_learning_happens_on_separable_classes():
    """lenet reaches well above chance (10%) on the generated classes within two epochs."""
    record, path = _run(arch="lenet")
    assert record.status == "completed", record.error
    assert record.summary["test_acc"] > 0.8
    assert [m["epoch"] for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"] == [1, 2]


def test_run_folder_is_complete():
    """A finished run leaves run.json, metrics, checkpoint, best weights and per-epoch snapshots."""
    record, path = _run(arch="simple-cnn", epochs=1)
    names = {p.name for p in path.iterdir()}
    assert {"run.json", "metrics.jsonl", "checkpoint.pt", "best.pt", "snapshots"} <= names
    assert sorted(p.name for p in (path / "snapshots").iterdir()) == ["epoch-000.pt", "epoch-001.pt"]
    best = torch.load(path / "best.pt", weights_only=True)
    assert best["arch"] == "simple-cnn" and best["num_classes"] == 10 and best["input_shape"] == [1, 28, 28]
    assert len(best["mean"]) == 1 and best["std"][0] > 0
    kinds = {m["kind"] for m in metrics_log.read_metrics(path)}
    assert kinds == {"step", "epoch", "grads", "test"}
    assert record.progress["step"] == record.progress["total_steps"]


def test_best_checkpoint_predicts_like_the_saved_model():
    """The model rebuilt from best.pt alone gives the test accuracy the run reported."""
    from cnn_core.data import catalog

    record, path = _run(arch="lenet", epochs=1)
    model, meta = load_model(path)
    splits = catalog.load_splits("mnist", 100, seed=FAST["seed"])
    _, acc = recipe.evaluate(model, splits.test_x, splits.test_y)
    assert acc == pytest.approx(record.summary["test_acc"], abs=1e-9)


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
    path = store.create_run(TrainConfig(**{**FAST, **cfg}))
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)   # report every step so the cancel lands at stop_step

    def cancel_at(progress):
        if progress["step"] == stop_step:
            (path / store.CANCEL).touch()
    stopped = run_training(path, on_progress=cancel_at)
    assert stopped.status == "cancelled"
    assert stopped.progress["step"] == stop_step
    resumed = run_training(path, resume=True)
    assert resumed.status == "completed"
    assert _epochs(path) == _epochs(whole)
    assert resumed.summary["test_acc"] == store.read_run(whole).summary["test_acc"]


def test_cancel_leaves_loadable_checkpoint(monkeypatch):
    """Cancel ends `cancelled` with a checkpoint that loads and rebuilds the model."""
    path = store.create_run(TrainConfig(**{**FAST, "arch": "mlp"}))
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)
    record = run_training(path, on_progress=lambda p: (path / store.CANCEL).touch())
    assert record.status == "cancelled"
    assert store.effective_status(store.read_run(path)) == "cancelled"
    model, meta = load_model(path, which="latest")
    assert meta["arch"] == "mlp" and model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_nan_loss_fails_with_message():
    """A learning rate that blows the weights up ends the run `failed`, saying so."""
    record, path = _run(arch="mlp", lr=10.0, momentum=0.99, epochs=1)
    assert record.status == "failed"
    assert "diverged" in record.error and "learning rate" in record.error
    assert not (path / "best.pt").exists() or checkpoints.load_checkpoint(path / "best.pt")


def test_a_run_that_blows_up_fails_within_its_first_epoch_saying_it_diverged():
    """LeNet at learning rate 10 (the issue's case: loss 68,909 by step 20, then a dead net at chance): the
    run ends `failed` at its first logged step, saying it diverged, where, and what to try."""
    record, path = _run(arch="lenet", lr=10.0, epochs=3)
    assert record.status == "failed"
    error = record.error
    assert error.startswith("the training loss diverged") and "at step 5 (epoch 1)" in error, error
    assert "Lower the learning rate (it is 10; try 1)" in error and "ln 10" in error
    assert [m["kind"] for m in metrics_log.read_metrics(path)] == []       # stopped before its first line
    assert not (path / store.BEST).exists()


def test_a_spike_that_recovers_is_no_divergence():
    """One batch with a huge loss in a run that then goes on learning stays a spike: the smoothed loss is
    what is judged, so the run completes."""
    path = store.create_run(TrainConfig(**{**FAST, "arch": "mlp", "epochs": 1}))
    run = trainer.Trainer(path)

    def steps(loss: float, n: int) -> None:
        for _ in range(n):
            run._accumulate(torch.tensor(loss), torch.zeros(32, 10), torch.zeros(32, dtype=torch.long))

    steps(0.3, 30)
    steps(60.0, 1)
    run._check_diverged()           # 60 nats once: the average over ~20 steps is 3.3, under 11.5
    steps(0.3, 10)
    run._check_diverged()
    steps(60.0, 20)                     # 60 nats for 20 steps: blown up
    with pytest.raises(trainer.TrainingFailed, match="diverged"):
        run._check_diverged()


def test_chance_accuracy_is_recorded_and_flagged():
    """The summary records what guessing the commonest test class scores; a run below it plus 5 points
    gets a warning, a run well above none."""
    record, path = _run(arch="lenet")
    chance = record.summary["chance_acc"]
    assert 0.1 <= chance < 0.2 and store.chance_note(record) is None
    record.summary["test_acc"] = chance + 0.01
    assert store.chance_note(record).startswith(f"test accuracy {chance + 0.01:.2%} is chance level")
    assert store.chance_note(dataclasses.replace(record, status="failed")) is None


@pytest.mark.parametrize("schedule", ["step", "cosine", "onecycle"])
def test_schedules_change_the_learning_rate(schedule):
    """Each schedule moves the logged learning rate away from its starting value."""
    _, path = _run(arch="mlp", schedule=schedule, step_size=1, epochs=2)
    rates = [m["lr"] for m in metrics_log.read_metrics(path) if m["kind"] == "step"]
    assert len(set(round(r, 8) for r in rates)) > 1


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adaptive_optimizers_learn(optimizer):
    """Adam and AdamW at their usual rate learn the generated classes."""
    record, _ = _run(arch="simple-cnn", optimizer=optimizer, lr=0.003, epochs=1)
    assert record.summary["test_acc"] > 0.5


def test_cifar_shapes_train():
    """A colour dataset trains through the same loop (cifar2: two classes)."""
    record, _ = _run(dataset="cifar2", arch="res-net-deep", arch_params={"n_blocks": 2}, val_size=20,
                     augment="standard", epochs=1, batch_size=16)
    assert record.status == "completed", record.error
    assert record.classes == ["airplane", "bird"]


def test_progress_keeps_speed_and_eta_across_epoch_boundaries(monkeypatch):
    """Every progress report after the first steps, epoch ends included, has images/s and an ETA."""
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)
    reports = []
    path = store.create_run(TrainConfig(**{**FAST, "arch": "mlp", "epochs": 3}))
    record = run_training(path, on_progress=reports.append)
    late = [p for p in reports if p["step"] > 2]
    assert late and all(p["images_per_sec"] > 0 and p["eta"] is not None for p in late)
    assert record.progress["images_per_sec"] > 0


def test_mirror_at_test_time_averages_image_and_mirror():
    """evaluate(mirror=True) scores the mean of each image's logits and its left-right mirror's; the
    setting is refused for digits (a mirrored digit is not a digit)."""
    import torch

    from cnn_core.nets.architectures import build_model
    from cnn_core.recipe import evaluate

    torch.manual_seed(0)
    model = build_model("fast-cnn", (3, 32, 32), 2, {"width": 8}).eval()
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,))
    with torch.no_grad():
        logits = (model(x) + model(x.flip(3))) / 2
    loss, acc = evaluate(model, x, y, mirror=True)
    assert acc == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert "not one of its images" in TrainConfig(dataset="mnist", tta=True).validate(check_data=False)["tta"]
    assert "tta" not in TrainConfig(dataset="cifar2", tta=True).validate(check_data=False)
