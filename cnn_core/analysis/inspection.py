"""Inspection: what a trained network learned — filters, feature maps, test-set confusion and mistakes,
and the choices behind saliency (its maps: attribution.py). Pure functions, no Streamlit; which weights: snapshots.py.

Every function takes a model in eval mode and leaves it untouched: no .grad written, no mode flipped,
so one cached model can serve every page session. Hooks record only in the thread that set them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core import recipe
from cnn_core.data import catalog
from cnn_core.nets.architectures import conv_layers
from cnn_core.nets.hooks import recording
from cnn_core.runs import metrics_log, store

EVAL_BATCH = 500
IMAGE_MODES = ("index", "class", "random", "misclassified")
_SKIPPED = (nn.Dropout, nn.Dropout2d, nn.Dropout1d, nn.Identity)  # identity at inference: no new maps
TINY_CAM = 4          # px: a Grad-CAM map at or below 4x4, upsampled to the picture, lights broad blocks
_AFTER_CONV = (nn.BatchNorm2d, nn.ReLU, nn.Tanh, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid)


# ---- the test set and predictions on it -----------------------------------------------------------
@dataclass
class TestSet:
    """A dataset's test images as stored (uint8) and their labels; normalized batch by batch."""

    __test__ = False  # not a pytest class
    dataset: str
    images: torch.Tensor     # (N, C, H, W) uint8
    y: torch.Tensor          # (N,) int64
    classes: tuple[str, ...]

    def x(self, idx, meta: dict) -> torch.Tensor:
        """Images `idx` normalized with the run's mean and std: what the model saw in training."""
        return recipe.normalize(self.images[idx], meta["mean"], meta["std"])


def load_test_set(dataset: str | None) -> TestSet:
    """The prepared test split of `dataset`. ValueError (for a person) when it is not prepared here;
    this never starts a download."""
    if not dataset:
        raise ValueError("the checkpoint does not name its dataset, so there is no test set to use")
    info = catalog.get_info(dataset)
    status = catalog.dataset_status(dataset)
    if status.state == "missing":
        raise ValueError(f"the {info.title} test images are not on this machine: {status.detail}")
    raw = catalog.load_raw(dataset)
    return TestSet(dataset, raw.test_x, raw.test_y, info.classes)


def check_fits(test: TestSet, meta: dict) -> None:
    """ValueError when the run's model does not take this test set's images."""
    if list(test.images.shape[1:]) != list(meta["input_shape"]) or len(test.classes) != meta["num_classes"]:
        raise ValueError(f"the run's model takes {tuple(meta['input_shape'])} images in {meta['num_classes']} "
                         f"classes; the {test.dataset} test set has {tuple(test.images.shape[1:])} in "
                         f"{len(test.classes)}")


@dataclass
class Predictions:
    """The model's class probabilities for every test image, and the true labels."""

    probs: np.ndarray   # (N, K) float32
    y: np.ndarray       # (N,) int64

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(1)

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.y


def predict_test(model: nn.Module, test: TestSet, meta: dict, batch_size: int = EVAL_BATCH) -> Predictions:
    """Softmax probabilities of `model` on the whole test set, in batches, no gradients."""
    check_fits(test, meta)
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for start in range(0, len(test.y), batch_size):
            xb = test.x(slice(start, start + batch_size), meta).to(device)   # (B, C, H, W)
            out.append(torch.softmax(model(xb).float(), dim=1).cpu())         # (B, K)
    probs = torch.cat(out) if out else torch.zeros(0, meta["num_classes"])
    return Predictions(probs.numpy(), test.y.numpy().astype(np.int64))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row = true class, column = predicted class."""
    flat = np.asarray(y_true, dtype=np.int64) * num_classes + np.asarray(y_pred, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its total: the share of a true class sent to each prediction (0 for empty rows)."""
    totals = cm.sum(1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros(cm.shape, dtype=float), where=totals > 0)


