"""Mixed precision on the CPU (issue 31, item 1 in part): bfloat16 autocast where the CPU computes it
natively. What the flags say, and a real run on the MNIST subset in both precisions from the same seed:
both learn, within noise of each other, the weights stay float32, and the exported script trains the
bfloat16 run as it was trained, to the float."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnn_core.config import TrainConfig
from cnn_core.core import devices
from cnn_core.export import standalone
from cnn_core.runs import checkpoints, metrics_log, store
from cnn_core.train.engine import run_training

ROOT = Path(__file__).resolve().parent.parent
NATIVE, WHY = devices.cpu_bf16()
needs_native = pytest.mark.skipif(not NATIVE, reason=f"bfloat16 on this CPU: {WHY}")


def test_the_flags_that_mean_native_bfloat16():
    """x86's avx512_bf16 and AMX, ARM's bf16 feature; an AVX-512 CPU without BF16 is not one."""
    assert devices.bf16_flag("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n") == "avx512_bf16"
    assert devices.bf16_flag("flags\t\t: fpu avx512f amx_bf16 avx512_bf16\n") == "amx_bf16"
    assert devices.bf16_flag("Features\t: fp asimd sve bf16 i8mm\n") == "bf16"
    assert devices.bf16_flag("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n") is None
    assert devices.bf16_flag("") is None


def _epochs(path: Path) -> list[dict]:
    return [m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]


@needs_native
def test_bfloat16_learns_as_float32_does_and_the_script_trains_it_the_same(real_mnist, tmp_path):
    """LeNet, 1 epoch of the real MNIST subset, seed 0, in float32 and with amp: both above 0.9 test accuracy
    and within 1.5 points of each other; the checkpoint's weights are float32; the exported script of the
    bfloat16 run gives its first epoch's validation accuracy and loss to the float."""
    runs = {}
    for amp in (False, True):       # off, and auto: this CPU's choice (the skip says it is native here)
        path = store.create_run(TrainConfig(dataset="mnist", arch="lenet", epochs=1, seed=0, device="cpu",
                                            amp="auto" if amp else "off"))
        record = run_training(path)
        assert record.status == "completed", record.error
        runs[amp] = (record, path)
    acc = {amp: record.summary["test_acc"] for amp, (record, _) in runs.items()}
    print(f"test accuracy float32 {acc[False]:.4f}, bfloat16 {acc[True]:.4f}")
    assert min(acc.values()) > 0.9 and abs(acc[True] - acc[False]) < 0.015, acc
    record, path = runs[True]
    assert record.config["amp"] == "auto" and record.precision == {
        "amp": True, "dtype": "bfloat16", "why": f"automatic: {WHY}"}          # what it trained in, and why
    assert runs[False][0].precision["dtype"] == "float32"
    weights = checkpoints.load_checkpoint(path / store.BEST)["model"]
    assert all(t.dtype == torch.float32 for t in weights.values() if t.is_floating_point())
    out = standalone.write(path, tmp_path / "bf16.py")
    done = subprocess.run([sys.executable, str(out), "--epochs", "1", "--data-dir", str(real_mnist)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})   # no PYTHONPATH: no cnn_core
    assert done.returncode == 0, done.stderr[-3000:]
    first, run = json.loads(done.stdout.splitlines()[0]), _epochs(path)[0]
    assert (first["val_acc"], first["val_loss"]) == (run["val_acc"], run["val_loss"]), (first, run)


def test_a_run_keeps_the_precision_it_started_in(real_mnist):
    """The precision is decided when a run first starts and recorded; a resume (here: a record made where
    float32 was chosen) trains on in what it recorded, not in what `auto` would choose today."""
    path = store.create_run(TrainConfig(dataset="mnist", arch="lenet", epochs=1, seed=0, device="cpu",
                                        dry_run_batches=3))
    store.update_run(path, precision={"amp": False, "dtype": "float32", "why": "automatic: recorded elsewhere"})
    record = run_training(path)
    assert record.status == "completed", record.error
    assert record.precision == {"amp": False, "dtype": "float32", "why": "automatic: recorded elsewhere"}
