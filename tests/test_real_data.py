"""Real CIFAR-10 (../shared/datasets/cifar10, kept outside the repository): CIFAR-2 prepares from it
through the CLI, and the fast preset, run as a person runs it, learns airplane from bird in two epochs.
Skipped, with the reason, where the folder is absent."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"
pytestmark = pytest.mark.skipif(not (CIFAR / "cifar-10-batches-py").is_dir(),
                                reason=f"the real CIFAR-10 is not at {CIFAR} (only development machines and CI have it)")


def _cli(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CNN_DATA_DIR": str(tmp / "data"), "CNN_RUNS_DIR": str(tmp / "runs")}
    return subprocess.run([sys.executable, "-m", "cnn_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cifar2_prepares_from_the_real_files_and_the_fast_preset_learns(tmp_path):
    """`data prepare cifar2 --from` keeps CIFAR-10's airplanes and birds: 10,000 train and 2,000 test, half
    each. Then `train --preset fast --epochs 2` ends completed far above the 50 % of guessing."""
    out = _cli("data", "prepare", "cifar2", "--from", str(CIFAR), tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "cifar2: 10,000 train / 2,000 test" in out.stdout
    out = _cli("train", "--dataset", "cifar2", "--preset", "fast", "--epochs", "2", "--quiet", tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "runs").iterdir() if (p / "run.json").is_file()]
    record = json.loads((run / "run.json").read_text())
    assert record["status"] == "completed" and record["arch"] == "fast-cnn" and record["config"]["tta"] is True
    assert record["summary"]["n_test"] == 2000 and record["summary"]["chance_acc"] == 0.5
    assert record["summary"]["test_acc"] > 0.8, record["summary"]
