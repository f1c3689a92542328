"""Real CIFAR-10 (../shared/datasets/cifar10, kept outside the repository): CIFAR-2 prepares from it
through the CLI; its pictures as PNG folders become a dataset of the same pixels; the fast preset, run as a
person runs it, learns airplane from bird alike on both. Skipped, with the reason, where the folder is
absent."""
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


def _record(tmp: Path, dataset: str) -> dict:
    (record,) = [r for r in (json.loads(p.read_text()) for p in (tmp / "runs").glob("*/run.json"))
                 if r["config"]["dataset"] == dataset]
    return record


@pytest.mark.stress   # 46 s of real CIFAR-2 training: in `make test-stress`, to keep the suite within 10 minutes
def test_the_real_cifar2_prepares_and_as_png_folders_trains_like_the_built_in_one(tmp_path):
    """`data prepare cifar2 --from` keeps CIFAR-10's airplanes and birds: 10,000 train and 2,000 test, half
    each. Its images written as PNG files in train/<class>/ and test/<class>/, named by their index, and
    added with `data add` hold the very same pixels in the same order (data add keeps the files' name
    order); the fast preset, run as a person runs it, same config and seed on each, scores far above
    guessing and within 1 point on both (here they come out equal: the same batches are drawn)."""
    import numpy as np
    import torch
    from PIL import Image

    from cnn_core.data import catalog

    out = _cli("data", "prepare", "cifar2", "--from", str(CIFAR), tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "cifar2: 10,000 train / 2,000 test" in out.stdout
    raw = catalog.load_raw("cifar2", data_dir=tmp_path / "data")
    classes = ("airplane", "bird")
    pictures = tmp_path / "pictures"
    for part, x, y in (("train", raw.train_x, raw.train_y), ("test", raw.test_x, raw.test_y)):
        for name in classes:
            (pictures / part / name).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(x.permute(0, 2, 3, 1).numpy(), y.tolist())):
            Image.fromarray(np.ascontiguousarray(image)).save(pictures / part / classes[label] / f"{i:05d}.png")
    out = _cli("data", "add", "cifar2-png", "--from", str(pictures), tmp=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "2 classes, 10,000 training and 2,000 test images" in out.stdout
    own = catalog.load_raw("cifar2-png", data_dir=tmp_path / "data")
    for ox, oy, rx, ry in ((own.train_x, own.train_y, raw.train_x, raw.train_y),
                           (own.test_x, own.test_y, raw.test_x, raw.test_y)):
        for c in (0, 1):
            assert torch.equal(ox[oy == c], rx[ry == c])
    for name in ("cifar2", "cifar2-png"):      # 3 of the preset's 6 epochs: the suite's 10 minutes
        out = _cli("train", "--dataset", name, "--preset", "fast", "--epochs", "3", "--quiet", tmp=tmp_path)
        assert out.returncode == 0, out.stderr[-2000:]
    built_in, mine = _record(tmp_path, "cifar2"), _record(tmp_path, "cifar2-png")
    assert built_in["status"] == "completed" and built_in["arch"] == "fast-cnn" and built_in["config"]["tta"] is True
    assert built_in["summary"]["n_test"] == 2000 and built_in["summary"]["chance_acc"] == 0.5
    accuracy = {r["config"]["dataset"]: r["summary"]["test_acc"] for r in (built_in, mine)}
    print("test accuracy:", accuracy)
    assert accuracy["cifar2"] > 0.86 and abs(accuracy["cifar2"] - accuracy["cifar2-png"]) <= 0.01, accuracy
