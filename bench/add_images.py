"""Adding your own pictures: `python -m cnn_core data add` on 10,000 32x32 PNG files, as a person runs it.

The target (issue 16): at most 20 s on 2 cores. The baseline, in the same call: the least any adder must do,
a plain loop that reads each file and decodes it with PIL (no checks, no hashing, no cache), so the ratio
says what the product's own work costs on top of the decoding.

    python bench/add_images.py                 # 10,000 pictures, 10 classes
    python bench/add_images.py --n 2000 --size 64
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 20.0


def write_pictures(root: Path, n: int, size: int, classes: int = 10) -> None:
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
    base = rng.integers(0, 256, (classes, 3))
    for i in range(n):
        c = i % classes
        a = np.clip(base[c][None, None] + rng.normal(0, 50, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(root / f"class{c}" / f"{i:05d}.png")


def decode_only(root: Path) -> float:
    started = time.perf_counter()
    for p in sorted(root.rglob("*.png")):
        with Image.open(p) as img:
            img.convert("RGB").load()
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--size", type=int, default=32)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-add-") as tmp:
        tmp = Path(tmp)
        print(f"writing {args.n:,} {args.size}x{args.size} PNG files ...", flush=True)
        write_pictures(tmp / "pictures", args.n, args.size)
        floor = decode_only(tmp / "pictures")
        env = {**os.environ, "CNN_DATA_DIR": str(tmp / "data")}
        started = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "cnn_core", "data", "add", "bench", "--from", str(tmp / "pictures"),
                              "--size", str(args.size)], cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.perf_counter() - started
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        print(out.stdout.splitlines()[0])
        print(f"data add (a fresh process, imports included): {took:6.1f} s   target <= {TARGET_S:.0f} s: "
              f"{'met' if took <= TARGET_S else 'NOT met'} ({took / TARGET_S:.2f} of it)")
        print(f"baseline, read + PIL decode only:             {floor:6.1f} s   ratio {took / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
