"""How long the Compare page takes to open over 200 runs.

Makes 200 realistic run folders (run.json as the engine leaves it, parameter count included;
metrics.jsonl of 10 epochs and 500 logged steps) in a temp folder, then times
  (a) the library calls the page makes: list the runs, the table, labels, the hyper-parameter
      frame, and, for 5 picked runs, the curves and the config diff;
  (b) an AppTest run of ui/compare/page.py in a fresh interpreter (so imports count), a rerun, and
      a rerun with 5 runs picked.
Usage: .venv/bin/python bench/compare_open.py [--runs 200]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHS = [("lenet", {"conv1_channels": [6, 10, 20], "dropout": [0.0, 0.25]}), ("mlp", {"hidden1": [64, 128, 256]}),
         ("simple-cnn", {"width": [8, 16, 32]}), ("deep-cnn", {"batch_norm": [False, True], "dropout": [0.0, 0.3]}),
         ("cifar-net", {"n_chans1": [16, 32], "activation": ["tanh", "relu"]}), ("res-net-small", {"n_chans1": [16, 32]}),
         ("res-net-deep", {"n_blocks": [2, 5, 10]})]
DATASETS = {"mnist": ([1, 28, 28], 10), "fashion-mnist": ([1, 28, 28], 10), "cifar10": ([3, 32, 32], 10),
            "cifar2": ([3, 32, 32], 2)}


def make_runs(root: Path, n: int) -> None:
    """n run folders as the engine leaves them (no checkpoints: the page does not read them)."""
    from cnn_core.config import TrainConfig
    from cnn_core.core import files
    from cnn_core.nets.architectures import count_params, resolve_params
    from cnn_core.runs import store

    rng = random.Random(0)
    for i in range(n):
        arch, choices = ARCHS[i % len(ARCHS)]
        dataset = list(DATASETS)[i % 4]
        params = resolve_params(arch, {k: rng.choice(v) for k, v in choices.items()})
        config = TrainConfig(dataset=dataset, arch=arch, arch_params=params, lr=rng.choice([0.1, 0.05, 0.01, 0.001]),
                             batch_size=rng.choice([32, 64, 128]), epochs=10, optimizer=rng.choice(["sgd", "adam"]))
        shape, n_classes = DATASETS[dataset]
        run_id = f"2025{i:04d}-bench-{arch}-{i:04x}"
        folder = root / run_id
        folder.mkdir(parents=True)
        lines, t = [], 0.0
        for step in range(1, 501):
            t += 0.05
            lines.append({"kind": "step", "step": step, "epoch": (step - 1) // 50 + 1, "loss": 2.3 / (1 + step / 50),
                          "acc": min(0.99, 0.1 + step / 550), "lr": config.lr, "time": round(t, 3)})
            if step % 50 == 0:
                e = step // 50
                lines.append({"kind": "epoch", "step": step, "epoch": e, "train_loss": 2.3 / (1 + e),
                              "train_acc": 0.5 + e / 25, "val_loss": 2.4 / (1 + e), "val_acc": 0.5 + e / 26,
                              "lr": config.lr, "images_per_sec": 2500.0, "time": round(t, 3)})
        (folder / store.METRICS).write_text("".join(json.dumps(x) + "\n" for x in lines))
        summary = {"test_acc": 0.5 + rng.random() / 2.1, "test_loss": 0.3, "best_epoch": 9, "best_val_acc": 0.88,
                   "last_val_acc": 0.87, "last_train_acc": 0.9, "epochs_done": 10, "wall_time": round(t, 2),
                   "images_per_sec": 2500.0, "n_train": 55000, "n_val": 5000, "n_test": 10000}
        record = {"format": store.FORMAT, "id": run_id, "name": f"{dataset} · {arch} #{i}", "note": "",
                  "created": f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00", "host": "bench",
                  "config": config.to_dict(), "dataset": dataset, "arch": arch, "arch_params": params,
                  "classes": [str(c) for c in range(n_classes)], "input_shape": shape,
                  "n_params": count_params(arch, shape, n_classes, params),
                  "status": "completed" if i % 10 else "failed", "error": None, "pid": None, "heartbeat": t,
                  "progress": {"epoch": 10, "epochs": 10, "step": 500, "total_steps": 500, "steps_per_epoch": 50,
                               "images_per_sec": 2500.0, "elapsed": t},
                  "summary": summary}
        files.write_json_atomic(folder / store.RUN_JSON, record)


def timed(label: str, fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    print(f"  {label:<58} {1000 * (time.perf_counter() - t0):8.1f} ms")
    return out


def library(root: Path) -> None:
    from cnn_core.analysis import compare
    from cnn_core.runs import store
    from ui import views

    print("(a) library calls the page makes (this process; imports done)")
    records = timed("list_runs (200 run.json)", store.list_runs, root)
    table = timed("runs_table", compare.runs_table, records)
    labels = timed("unique_labels", compare.unique_labels, records)
    timed("hyperparam_frame (one dataset)", compare.hyperparam_frame, records, "mnist")
    picked = records[:5]
    timed("curves_frame, 5 runs (10 epochs + 500 steps each)", compare.curves_frame, picked, labels)
    timed("diff_table, 5 runs", views.diff_table, picked, labels)
    t0 = time.perf_counter()
    warm = store.list_runs(root)
    compare.runs_table(warm)
    compare.unique_labels(warm)
    print(f"  {'TOTAL open (list + table + labels), warm':<58} {1000 * (time.perf_counter() - t0):8.1f} ms")
    assert len(table) == len(records) and table["params"].notna().all()


def apptest_child(picks: int) -> None:
    """In a fresh interpreter: import, first run of the page, a rerun, then a run with runs picked."""
    t0 = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    from cnn_core.runs import store
    t1 = time.perf_counter()
    at = AppTest.from_file(str(ROOT / "ui" / "compare" / "page.py"), default_timeout=120).run()
    t2 = time.perf_counter()
    assert not at.exception, at.exception
    at.run()
    t3 = time.perf_counter()
    at.multiselect(key="compare.pick").set_value([r.id for r in store.list_runs()[:picks]]).run()
    t4 = time.perf_counter()
    assert not at.exception, at.exception
    print(json.dumps({"import": t1 - t0, "first": t2 - t1, "rerun": t3 - t2, "picked": t4 - t3,
                      "torch": "torch" in sys.modules}))


def apptest(root: Path, label: str) -> None:
    env = {**os.environ, "CNN_RUNS_DIR": str(root)}
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"  {label}: import streamlit+AppTest {r['import']:.2f} s, first page run {r['first']:.2f} s "
          f"(torch imported: {r['torch']}), rerun {r['rerun']:.2f} s, rerun with 5 runs picked {r['picked']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return apptest_child(5)
    with tempfile.TemporaryDirectory(prefix="compare-bench-") as tmp:
        root = Path(tmp) / "runs"
        t0 = time.perf_counter()
        make_runs(root, args.runs)
        print(f"made {args.runs} runs in {time.perf_counter() - t0:.1f} s under {root}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        library(root)
        print("(b) AppTest of ui/compare/page.py in a fresh interpreter")
        apptest(root, "200 runs")


if __name__ == "__main__":
    main()
