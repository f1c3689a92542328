"""The deeper views' latency (issue 30): what Inspect and Draw compute for one picture, per tutorial
architecture, against the 2-second budget a view has while nothing trains.

  attack    one PGD attack (20 steps) at budget 0.1 on one picture
  smallest  the smallest fooling change: up to 8 PGD attacks (bisection)
  attrib    saliency, integrated gradients (32 steps), occlusion and Grad-CAM of one picture
  dream     every class's visualisation (64 steps, all classes in one batch)
  map       the class map of 1,000 pictures (features + PCA + 5-NN); t-SNE separately, it may take longer
  curve     the robustness curve on 200 pictures (PGD, 10 steps, 16 budgets); allowed to take longer,
            with a progress bar and a cancel

Weights are random (time does not depend on training, except that a trained model falls sooner, so the
curve's attacks stop sooner: this is its slow end); pictures are random uint8 of the dataset's shape.
Prints the median of a few repeats in ms.

    .venv/bin/python bench/explain_latency.py [--repeats 3] [--archs lenet,deep-cnn]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_core.analysis import adversarial, attribution, dream, embedding
from cnn_core.data import catalog
from cnn_core.nets.architectures import build_model

BUDGET_MS = 2000.0
DATASET = {"mlp": "mnist", "lenet": "mnist", "simple-cnn": "mnist", "deep-cnn": "mnist",
           "cifar-net": "cifar10", "res-net-small": "cifar10", "res-net-deep": "cifar10"}
ONE_PICTURE = ("attack", "smallest", "attrib", "dream")


def _setup(arch: str, n: int = 1000):
    info = catalog.get_info(DATASET[arch])
    torch.manual_seed(0)
    model = build_model(arch, info.input_shape, len(info.classes)).eval()
    images = torch.randint(0, 256, (n, *info.input_shape), dtype=torch.uint8)
    labels = torch.arange(n) % len(info.classes)
    meta = {"mean": [0.5] * info.input_shape[0], "std": [0.25] * info.input_shape[0],
            "num_classes": len(info.classes), "input_shape": list(info.input_shape), "classes": list(info.classes)}
    return model, meta, images, labels


def _time(fn, repeats: int) -> float:
    fn()                                                   # warm-up: oneDNN builds its kernels on first use
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(out)


def bench(arch: str, repeats: int) -> dict:
    model, meta, images, labels = _setup(arch)
    x = (images[0].float() / 255 - 0.5) / 0.25
    idx = np.arange(1000)
    return {
        "attack": _time(lambda: adversarial.attack_one(model, meta, images[0], 0.1), repeats),
        "smallest": _time(lambda: adversarial.smallest_attack(model, meta, images[0], 0.3), repeats),
        "attrib": _time(lambda: attribution.attribute_all(model, x, 0, meta), repeats),
        "dream": _time(lambda: dream.classes(model, meta), repeats),
        "map": _time(lambda: embedding.class_map(model, meta, images, labels, idx, "pca"), repeats),
        "tsne": _time(lambda: embedding.class_map(model, meta, images, labels, idx, "tsne"), 1),
        "curve": _time(lambda: adversarial.robustness(model, meta, images[:200], labels[:200]), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--archs", default=",".join(DATASET))
    args = ap.parse_args()
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s); median ms of {args.repeats}")
    cols = ("attack", "smallest", "attrib", "dream", "map", "tsne", "curve")
    print(f"{'architecture':<15}" + "".join(f"{c:>10}" for c in cols))
    worst = 0.0
    for arch in args.archs.split(","):
        r = bench(arch, args.repeats)
        worst = max(worst, *(r[c] for c in (*ONE_PICTURE, "map")))
        print(f"{arch:<15}" + "".join(f"{r[c]:>10.0f}" for c in cols))
    verdict = "within" if worst < BUDGET_MS else "OVER"
    print(f"slowest one-picture view (and the PCA map): {worst:.0f} ms, {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0 if worst < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
