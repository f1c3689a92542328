"""How fast one digit is read on CPU: median milliseconds through the library, for the Draw page's path
(canvas RGBA -> MNIST recipe -> probabilities, model already loaded) and the CLI's path
(`python -m cnn_core predict`: load best.pt, decode a PNG, predict, top-3; process start excluded).
Timed with torch's default thread count and with one thread: on a busy machine, one thread is faster for a
single small image (no waiting for a second, descheduled worker).

    .venv/bin/python bench/predict_latency.py [--repeats 200]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from cnn_core.analysis.drawing import first_conv_maps, ink_from_rgba, probabilities  # noqa: E402
from cnn_core.analysis.predict import (  # noqa: E402
    BUNDLED_MNIST,
    image_for_model,
    load_model,
    mnist_preprocess,
    predict_uint8,
    top_k,
)
from cnn_core.config import TrainConfig  # noqa: E402
from cnn_core.nets.architectures import build_model  # noqa: E402
from cnn_core.runs import checkpoints, store  # noqa: E402

BUDGET_MS = 20.0   # the Draw page's target for one prediction, server side


def _canvas() -> np.ndarray:
    """A 280x280 RGBA canvas with a white '7', as the drawing widget returns it."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    ImageDraw.Draw(img).line([(70, 60), (210, 60), (120, 230)], fill=(255, 255, 255, 255), width=18)
    return np.asarray(img)


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(_canvas()).save(buf, format="PNG")
    return buf.getvalue()


def _medians_ms(fns: dict, repeats: int, warmup: int = 5) -> dict[str, tuple[float, float]]:
    """(median, 90th percentile) ms of each function, timed round-robin so that all of them see the same
    machine load (on a shared machine, timing one after the other compares load, not code)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append((time.perf_counter() - t0) * 1000)
    return {name: (statistics.median(t), statistics.quantiles(t, n=10)[-1]) for name, t in times.items()}


def _lenet_run(folder: Path) -> Path:
    """A lenet MNIST run folder (untrained weights: the time does not depend on them)."""
    path = store.create_run(TrainConfig(dataset="mnist", arch="lenet"), runs_dir=folder)
    record = store.read_run(path)
    model = build_model("lenet", (1, 28, 28), 10, record.arch_params)
    meta = {"arch": "lenet", "arch_params": record.arch_params, "input_shape": [1, 28, 28], "num_classes": 10,
            "classes": record.classes, "mean": [0.1307], "std": [0.3081], "dataset": "mnist"}
    checkpoints.save_atomic(checkpoints.model_record(model, meta), path / store.BEST)
    return path


def bench(name: str, run: Path, repeats: int) -> float:
    model, meta = load_model(run)
    canvas, png = _canvas(), _png()
    params = sum(p.numel() for p in model.parameters())

    def page_predict():           # what the Draw page does per drawing, the model cached
        probabilities(model, meta, mnist_preprocess(ink_from_rgba(canvas)))

    def page_with_maps():         # plus the first conv layer's maps it shows
        image = mnist_preprocess(ink_from_rgba(canvas))
        probabilities(model, meta, image)
        first_conv_maps(model, meta, image)

    def cli_predict():            # commands.predict_cmd for one image, without the process start
        m, mt = load_model(run)
        probs = predict_uint8(m, mt, torch.stack([image_for_model(png, mt)]))
        top_k(probs[0], mt["classes"])

    image = mnist_preprocess(ink_from_rgba(canvas))
    results = _medians_ms({"recipe only (RGBA -> 28x28)": lambda: mnist_preprocess(ink_from_rgba(canvas)),
                           "model only (28x28 -> probabilities)": lambda: probabilities(model, meta, image),
                           "Draw page: preprocess + predict": page_predict,
                           "Draw page: + first conv maps": page_with_maps,
                           "CLI path: load + decode + predict": cli_predict}, repeats)
    print(f"\n{name} ({meta['arch']}, {params:,} parameters)")
    for what, (median, p90) in results.items():
        print(f"  {what:38s} {median:7.2f} ms median  {p90:7.2f} ms p90")
    return results["Draw page: preprocess + predict"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="torch intra-op thread counts to time (default: torch's own, then 1)")
    args = parser.parse_args()
    counts = args.threads or sorted({torch.get_num_threads(), 1}, reverse=True)
    print(f"torch {torch.__version__}, CPU ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}), "
          f"{args.repeats} repeats, timed round-robin; medians and 90th percentiles")
    with tempfile.TemporaryDirectory() as tmp:
        models = {"lenet": _lenet_run(Path(tmp))}
        if (BUNDLED_MNIST / store.BEST).is_file():
            models = {"bundled model": BUNDLED_MNIST, **models}
        else:
            print(f"(no bundled model in {BUNDLED_MNIST}: `python scripts/make_bundled_model.py` makes it)")
        for n in counts:
            torch.set_num_threads(n)
            print(f"\n=== {n} torch thread{'s' if n > 1 else ''} ===")
            worst = max(bench(name, path, args.repeats) for name, path in models.items())
            verdict = "within" if worst < BUDGET_MS else "OVER"
            print(f"slowest Draw-page prediction: {worst:.2f} ms median, {verdict} the {BUDGET_MS:.0f} ms budget")
    return 0


if __name__ == "__main__":
    sys.exit(main())
