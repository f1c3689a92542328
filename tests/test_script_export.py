"""A run as a standalone script (cnn_core/script_export.py, `export script`): one file of plain PyTorch
that, run in a folder where cnn_core cannot be imported, trains the same model on the same prepared data
with the same seed and gives the run's first-epoch validation accuracy (within 1.5 points; here it is
exact to the float); a learning-rate change made while the run trained is replayed."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnn_core import engine, metrics_log, runs, trainer
from cnn_core.cli import main
from cnn_core.config import TrainConfig

FAST = dict(dataset="mnist", val_size=100, batch_size=32, epochs=1, lr=0.05, log_every=5, seed=3)


def _export_and_run(path, tmp_path, small_data_dir, capsys) -> list[dict]:
    out = tmp_path / f"{path.name}.py"
    assert main(["export", "script", path.name, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "cnn_core" not in "".join(line for line in text.splitlines() if "import" in line)
    assert "class Net(nn.Module):" in text and "def main():" in text
    done = subprocess.run([sys.executable, str(out), "--epochs", "1", "--data-dir", str(small_data_dir)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})   # no PYTHONPATH: no cnn_core
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def _first_epoch(path) -> dict:
    return next(m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch")


def test_the_script_trains_the_run_again_to_its_first_epoch(tmp_path, small_data_dir, capsys):
    """LeNet with dropout, digit augmentation and a cosine schedule."""
    path = runs.create_run(TrainConfig(**FAST, arch="lenet", arch_params={"dropout": 0.3}, augment="standard"))
    assert engine.run_training(path).status == "completed"
    lines = _export_and_run(path, tmp_path, small_data_dir, capsys)
    run = _first_epoch(path)
    assert lines[0]["epoch"] == 1 and abs(lines[0]["val_acc"] - run["val_acc"]) <= 0.015, (lines, run)
    assert lines[0]["val_acc"] == run["val_acc"] and lines[0]["train_loss"] == pytest.approx(run["train_loss"])
    assert "test_acc" in lines[-1]


def test_a_custom_network_with_a_steered_rate_is_written_out_and_replayed(tmp_path, small_data_dir, capsys,
                                                                          monkeypatch):
    """A layer-editor network (batch norm, a residual block with its shortcut, global pooling), onecycle,
    its base rate changed to 0.02 at step 5 while it trained: the script builds the same network and
    replays the change."""
    stack = [{"type": "conv", "out": 8, "kernel": 3, "padding": 1}, {"type": "batchnorm"},
             {"type": "activation", "fn": "relu"}, {"type": "residual", "channels": 12}, {"type": "maxpool"},
             {"type": "globalpool"}]
    path = runs.create_run(TrainConfig(**FAST, arch="custom", arch_params={"layers": stack}, schedule="onecycle"))
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)

    asked = []

    def steer(progress):
        if progress["step"] == 5 and not asked:      # once: taking it reports progress again
            asked.append(runs.steer(path, lr=0.02))
    assert engine.run_training(path, on_progress=steer).status == "completed"
    text_lines = _export_and_run(path, tmp_path, small_data_dir, capsys)
    assert "LR_CHANGES = {5: 0.02}" in (tmp_path / f"{path.name}.py").read_text()
    assert "class Residual(nn.Module):" in (tmp_path / f"{path.name}.py").read_text()
    run = _first_epoch(path)
    assert abs(text_lines[0]["val_acc"] - run["val_acc"]) <= 0.015, (text_lines, run)
