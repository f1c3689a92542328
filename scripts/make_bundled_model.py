"""Make the small MNIST model that ships in models/mnist-bundled/, so Draw works before any training.

It is an ordinary run of the CLI on the MNIST data this project can get (the 10k subset where
the full set cannot be downloaded), with shift/rotation/scale augmentation, reduced to the files
a prediction needs (run.json, metrics.jsonl, best.pt: well under 1 MB).

    .venv/bin/python scripts/make_bundled_model.py
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnn_core.analysis.predict import BUNDLED_MNIST  # noqa: E402
from cnn_core.core import files
from cnn_core.runs import store  # noqa: E402

COMMAND = ["train", "--dataset", "mnist", "--arch", "deep-cnn", "--param", "batch_norm=true",
           "--param", "dropout=0.2", "--augment", "affine", "--optimizer", "adam", "--lr", "0.003",
           "--schedule", "onecycle", "--epochs", "14", "--batch-size", "64", "--seed", "0",
           "--device", "cpu", "--name", "Bundled MNIST model (deep-cnn, affine augmentation)"]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cnn_core", "--runs-dir", tmp, *COMMAND]
        print("$ python -m cnn_core " + " ".join(cmd[3:]), flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            return 1
        (run,) = [p for p in Path(tmp).iterdir() if p.is_dir() and not p.name.startswith(".")]
        record = store.read_run(run)
        if BUNDLED_MNIST.exists():
            shutil.rmtree(BUNDLED_MNIST)
        BUNDLED_MNIST.mkdir(parents=True)
        for name in (store.RUN_JSON, store.METRICS, store.BEST):
            shutil.copy2(run / name, BUNDLED_MNIST / name)
    record.pid, record.host, record.id = None, "bundled", BUNDLED_MNIST.name
    files.write_json_atomic(BUNDLED_MNIST / store.RUN_JSON, record.to_dict())
    size = sum(p.stat().st_size for p in BUNDLED_MNIST.iterdir())
    s = record.summary
    print(f"bundled model in {BUNDLED_MNIST.relative_to(ROOT)} ({size / 1024:.0f} KB): test accuracy "
          f"{s['test_acc']:.4f} on {s['n_test']:,} test digits ({s.get('data_subset') or 'full MNIST'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
