"""The MNIST model that ships in models/mnist-bundled/: small, loads safely, lists first, and reads the
project's real MNIST test split at its recorded accuracy."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnn_core.analysis.drawing import drawable_runs
from cnn_core.analysis.predict import BUNDLED_MNIST, load_model, predict_uint8
from cnn_core.data import catalog
from cnn_core.runs import checkpoints, metrics_log, store

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT / "data"          # the autouse fixture points CNN_DATA_DIR at generated digits: not these
ACC_FLOOR = 0.97                   # the script reports >= 0.98; a margin for a re-made model or data subset


@pytest.fixture(scope="module")
def bundled() -> Path:
    assert (BUNDLED_MNIST / store.BEST).is_file(), \
        f"{BUNDLED_MNIST} has no best.pt: make it with `python scripts/make_bundled_model.py`"
    return BUNDLED_MNIST


def test_folder_holds_the_three_files_under_one_megabyte(bundled):
    """run.json, metrics.jsonl and best.pt, together under 1 MB (it is committed to the repo)."""
    files = {p.name: p.stat().st_size for p in bundled.iterdir() if p.is_file()}
    assert {store.RUN_JSON, store.METRICS, store.BEST} <= set(files)
    assert sum(files.values()) < 1_000_000, files


def test_best_pt_loads_with_weights_only(bundled):
    """best.pt is plain tensors and data: torch.load(weights_only=True) reads it and it rebuilds an MNIST model."""
    ckpt = torch.load(bundled / store.BEST, map_location="cpu", weights_only=True)
    meta = checkpoints.model_meta(ckpt)
    assert meta["classes"] == [str(d) for d in range(10)] and list(meta["input_shape"]) == [1, 28, 28]
    assert ckpt.get("dataset") == "mnist"
    model = checkpoints.model_from_checkpoint(ckpt)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_run_json_is_a_completed_mnist_run_with_recorded_accuracy(bundled):
    """run.json reads as a run record: completed, MNIST, test accuracy >= 0.98, no pid of this machine."""
    record = store.read_run(bundled)
    assert record.status == "completed" and record.dataset == "mnist" and record.pid is None
    assert record.summary["test_acc"] >= 0.98, record.summary
    assert metrics_log.read_metrics(bundled), "metrics.jsonl has no records"
    json.dumps(record.to_dict())   # plain JSON all the way down


def test_listed_first_on_a_fresh_install(bundled, runs_dir):
    """With an empty runs folder, the Draw page's run list is the bundled model alone."""
    assert [r.path for r in drawable_runs(runs_dir)] == [bundled]


def test_accuracy_on_the_real_mnist_test_split(bundled):
    """Evaluated here on the project's real MNIST test split (not the generated test digits): >= 0.97."""
    status = catalog.dataset_status("mnist", data_dir=REAL_DATA)
    if status.state == "missing":
        pytest.skip(f"real MNIST is not prepared in {REAL_DATA} (`make data` or `make test` prepares it)")
    raw = catalog.load_raw("mnist", data_dir=REAL_DATA)
    model, meta = load_model(bundled)
    correct = 0
    for start in range(0, len(raw.test_y), 1000):
        probs = predict_uint8(model, meta, raw.test_x[start:start + 1000])      # (B, 10)
        correct += int((probs.argmax(1) == raw.test_y[start:start + 1000]).sum())
    acc = correct / len(raw.test_y)
    print(f"bundled model: {acc:.4f} on {len(raw.test_y):,} real MNIST test digits ({status.state})")
    assert acc >= ACC_FLOOR
