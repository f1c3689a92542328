"""The Draw page's library: a canvas's strokes as ink, which runs can read a drawing, a drawing as a
model's input (MNIST's own recipe for a digit), and one drawing's answer and first-layer maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnn_core.analysis import predict
from cnn_core.nets.architectures import conv_layers
from cnn_core.nets.hooks import recording
from cnn_core.recipe import normalize
from cnn_core.runs import store


def ink_from_rgba(rgba) -> np.ndarray:
    """Canvas RGBA (H, W, 4) uint8, white strokes on black -> ink intensity (H, W) float in [0, 1]."""
    arr = np.asarray(rgba, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB(A) image array (H, W, 3|4), got shape {arr.shape}")
    gray = arr[..., :3].mean(axis=2) / 255.0
    if arr.shape[2] == 4:
        gray = gray * (arr[..., 3] / 255.0)     # transparent pixels carry no ink
    return gray


def drawable(dataset: str | None) -> bool:
    """Whether a hand-drawn digit reads like the images of `dataset` (data.DatasetInfo.drawable)."""
    info = predict.dataset_info(dataset)
    return bool(info and info.drawable)


def drawable_runs(runs_dir: Path | None = None) -> list[store.Run]:
    """Runs that can read a drawing: the bundled model first (when it is there), then every run in the runs
    folder trained on a drawable dataset (MNIST, or a grey one added from pictures) with a best.pt, newest
    first."""
    out = []
    if (predict.BUNDLED_MNIST / store.BEST).is_file():
        try:
            out.append(store.read_run(predict.BUNDLED_MNIST))
        except ValueError:
            pass                                     # a damaged bundled folder is left out, not fatal
    out += [r for r in store.readable(store.list_runs(runs_dir)) if drawable(r.dataset) and (r.path / store.BEST).is_file()]
    return out


def drawing_for_model(ink, meta: dict) -> torch.Tensor:
    """A drawing's ink (H, W) in [0, 1] as the run's model input, (C, H, W) uint8: MNIST's recipe for a
    built-in digit set; for a grey dataset added from pictures, the whole square resized to its size, dark
    on light when its pictures are (their mean brightness above one half). ValueError when there is no ink."""
    digit = predict.mnist_preprocess(ink)                     # also the check that something was drawn
    info = predict.dataset_info(meta.get("dataset"))
    if info is None or info.own is None:
        return digit
    c, h, w = meta["input_shape"]
    pixels = Image.fromarray((np.clip(np.asarray(ink, dtype=np.float32), 0, 1) * 255).round().astype(np.uint8))
    a = np.asarray(pixels.resize((w, h), Image.BILINEAR))
    if float(np.mean(info.own.get("mean", [0.0]))) > 0.5:
        a = 255 - a
    return torch.from_numpy(np.ascontiguousarray(a)).unsqueeze(0).expand(c, h, w).contiguous()


def probabilities(model: nn.Module, meta: dict, image: torch.Tensor) -> np.ndarray:
    """Class probabilities (classes,) float32 for one uint8 image (C, H, W) of the model's input size."""
    return predict.predict_uint8(model, meta, image.unsqueeze(0))[0].numpy()


def first_conv_maps(model: nn.Module, meta: dict, image: torch.Tensor) -> tuple[str, np.ndarray] | None:
    """The first conv layer's output for one uint8 image (C, H, W): (layer name, maps (K, h, w) float32).
    None for a model without conv layers (an MLP). Safe on a model shared between threads: when the conv is
    the model's first layer (every registry model) it is applied directly, with no hook on the shared model;
    otherwise hooks.recording keeps the output of this thread's forward pass only."""
    convs = conv_layers(model)
    if not convs:
        return None
    name, conv = convs[0]
    x = normalize(image.unsqueeze(0), meta["mean"], meta["std"]).to(conv.weight.device)   # (1, C, H, W)
    first_leaf = next(m for m in model.modules() if not list(m.children()))
    with torch.no_grad():
        if first_leaf is conv:
            return name, conv(x)[0].float().cpu().numpy()                                # (K, h, w)
        with recording([(name, conv)], {}) as outputs:
            model(x)
    return name, outputs[name][0].float().cpu().numpy()                                    # (K, h, w)