def most_confused(cm: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal cell; (0, 0) when there is no mistake."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    return divmod(int(off.argmax()), len(cm)) if off.any() else (0, 0)


def class_report(cm: np.ndarray, classes) -> pd.DataFrame:
    """Per class: test images, accuracy (= recall: the share of the class called right), precision
    (the share of the images called this class that are it) and F1. NaN where undefined."""
    tp = np.diag(cm).astype(float)
    support, called = cm.sum(1).astype(float), cm.sum(0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, tp / support, np.nan)
        precision = np.where(called > 0, tp / called, np.nan)
        f1 = 2 * precision * recall / (precision + recall)
    return pd.DataFrame({"class": list(classes), "images": support.astype(int),
                         "accuracy (recall)": recall, "precision": precision, "F1": f1})


def _most_confident(preds: Predictions, mask: np.ndarray) -> np.ndarray:
    idx = np.flatnonzero(mask)
    return idx[np.argsort(-preds.confidence[idx], kind="stable")]


def cell_indices(preds: Predictions, true_class: int, pred_class: int) -> np.ndarray:
    """Test indices in one confusion cell (true, predicted), most confident first."""
    return _most_confident(preds, (preds.y == true_class) & (preds.pred == pred_class))


def mistakes(preds: Predictions) -> np.ndarray:
    """Indices of misclassified test images, most confident mistake first."""
    return _most_confident(preds, ~preds.correct)


def choose_image(preds: Predictions, mode: str, n: int = 0, cls: int = 0, seed: int = 0) -> int:
    """A test index: "index" n; "class" the n-th image of class `cls`; "random" one drawn with `seed`;
    "misclassified" the n-th mistake, most confident first. n wraps around; ValueError when none."""
    if mode not in IMAGE_MODES:
        raise ValueError(f"unknown image choice {mode!r}; choose one of: {', '.join(IMAGE_MODES)}")
    total = len(preds.y)
    if total == 0:
        raise ValueError("the test set is empty")
    if mode == "index":
        if not 0 <= n < total:
            raise ValueError(f"test image index must be in 0..{total - 1}, got {n}")
        return int(n)
    if mode == "random":
        return int(np.random.default_rng(seed).integers(total))
    pool = np.flatnonzero(preds.y == cls) if mode == "class" else mistakes(preds)
    if len(pool) == 0:
        raise ValueError("the model gets every test image right: no mistakes to show" if mode == "misclassified"
                         else f"the test set has no image of class {cls}")
    return int(pool[n % len(pool)])


# ---- filters -------------------------------------------------------------------------------------
def conv_filters(model: nn.Module) -> list[tuple[str, np.ndarray]]:
    """(name, weight (out, in, kh, kw)) of every conv layer in forward order; names as in the state dict."""
    return [(name, m.weight.detach().cpu().float().numpy().copy()) for name, m in conv_layers(model)]


def dense_templates(model: nn.Module) -> tuple[str, np.ndarray] | None:
    """For a model with no conv layers: the first Linear layer's weights as images (units, C, H, W)."""
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)), None)
    shape = tuple(getattr(model, "input_shape", ()))
    if first is None or len(shape) != 3 or first[1].in_features != int(np.prod(shape)):
        return None
    return first[0], first[1].weight.detach().cpu().float().numpy().reshape(-1, *shape).copy()


def filter_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """d(mean cross-entropy on batch x, y)/d(weight) for every conv layer, as conv_filters lays them out.
    Eval mode (batch norm uses its running statistics); the model's .grad fields are left alone."""
    layers, device = conv_layers(model), next(model.parameters()).device
    if not layers:
        return []
    with torch.enable_grad():
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        grads = torch.autograd.grad(loss, [m.weight for _, m in layers], allow_unused=True)
    return [(name, (g if g is not None else torch.zeros_like(m.weight)).detach().cpu().numpy())
            for (name, m), g in zip(layers, grads)]


# ---- histograms over epochs (TensorBoard's) ------------------------------------------------------------
HIST_BINS = 30


def weight_histories(path: Path) -> dict[str, dict[int, np.ndarray]]:
    """Layer -> epoch -> its weights, from the run's snapshots (epoch 0: before training)."""
    from cnn_core.analysis.snapshots import snapshot_epochs

    out: dict[str, dict[int, np.ndarray]] = {}
    for epoch in snapshot_epochs(path):
        state = torch.load(store.snapshot_file(path, epoch), map_location="cpu", weights_only=True)["model"]
        for key, value in state.items():
            if key.endswith(".weight") and value.dim() in (2, 4):       # conv and linear weights
                out.setdefault(key.removesuffix(".weight"), {})[epoch] = value.float().numpy().ravel()
    return out


