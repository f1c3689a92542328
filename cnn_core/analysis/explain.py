"""The deeper views of a run, for the shell (`python -m cnn_core explain RUN VIEW`) and from Python: each
returns one JSON-ready dict of numbers and, given a folder, writes its pictures there as PNG.

    adversarial   how easily the model is fooled (adversarial.py)
    embedding     its classes in a 2-D map of its last hidden features (embedding.py)
    dream         what each class looks like to it (dream.py)
    attribution   which pixels made it answer, four ways (attribution.py)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cnn_core.analysis import adversarial, attribution, dream, embedding, inspection

VIEWS = ("adversarial", "embedding", "dream", "attribution")
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))    # plotly's D3 colours
PNG_SIDE = 112          # pictures are written 4x at 28 px: each model pixel a visible square


def _picture(a: np.ndarray) -> Image.Image:
    """(C, H, W) 0..1 or (H, W) 0..1 -> an enlarged PIL picture (nearest: the pixels stay visible)."""
    a = np.clip(np.asarray(a, dtype=np.float32), 0, 1)
    a = a[0] if a.ndim == 3 and a.shape[0] == 1 else (a.transpose(1, 2, 0) if a.ndim == 3 else a)
    img = Image.fromarray((a * 255).round().astype(np.uint8))
    scale = max(1, PNG_SIDE // img.width)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def _signed_picture(a: np.ndarray) -> Image.Image:
    """(H, W) in -1..1 -> red for positive, blue for negative, white at 0."""
    a = np.clip(np.asarray(a, dtype=np.float32), -1, 1)
    pos, neg = np.clip(a, 0, 1), np.clip(-a, 0, 1)
    rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], -1).clip(0, 1)
    return _picture(rgb.transpose(2, 0, 1))


def _save(img: Image.Image, out: Path, name: str, written: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    img.save(out / name)
    written.append(str(out / name))


def adversarial_view(model, meta, test: inspection.TestSet, n: int = 100, method: str = "pgd",
                     max_eps: float | None = None, image: int | None = None, out: Path | None = None,
                     progress=None) -> dict:
    """The robustness curve over the first `n` test images; with `image`, that picture's smallest fooling
    change within max_eps."""
    budgets = adversarial.budgets_for(meta)
    if max_eps is not None:
        if not 0 < max_eps <= 1:
            raise ValueError(f"--eps is a share of black-to-white, 0..1; got {max_eps}")
        budgets = tuple(b for b in budgets if b <= max_eps) + (max_eps,)
    n = max(1, min(int(n), len(test.y)))
    curve = adversarial.robustness(model, meta, test.images[:n], test.y[:n], budgets, method, progress=progress)
    result = {**curve.summary(), "budgets": curve.budgets, "accuracy": curve.accuracy}
    if image is not None:
        _check_index(image, test)
        found = adversarial.smallest_attack(model, meta, test.images[image], max(curve.budgets), method)
        names = list(meta["classes"])
        result["image"] = {"index": image, "label": names[int(test.y[image])], "fooled": found.fooled,
                           "eps": found.size, "before": names[int(found.before.argmax())],
                           "after": names[int(found.after.argmax())]}
        if out is not None:
            written: list[str] = []
            _save(_picture(found.original), out, f"adversarial-{image}-original.png", written)
            _save(_picture(adversarial.amplified(found)), out, f"adversarial-{image}-change.png", written)
            _save(_picture(found.changed), out, f"adversarial-{image}-changed.png", written)
            result["written"] = written
    return result


def embedding_view(model, meta, test: inspection.TestSet, n: int = embedding.DEFAULT_N, method: str = "pca",
                   out: Path | None = None) -> dict:
    """The 2-D class map of `n` test images (drawn with seed 0) and how well it keeps the classes."""
    idx = embedding.sample(test.y.numpy(), n)
    found = embedding.class_map(model, meta, test.images, test.y, idx, method)
    result = found.summary()
    if out is not None:
        written: list[str] = []
        _save(scatter_picture(found.points, found.y, found.pred), out, f"embedding-{method}.png", written)
        result["written"] = written
    return result


def scatter_picture(points: np.ndarray, y: np.ndarray, pred: np.ndarray, side: int = 640) -> Image.Image:
    """The map as a PNG: a dot per picture in its class's colour, a black ring where the model is wrong."""
    img = Image.new("RGB", (side, side), "white")
    draw = ImageDraw.Draw(img)
    lo, hi = points.min(0), points.max(0)
    xy = (points - lo) / np.where(hi > lo, hi - lo, 1) * (side - 20) + 10
    for (px, py), c, p in zip(xy, y, pred):
        colour = PALETTE[int(c) % len(PALETTE)]
        draw.ellipse((px - 3, side - py - 3, px + 3, side - py + 3), fill=colour,
                     outline=(0, 0, 0) if c != p else None)
    return img


