"""Sweeps on the two backends, in one call: an 8-trial LeNet sweep on Fashion-MNIST, one epoch each, as a person
runs it (`python -m cnn_core sweep ... --wait`), on the local queue and then on a local Ray instance.
Prints each total time and the ratio ray/local (target, issue 18: at most 1.2).

    python bench/sweep_backends.py
    python bench/sweep_backends.py --dataset mnist --trials 4
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sweep(backend: str, dataset: str, lrs: list[float], runs_dir: Path) -> float:
    cmd = [sys.executable, "-m", "cnn_core", "sweep", "--dataset", dataset, "--arch", "lenet", "--epochs", "1",
           "--grid", "lr=" + ",".join(f"{lr:g}" for lr in lrs), "--backend", backend, "--wait"]
    started = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "CNN_RUNS_DIR": str(runs_dir)})
    took = time.perf_counter() - started
    if out.returncode != 0:
        sys.exit(f"{backend} sweep failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    best = [line for line in out.stdout.splitlines() if line.startswith("best:")]
    print(f"{backend:<6} {took:7.1f} s   {best[0] if best else ''}", flush=True)
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--trials", type=int, default=8)
    args = ap.parse_args()
    lrs = [0.005 * (i + 1) for i in range(args.trials)]
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        local = sweep("local", args.dataset, lrs, Path(tmp) / "local")
        ray = sweep("ray", args.dataset, lrs, Path(tmp) / "ray")
    print(f"ray/local {ray / local:.2f} (target <= 1.2), {args.trials} trials of 1 epoch of LeNet on {args.dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
