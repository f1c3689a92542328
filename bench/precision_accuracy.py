"""bfloat16 against float32, to the same accuracy? Each dataset's `fast` preset from the command line, as a
person runs it, with `--amp off` (float32) and `--amp auto` (bfloat16 where the CPU computes it natively),
on the same seeds, in one call: test accuracy of each, the bfloat16 - float32 difference per seed, its
mean, and the spread between seeds of one precision for scale (what "within noise" means here), with the
images/s of each.

    python bench/precision_accuracy.py [--datasets mnist fashion-mnist cifar2] [--seeds 0 1 2] [--epochs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run(dataset: str, seed: int, amp: str, epochs: int | None, runs_dir: Path) -> tuple[float, float, str]:
    """(test accuracy, training images/s, the precision it recorded) of one fast-preset run."""
    from cnn_core.runs import store

    folders = lambda: {p for p in runs_dir.iterdir() if (p / store.RUN_JSON).is_file()}  # noqa: E731
    before = folders()
    cmd = [sys.executable, "-m", "cnn_core", "--runs-dir", str(runs_dir), "train", "--dataset", dataset,
           "--preset", "fast", "--seed", str(seed), "--amp", amp, "--quiet"] + (["--epochs", str(epochs)] if epochs else [])
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    (path,) = folders() - before
    record = store.read_run(path)
    assert record.status == "completed", record.error
    return record.summary["test_acc"], record.summary["images_per_sec"], record.precision["dtype"]


def main() -> int:
    from cnn_core.data import catalog

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["mnist", "fashion-mnist", "cifar2"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=None, help="instead of each preset's own")
    args = ap.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="precision-runs-"))
    for dataset in args.datasets:
        if catalog.dataset_status(dataset).state == "missing":
            print(f"{dataset}: skipped (not prepared)")
            continue
        got = {amp: [run(dataset, seed, amp, args.epochs, runs_dir) for seed in args.seeds] for amp in ("off", "auto")}
        fp32, bf16 = ([acc for acc, _, _ in got[amp]] for amp in ("off", "auto"))
        diffs = [b - f for b, f in zip(bf16, fp32)]
        print(f"{dataset} (fast preset, seeds {', '.join(map(str, args.seeds))}; auto trained in {got['auto'][0][2]}):")
        print("  float32 test  " + "  ".join(f"{a:.4f}" for a in fp32) + f"   images/s {statistics.mean(i for _, i, _ in got['off']):,.0f}")
        print("  auto test     " + "  ".join(f"{a:.4f}" for a in bf16) + f"   images/s {statistics.mean(i for _, i, _ in got['auto']):,.0f}")
        spread = statistics.stdev(fp32) if len(fp32) > 1 else float("nan")
        print(f"  auto - float32 per seed: " + "  ".join(f"{d:+.4f}" for d in diffs)
              + f"; mean {statistics.mean(diffs):+.4f}; float32's spread between seeds (std) {spread:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