def dream_view(model, meta, layer: str | None = None, out: Path | None = None) -> dict:
    """Each class's picture (or, with `layer`, its first filters') and how strongly the model answers it."""
    found = dream.filters(model, meta, layer) if layer else dream.classes(model, meta)
    key = "filter_activation" if layer else "class_confidence"
    result = {key: [round(float(c), 4) for c in found.confidence], "labels": found.labels}
    if out is not None:
        written: list[str] = []
        for label, picture in zip(found.labels, found.pictures):
            _save(_picture(picture), out, f"dream-{_file_part(label)}.png", written)
        result["written"] = written
    return result


def attribution_view(model, meta, test: inspection.TestSet, image: int = 0, target: int | None = None,
                     out: Path | None = None) -> dict:
    """The four attribution maps of test image `image` for class `target` (default: the model's answer)."""
    _check_index(image, test)
    x = test.x(image, meta)
    with torch.no_grad():
        predicted = int(model(x[None].to(next(model.parameters()).device)).argmax(1))
    target = predicted if target is None else int(target)
    maps = attribution.attribute_all(model, x, target, meta)
    names = list(meta["classes"])
    if not 0 <= target < len(names):
        raise ValueError(f"class {target} does not exist; this model has classes 0..{len(names) - 1}")
    result = {"methods": list(maps), "shape": list(next(iter(maps.values())).shape), "image": image,
              "label": names[int(test.y[image])], "predicted": names[predicted], "target": names[target]}
    if out is not None:
        written: list[str] = []
        _save(_picture(test.images[image].float().numpy() / 255), out, f"attribution-{image}-picture.png", written)
        for method, a in maps.items():
            picture = _signed_picture(a) if method in attribution.SIGNED else _picture(a)
            _save(picture, out, f"attribution-{image}-{_file_part(method)}.png", written)
        result["written"] = written
    return result


def _check_index(image: int, test: inspection.TestSet) -> None:
    if not 0 <= image < len(test.y):
        raise ValueError(f"test image index must be in 0..{len(test.y) - 1}, got {image}")


def _file_part(text: str) -> str:
    """A label as part of a file name: letters, digits, - and _ only (class names come from files)."""
    return "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in text)[:40].strip("-") or "x"


# ---- the figures lessons rest on (lessons.Measure), measured on a lesson's trained run -----------------
def fooled_figure(path: Path, n: int) -> float:
    """The first PGD budget at which the run's best weights misread most of the first n test images (inf when
    none of the budgets does)."""
    from cnn_core.analysis import predict
    from cnn_core.train import lessons

    model, meta = predict.load_model(Path(path), which="best")
    curve = adversarial_view(model, meta, inspection.load_test_set(meta.get("dataset")), n=n)
    return lessons.fooled_at(curve["budgets"], curve["accuracy"])


def separate_figure(path: Path, n: int) -> float:
    """The rise in 5-NN accuracy of n test images in the last hidden features, from the untrained snapshot
    (epoch 0) to the best weights."""
    from cnn_core.analysis import snapshots

    by_key = {w.key: w for w in snapshots.weights_choices(Path(path))}
    if "epoch-000" not in by_key or "best" not in by_key:
        raise ValueError("the run kept no snapshot of its untrained weights (epoch 0) to set beside its best")
    model, meta = snapshots.load_weights(by_key["best"])
    untrained, _ = snapshots.load_weights(by_key["epoch-000"])
    test = inspection.load_test_set(meta.get("dataset"))
    idx = embedding.sample(test.y.numpy(), n)
    trained = embedding.class_map(model, meta, test.images, test.y, idx).knn_acc_full
    return trained - embedding.class_map(untrained, meta, test.images, test.y, idx).knn_acc_full


MEASURES = {"fooled": fooled_figure, "separate": separate_figure}     # each kind of lessons.MEASURE_KINDS
