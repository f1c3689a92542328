"""Inference from a run folder: load the trained model once, turn images into its input, predict."""
from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import checkpoints, runs
from .data import DATASETS, normalize

BUNDLED_MNIST = Path(__file__).resolve().parent.parent / "models" / "mnist-bundled"  # ships with the repo
MAX_UPLOAD_BYTES = 10 * 2**20      # an uploaded file larger than this is refused unread
MAX_PIXELS = 40_000_000            # width*height above this is refused (decompression bombs)


def load_model(run: str | Path, which: str = "best", device: str = "cpu") -> tuple[nn.Module, dict]:
    """The run's model in eval mode and its metadata (classes, input_shape, mean, std, ...).
    which: "best" (best validation epoch) or "latest" (the last checkpoint)."""
    path = runs.resolve_run(run)
    file = path / (runs.BEST if which == "best" else runs.CHECKPOINT)
    if not file.exists():
        raise checkpoints.CheckpointError(
            f"run {path.name} has no {file.name} yet: it saves one at the end of its first epoch")
    ckpt = checkpoints.load_checkpoint(file)
    _check_belongs(checkpoints.model_meta(ckpt), runs.read_run(path), file)
    return checkpoints.model_from_checkpoint(ckpt, device), checkpoints.model_meta(ckpt)


def _check_belongs(meta: dict, record: dict, file: Path) -> None:
    """CheckpointError naming each misfit when the weights file describes another model than its run.json
    (a best.pt copied in from another run): another architecture, class count or input size."""
    misfits = []
    if isinstance(record.arch, str) and meta["arch"] != record.arch:
        misfits.append(f"architecture {meta['arch']!r} (the run's is {record.arch!r})")
    if isinstance(record.classes, list) and meta["num_classes"] != len(record.classes):
        misfits.append(f"{meta['num_classes']!r} classes (the run has {len(record.classes)})")
    shape = list(meta["input_shape"]) if isinstance(meta["input_shape"], (list, tuple)) else meta["input_shape"]
    if isinstance(record.input_shape, list) and shape != record.input_shape:
        misfits.append(f"input {meta['input_shape']!r} (the run's is {record.input_shape!r})")
    if misfits:
        raise checkpoints.CheckpointError(
            f"{file.name} of run {file.parent.name} holds a model for another run: " + "; ".join(misfits)
            + ". Was it copied from another run folder?")


def image_from_bytes(raw: bytes, input_shape) -> torch.Tensor:
    """Decode PNG/JPEG/... bytes into a (C, H, W) uint8 tensor of the model's input size.
    Refuses files that are too large, not images, or decompression bombs, with a ValueError."""
    img = _open_image(raw)
    channels, height, width = input_shape
    img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return x.view(height, width, channels).permute(2, 0, 1).contiguous()    # (C, H, W)


def image_for_model(raw: bytes, meta: dict) -> torch.Tensor:
    """An image file as the run's model input, (C, H, W) uint8: a digit for a model of a drawable dataset
    (MNIST) goes through MNIST's own recipe (mnist_preprocess); anything else is resized to the input size."""
    if drawable(meta.get("dataset")):
        return mnist_preprocess(ink_from_upload(raw))
    return image_from_bytes(raw, meta["input_shape"])


def predict_uint8(model: nn.Module, meta: dict, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, classes) for uint8 images (N, C, H, W) in the model's input size."""
    x = normalize(images, meta["mean"], meta["std"])
    with torch.no_grad():
        return torch.softmax(model(x.to(next(model.parameters()).device)), dim=1).cpu()


def top_k(probs: torch.Tensor, classes, k: int = 3) -> list[list[tuple[str, float]]]:
    """For each row of probabilities, the k most likely (class name, probability), most likely first;
    of equal probabilities the lower class index first (a stable sort: topk orders ties at random)."""
    values, indices = probs.sort(dim=1, descending=True, stable=True)
    values, indices = values[:, :k], indices[:, :k]
    return [[(classes[i], float(v)) for v, i in zip(vs, ids)] for vs, ids in zip(values.tolist(), indices.tolist())]


# ---- MNIST's own recipe for a drawing or an upload ---------------------------------------------
INK_THRESHOLD = 0.1        # a pixel is ink when brighter than this share of the brightest pixel
MIN_INK_PIXELS = 8         # fewer ink pixels than this is an empty drawing


def ink_from_rgba(rgba) -> np.ndarray:
    """Canvas RGBA (H, W, 4) uint8, white strokes on black -> ink intensity (H, W) float in [0, 1]."""
    arr = np.asarray(rgba, dtype=np.float32)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an RGB(A) image array (H, W, 3|4), got shape {arr.shape}")
    gray = arr[..., :3].mean(axis=2) / 255.0
    if arr.shape[2] == 4:
        gray = gray * (arr[..., 3] / 255.0)     # transparent pixels carry no ink
    return gray


