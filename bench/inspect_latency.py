"""Inspect latency: what the page computes when a learner picks a new test image, per tutorial architecture.

On a new image choice the Inspect page calls, uncached:
  compute  TestSet.x (normalize one image), extract_feature_maps (every layer + probabilities), top_k,
           and grad_cam at the default layer (gradient_saliency for the MLP, which has no conv layer)
  figures  one feature_map_figure per layer, probs_figure and saliency_figure, each serialized to JSON
           as Streamlit does before sending it
Weights are random (latency does not depend on training); images are random uint8 of the dataset's
shape, so no dataset needs to be prepared. The page's budget is one second; prints median ms.

    .venv/bin/python bench/inspect_latency.py [--repeats 20] [--threads 0,1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn_core.analysis import attribution, inspection, predict  # noqa: E402
from cnn_core.data import catalog
from cnn_core.nets.architectures import ARCHITECTURES, build_model  # noqa: E402
from ui.figures import images as plots  # noqa: E402

BUDGET_MS = 1000.0
DATASET = {"mlp": "mnist", "lenet": "mnist", "simple-cnn": "mnist", "deep-cnn": "mnist",
           "cifar-net": "cifar10", "res-net-small": "cifar10", "res-net-deep": "cifar10"}


def _setup(arch: str, n_images: int = 64):
    info = catalog.get_info(DATASET[arch])
    torch.manual_seed(0)
    model = build_model(arch, info.input_shape, len(info.classes)).eval()   # registry defaults
    images = torch.randint(0, 256, (n_images, *info.input_shape), dtype=torch.uint8)
    test = inspection.TestSet(info.id, images, torch.arange(n_images) % len(info.classes), info.classes)
    meta = {"mean": [0.5] * info.input_shape[0], "std": [0.25] * info.input_shape[0]}
    return model, test, meta


def _compute(model, test, meta, index: int):
    x = test.x(index, meta)                                             # (C, H, W) normalized
    maps, probs = inspection.extract_feature_maps(model, x)
    top = predict.top_k(probs, test.classes)
    target = int(probs.argmax())
    if inspection.default_cam_layer(model):
        heat = attribution.grad_cam(model, x, target)
    else:
        heat = attribution.gradient_saliency(model, x, target)
    return maps, probs, top, heat


def _figures(test, index: int, maps, probs, heat) -> int:
    figs = [plots.feature_map_figure(fm.maps, fm.name) for fm in maps]
    figs.append(plots.probs_figure(probs, test.classes, int(test.y[index])))
    figs.append(plots.saliency_figure(plots.to_rgb(test.images[index]), heat, "Grad-CAM"))
    return sum(len(f.to_json()) for f in figs)


def bench(arch: str, repeats: int) -> dict:
    model, test, meta = _setup(arch)
    maps, probs, _, heat = _compute(model, test, meta, 0)                # warm-up
    _figures(test, 0, maps, probs, heat)
    compute_ms, total_ms, payload = [], [], 0
    for r in range(repeats):
        index = (r * 7 + 1) % len(test.y)                                # a new image every time
        t0 = time.perf_counter()
        maps, probs, _, heat = _compute(model, test, meta, index)
        t1 = time.perf_counter()
        payload = _figures(test, index, maps, probs, heat)
        t2 = time.perf_counter()
        compute_ms.append((t1 - t0) * 1e3)
        total_ms.append((t2 - t0) * 1e3)
    params = sum(p.numel() for p in model.parameters())
    return {"arch": arch, "dataset": DATASET[arch], "params": params, "layers": len(maps),
            "compute": statistics.median(compute_ms), "total": statistics.median(total_ms),
            "kb": payload / 1024}


def table(repeats: int) -> float:
    """One row per architecture at the current torch thread count; returns the slowest median total."""
    print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} thread(s), {repeats} image choices each")
    print(f"{'architecture':<15}{'data':<9}{'params':>10}{'layers':>8}{'compute ms':>12}{'+figures ms':>13}"
          f"{'JSON kB':>9}")
    worst = 0.0
    for arch in ARCHITECTURES:
        r = bench(arch, repeats)
        worst = max(worst, r["total"])
        print(f"{r['arch']:<15}{r['dataset']:<9}{r['params']:>10,}{r['layers']:>8}{r['compute']:>12.1f}"
              f"{r['total']:>13.1f}{r['kb']:>9.0f}")
    verdict = "within" if worst < BUDGET_MS else "OVER"
    print(f"slowest: {worst:.1f} ms median per new image, {verdict} the {BUDGET_MS:.0f} ms budget\n")
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20, help="new image choices per architecture (median taken)")
    ap.add_argument("--threads", default="0,1",
                    help="comma-separated torch CPU thread counts to measure (0 = torch's default); on a busy "
                         "machine (a training run beside the dashboard) one thread avoids intra-op contention")
    args = ap.parse_args()
    default = torch.get_num_threads()
    results = {}
    for n in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(n or default)
        results[n or default] = table(args.repeats)
    best = min(results, key=results.get)
    print("slowest architecture per thread count: " +
          ", ".join(f"{n} thread(s) {ms:.0f} ms" for n, ms in results.items()))
    return 0 if results[best] < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