def histogram_frame(by_epoch: dict[int, np.ndarray], bins: int = HIST_BINS) -> pd.DataFrame:
    """Long form for a heatmap: epoch, value (bin centre), share of the tensor in that bin; one range of
    bins over every epoch so that the distributions compare."""
    lo = min(float(v.min()) for v in by_epoch.values())
    hi = max(float(v.max()) for v in by_epoch.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-12, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    rows = []
    for epoch, values in sorted(by_epoch.items()):
        counts, _ = np.histogram(values, edges)
        rows += [{"epoch": epoch, "value": float(c), "share": float(n) / max(len(values), 1)}
                 for c, n in zip(centres, counts)]
    return pd.DataFrame(rows)


def gradient_history(path: Path) -> dict[str, dict[int, dict]]:
    """Layer -> epoch -> {"lo", "hi", "counts"}: the histograms the engine logged of each layer's
    gradient at the end of every epoch (its last batch)."""
    out: dict[str, dict[int, dict]] = {}
    for m in metrics_log.read_metrics(path):
        if m.get("kind") == "grads" and isinstance(m.get("layers"), dict):
            for name, h in m["layers"].items():
                out.setdefault(name, {})[int(m["epoch"])] = h
    return out


def _logged_bins(h: dict) -> tuple[np.ndarray, np.ndarray]:
    """A logged gradient histogram's bin centres and counts (its bins split lo..hi evenly)."""
    counts = np.asarray(h["counts"], dtype=float)
    edges = np.linspace(h["lo"], h["hi"], len(counts) + 1)
    return (edges[:-1] + edges[1:]) / 2, counts


def gradient_sizes(by_epoch: dict[int, dict]) -> pd.DataFrame:
    """One row per logged epoch: the gradient's root mean square (`rms`, the size a vanishing or exploding
    gradient shows in), as logged, or estimated from the histogram's bin centres for logs made before it
    was (`estimated`)."""
    rows = []
    for epoch, h in sorted(by_epoch.items()):
        if isinstance(h.get("rms"), (int, float)):
            rms, estimated = float(h["rms"]), False
        else:
            centres, counts = _logged_bins(h)
            rms, estimated = float(np.sqrt((counts * centres ** 2).sum() / max(counts.sum(), 1.0))), True
        rows.append({"epoch": epoch, "rms": rms, "estimated": estimated})
    return pd.DataFrame(rows, columns=["epoch", "rms", "estimated"])


def gradient_frame(by_epoch: dict[int, dict]) -> pd.DataFrame:
    """The logged gradient histograms in the long form of histogram_frame (each epoch on its own range)."""
    rows = []
    for epoch, h in sorted(by_epoch.items()):
        centres, counts = _logged_bins(h)
        total = max(counts.sum(), 1.0)
        rows += [{"epoch": epoch, "value": float(c), "share": n / total} for c, n in zip(centres, counts)]
    return pd.DataFrame(rows)


# ---- feature maps --------------------------------------------------------------------------------
@dataclass
class FeatureMap:
    """One layer's output for one image."""

    name: str           # dotted name inside model.features: "conv1", "blocks.3"
    kind: str           # module class: "Conv2d", "ReLU", "ResBlock", ...
    maps: np.ndarray    # (C, H, W) float32

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.maps.shape)


def feature_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers of model.features whose outputs are shown, in forward order: containers are opened,
    any other module (conv, activation, pool, residual block) is one layer; dropout is left out."""
    out: list[tuple[str, nn.Module]] = []

    def walk(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                walk(child, f"{prefix}{name}.")
            elif not isinstance(child, _SKIPPED):
                out.append((f"{prefix}{name}", child))

    walk(getattr(model, "features", nn.Sequential()), "")
    return out


def batch_of_one(x: torch.Tensor, model: nn.Module, target: int | None = None) -> torch.Tensor:
    """One image as a (1, C, H, W) float batch on the model's device, detached from the caller's tensor."""
    x = x.unsqueeze(0) if x.dim() == 3 else x                     # (1, C, H, W)
    if x.shape[0] != 1:
        raise ValueError(f"one image expected, got a batch of {x.shape[0]}")
    classes = getattr(model, "num_classes", None)
    if target is not None and classes is not None and not 0 <= target < classes:
        raise ValueError(f"class {target} does not exist; this model has classes 0..{classes - 1}")
    return x.detach().to(next(model.parameters()).device, torch.float32)


def extract_feature_maps(model: nn.Module, x: torch.Tensor) -> tuple[list[FeatureMap], np.ndarray]:
    """Every feature layer's output for one normalized image (C, H, W), and the class probabilities (K,)."""
    layers = feature_layers(model)
    with torch.no_grad(), recording(layers, {}) as outputs:
        probs = torch.softmax(model(batch_of_one(x, model)).float(), dim=1)[0]   # (K,)
    maps = [FeatureMap(name, type(m).__name__, outputs[name][0].float().cpu().numpy().copy())
            for name, m in layers if name in outputs]
    return maps, probs.cpu().numpy()


# ---- saliency: where Grad-CAM looks (its maps: attribution.py) ------------------------------------------------------------------------------------
def default_cam_layer(model: nn.Module) -> str | None:
    """Grad-CAM's usual target: the output of the last conv (or residual block), after its batch norm and
    activation when they follow directly. None when the model has no conv layer."""
    layers = feature_layers(model)
    has_conv = [i for i, (_, m) in enumerate(layers) if any(isinstance(s, nn.Conv2d) for s in m.modules())]
    if not has_conv:
        return None
    j = has_conv[-1]
    while j + 1 < len(layers) and isinstance(layers[j + 1][1], _AFTER_CONV):
        j += 1
    return layers[j][0]


def map_sizes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, int]]:
    """(h, w) of every feature layer's maps for one normalized image (C, H, W), in forward order: the grid
    Grad-CAM at that layer is computed on before it is upsampled to the picture."""
    layers = feature_layers(model)
    with torch.no_grad(), recording(layers, {}) as outputs:
        model(batch_of_one(x, model))
    return {name: tuple(outputs[name].shape[-2:]) for name, _ in layers
            if name in outputs and outputs[name].dim() == 4}


def finer_cam_layer(sizes: dict[str, tuple[int, int]], layer: str) -> str | None:
    """The last layer before `layer` whose maps are larger than TINY_CAM on a side: Grad-CAM's nearest
    finer choice (None when there is none)."""
    names = list(sizes)
    before = names[:names.index(layer)] if layer in names else []
    return next((n for n in reversed(before) if min(sizes[n]) > TINY_CAM), None)
