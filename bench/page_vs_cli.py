"""Training speed of a run launched the Train page's way vs from the command line.

The page calls runs.create_run + jobs.launch: a detached `python -m cnn_core train --run DIR`
subprocess. The CLI runs `python -m cnn_core train ... --quiet` in the foreground. Both train the
same config; the figure compared is the engine's own images/s (mean over epochs, in run.json's
summary), plus the wall time from start to `completed`. Rounds alternate which goes first, so that
a machine busy with something else slows both alike. Target: page / CLI >= 0.9.

Data: the prepared fashion-mnist in the data folder when it is there (the full 60,000 images),
else small generated MNIST-format files (tests/datagen.py) in a temporary folder.

    .venv/bin/python bench/page_vs_cli.py [--rounds 2] [--epochs 1] [--small]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from cnn_core import data, jobs, runs  # noqa: E402
from cnn_core.config import TrainConfig  # noqa: E402


def _data_dir(small: bool, tmp: Path) -> tuple[Path, str]:
    """The data folder and dataset to train on."""
    real = data.default_data_dir()
    if not small and data.dataset_status("fashion-mnist", real).state != "missing":
        return real, "fashion-mnist"
    from datagen import write_idx_dataset

    write_idx_dataset(tmp / "data" / "mnist", n_train=6000, n_test=1000, seed=1)
    return tmp / "data", "mnist"


def _child_cpu() -> float:
    """CPU seconds (user + system) used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _page_way(config: TrainConfig) -> tuple[float, float, float]:
    path = runs.create_run(config, "bench: page")
    t0, cpu0 = time.monotonic(), _child_cpu()
    pid = jobs.launch(path)
    status = jobs.wait(path, timeout=3600)
    while Path(f"/proc/{pid}").exists():   # jobs' reaper thread collects the child (and its CPU time)
        time.sleep(0.05)
    wall = time.monotonic() - t0
    assert status == "completed", runs.read_run(path).get("error")
    return runs.read_run(path)["summary"]["images_per_sec"], wall, _child_cpu() - cpu0


def _cli_way(config: TrainConfig, tmp: Path) -> tuple[float, float, float]:
    cfg = tmp / "config.json"
    cfg.write_text(json.dumps(config.to_dict()))
    before = {r["id"] for r in runs.list_runs()}
    t0, cpu0 = time.monotonic(), _child_cpu()
    out = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--config", str(cfg), "--name", "bench: cli",
                          "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    assert out.returncode == 0, out.stderr[-2000:]
    (new,) = [r for r in runs.list_runs() if r["id"] not in before]
    return new["summary"]["images_per_sec"], wall, _child_cpu() - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--small", action="store_true", help="generated data even when real data is prepared")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_dir, dataset = _data_dir(args.small, tmp)
        os.environ.update(CNN_DATA_DIR=str(data_dir), CNN_RUNS_DIR=str(tmp / "runs"), CNN_OFFLINE="1")
        config = TrainConfig(dataset=dataset, arch="lenet", batch_size=args.batch_size, epochs=args.epochs)
        data.load_raw(dataset)   # decode and cache once, outside the timings
        n = data.dataset_status(dataset).n_train
        print(f"{dataset} ({n:,} training images, {data_dir}), lenet, batch {args.batch_size}, "
              f"{args.epochs} epoch(s), {args.rounds} round(s); cpu threads {os.cpu_count()}")
        page, cli = [], []
        for i in range(args.rounds):
            if i % 2:   # alternate which goes first, so a load that comes or goes hits both alike
                cli.append(_cli_way(config, tmp))
                page.append(_page_way(config))
            else:
                page.append(_page_way(config))
                cli.append(_cli_way(config, tmp))
            print(f"round {i + 1}: page {page[-1][0]:7.0f} img/s ({page[-1][1]:5.1f} s wall, "
                  f"{page[-1][2]:5.1f} cpu-s)   cli {cli[-1][0]:7.0f} img/s ({cli[-1][1]:5.1f} s wall, "
                  f"{cli[-1][2]:5.1f} cpu-s)", flush=True)
        med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
        p, c = med(page, 0), med(cli, 0)
        print(f"median: page {p:.0f} img/s, cli {c:.0f} img/s, ratio page/cli {p / c:.3f} (target >= 0.9)")
        print(f"median wall {med(page, 1):.1f} s vs {med(cli, 1):.1f} s; median CPU {med(page, 2):.1f} s vs "
              f"{med(cli, 2):.1f} s (the same work costs the same CPU either way; a gap in img/s with equal "
              f"CPU is other load on the machine)")


if __name__ == "__main__":
    main()
