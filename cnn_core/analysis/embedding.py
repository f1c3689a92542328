"""Watch the classes separate: the features a model hands its last layer, for a fixed sample of test
images, laid out in 2-D (scikit-learn's PCA at once, t-SNE on request), and how well the 2-D map keeps the
classes apart (leave-one-out 5-nearest-neighbour accuracy in 2-D). The same sample at every saved epoch,
so a learner sees clusters form. Numbers only, no Streamlit; the model is left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.neighbors import NearestNeighbors
from torch import nn

from cnn_core import recipe

METHODS = ("pca", "tsne")
DEFAULT_N = 1000
KNN = 5


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The model's last Linear layer: its input is the last hidden layer's features."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError("this model has no dense layer, so it has no last hidden features to map")
    return found[-1]


def hidden_features(model: nn.Module, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) what the last Linear layer receives for normalized images x (N, C, H, W), and (N,) the
    model's answers, in batches."""
    _, layer = last_linear(model)
    got: list[torch.Tensor] = []
    pred: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(lambda _m, args: got.append(args[0].detach().float().flatten(1).cpu()))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for s in range(0, len(x), batch):
                pred.append(model(x[s:s + batch].to(device)).argmax(1).cpu())
    finally:
        handle.remove()
    if not got:
        return np.zeros((0, layer.in_features), np.float32), np.zeros(0, np.int64)
    return torch.cat(got).numpy(), torch.cat(pred).numpy()


def sample(y: np.ndarray, n: int = DEFAULT_N, seed: int = 0) -> np.ndarray:
    """n test indices drawn once with `seed` (sorted): the same pictures at every epoch."""
    n = min(int(n), len(y))
    return np.sort(np.random.default_rng(seed).choice(len(y), size=n, replace=False))


def project(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, 2): PCA's two main directions, or t-SNE's map (perplexity 30, PCA start: reproducible)."""
    if method not in METHODS:
        raise ValueError(f"unknown map {method!r}; choose one of: {', '.join(METHODS)}")
    if len(features) < 3:
        raise ValueError("a map needs at least 3 pictures")
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(features).astype(np.float32)
    perplexity = min(30.0, (len(features) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        features).astype(np.float32)


def knn_accuracy(points: np.ndarray, y: np.ndarray, k: int = KNN) -> float:
    """Leave-one-out k-nearest-neighbour accuracy: the share of points whose k nearest others (in these
    coordinates) mostly share its class. 1.0: classes in clean islands; 1/classes: mixed."""
    k = min(k, len(points) - 1)
    if k < 1:
        return float("nan")
    _, nearest = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    votes = y[nearest[:, 1:]]                                   # (N, k): drop each point itself
    classes = int(y.max()) + 1
    counts = np.stack([(votes == c).sum(1) for c in range(classes)], 1)
    return float((counts.argmax(1) == y).mean())


@dataclass
class ClassMap:
    """A 2-D map of test pictures by the model's last hidden features."""

    points: np.ndarray      # (N, 2)
    indices: np.ndarray     # (N,) test indices
    y: np.ndarray           # (N,) true classes
    pred: np.ndarray        # (N,) the model's answers
    method: str
    knn_acc: float          # 5-NN accuracy in 2-D
    knn_acc_full: float     # the same in the full feature space: what the 2-D map loses
    dims: int               # the features' size before the map

    def summary(self) -> dict:
        return {"method": self.method, "n": len(self.indices), "knn_acc_2d": self.knn_acc,
                "knn_acc_features": self.knn_acc_full, "dims": self.dims}


def class_map(model: nn.Module, meta: dict, images: torch.Tensor, labels: torch.Tensor, indices: np.ndarray,
              method: str = "pca", seed: int = 0) -> ClassMap:
    """The map of test pictures `images[indices]` (uint8) with their labels."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    x = recipe.normalize(images[idx], meta["mean"], meta["std"])
    feats, pred = hidden_features(model, x)
    y = labels[idx].numpy().astype(np.int64)
    points = project(feats, method, seed)
    return ClassMap(points, np.asarray(indices), y, pred, method, knn_accuracy(points, y),
                    knn_accuracy(feats, y), feats.shape[1])