def ink_from_upload(raw: bytes) -> np.ndarray:
    """An uploaded image file -> ink intensity (H, W) in [0, 1]: light-on-dark kept, dark-on-light
    inverted (judged by the border, which is background in a photo or scan of one digit)."""
    img = _open_image(raw)
    if img.mode in ("RGBA", "LA") or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
        alpha = rgba[..., 3] / 255.0
        if alpha.min() < 0.5:        # transparent background: the ink is the opaque part
            return alpha
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if np.median(border) > 0.5 else gray
    bg = float(np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])))   # paper is not 0
    return np.clip((ink - bg) / max(float(ink.max()) - bg, 1e-6), 0.0, 1.0)


def mnist_preprocess(ink) -> torch.Tensor:
    """MNIST's recipe: crop to the ink, fit the longer side into 20 px (anti-aliased, aspect kept),
    paste into 28x28 with the intensity centre of mass at the centre. Returns (1, 28, 28) uint8.
    ValueError when there is no ink to read."""
    ink = np.clip(np.asarray(ink, dtype=np.float32), 0.0, 1.0)          # (H, W)
    peak = float(ink.max()) if ink.size else 0.0
    mask = ink > max(peak * INK_THRESHOLD, 0.05)
    if peak < 0.2 or mask.sum() < MIN_INK_PIXELS:
        raise ValueError("the drawing is empty: draw a digit first (white ink on the black square)")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray((crop * 255).astype(np.uint8)).resize((new_w, new_h), Image.LANCZOS)
    box = np.asarray(small, dtype=np.float32)                           # (new_h, new_w), longer side 20
    total = box.sum()
    cy = (box.sum(axis=1) * np.arange(new_h)).sum() / total
    cx = (box.sum(axis=0) * np.arange(new_w)).sum() / total
    top, left = int(round(13.5 - cy)), int(round(13.5 - cx))            # centre of mass -> (13.5, 13.5)
    top, left = min(max(top, 0), 28 - new_h), min(max(left, 0), 28 - new_w)
    out = np.zeros((28, 28), dtype=np.float32)
    out[top:top + new_h, left:left + new_w] = box
    return torch.from_numpy(np.clip(out, 0, 255).round().astype(np.uint8)).unsqueeze(0)   # (1, 28, 28)


def _open_image(raw: bytes):
    """PIL image from upload bytes, refusing oversized files, decompression bombs and non-images."""
    if not raw:
        raise ValueError("the file is empty (0 bytes): upload a PNG or JPEG picture")
    if len(raw) > MAX_UPLOAD_BYTES:
        raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"the image is {img.width}x{img.height} pixels; the limit is "
                                 f"{MAX_PIXELS:,} pixels")
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the image was refused as a decompression bomb ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ValueError("the file is not an image that can be read: it is no PNG, JPEG, BMP, GIF or WebP "
                         "picture") from None
    except (OSError, SyntaxError) as exc:      # a damaged picture: PIL's reason, without its object's repr
        reason = re.sub(r"\s*<[^>]* object at 0x[0-9a-f]+>", "", str(exc))
        raise ValueError(f"the file is not an image that can be read ({reason})") from None
    return img


# ---- the Draw page's helpers: which runs can read a digit, one digit's answer and first-layer maps ------
def drawable(dataset: str | None) -> bool:
    """Whether a hand-drawn digit reads like the images of `dataset` (data.DatasetInfo.drawable)."""
    info = DATASETS.get(dataset) if isinstance(dataset, str) else None
    return bool(info and info.drawable)


def drawable_runs(runs_dir: Path | None = None) -> list[runs.Run]:
    """Runs that can read a drawn digit: the bundled model first (when it is there), then every run in
    the runs folder trained on a drawable dataset (MNIST) that has a best.pt, newest first."""
    out = []
    if (BUNDLED_MNIST / runs.BEST).is_file():
        try:
            out.append(runs.read_run(BUNDLED_MNIST))
        except ValueError:
            pass                                     # a damaged bundled folder is left out, not fatal
    out += [r for r in runs.readable(runs.list_runs(runs_dir)) if drawable(r.dataset) and (r.path / runs.BEST).is_file()]
    return out


def probabilities(model: nn.Module, meta: dict, image: torch.Tensor) -> np.ndarray:
    """Class probabilities (classes,) float32 for one uint8 image (C, H, W) of the model's input size."""
    return predict_uint8(model, meta, image.unsqueeze(0))[0].numpy()


def first_conv_maps(model: nn.Module, meta: dict, image: torch.Tensor) -> tuple[str, np.ndarray] | None:
    """The first conv layer's output for one uint8 image (C, H, W): (layer name, maps (K, h, w) float32).
    None for a model without conv layers (an MLP). Safe on a model shared between threads: when the conv is
    the model's first layer (every registry model) it is applied directly, with no hook on the shared model;
    otherwise inspection.recording keeps the output of this thread's forward pass only."""
    from .inspection import recording
    from .models import conv_layers

    convs = conv_layers(model)
    if not convs:
        return None
    name, conv = convs[0]
    x = normalize(image.unsqueeze(0), meta["mean"], meta["std"]).to(conv.weight.device)   # (1, C, H, W)
    first_leaf = next(m for m in model.modules() if not list(m.children()))
    with torch.no_grad():
        if first_leaf is conv:
            return name, conv(x)[0].float().cpu().numpy()                                # (K, h, w)
        with recording([(name, conv)], {}) as store:
            model(x)
    return name, store[name][0].float().cpu().numpy()                                    # (K, h, w)
