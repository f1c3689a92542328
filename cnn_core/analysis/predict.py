"""Inference from a run folder: load the trained model once, turn images into its input, predict."""
from __future__ import annotations

import csv
import io
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from cnn_core.data import guards, pictures
from cnn_core.data.catalog import DatasetInfo, get_info
from cnn_core.data.sources import open_image
from cnn_core.recipe import normalize
from cnn_core.runs import checkpoints, store

BUNDLED_MNIST = Path(__file__).resolve().parents[2] / "models" / "mnist-bundled"  # ships with the repo
MAX_UPLOAD_BYTES = 10 * 2**20      # an uploaded file larger than this is refused unread


def load_model(run: str | Path, which: str = "best", device: str = "cpu") -> tuple[nn.Module, dict]:
    """The run's model in eval mode and its metadata (classes, input_shape, mean, std, ...).
    which: "best" (best validation epoch) or "latest" (the last checkpoint)."""
    path = store.resolve_run(run)
    file = path / (store.BEST if which == "best" else store.CHECKPOINT)
    if not file.exists():
        raise checkpoints.CheckpointError(
            f"run {path.name} has no {file.name} yet: it saves one at the end of its first epoch")
    ckpt = checkpoints.load_checkpoint(file)
    _check_belongs(checkpoints.model_meta(ckpt), store.read_run(path), file)
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
    img = open_image(raw, MAX_UPLOAD_BYTES)
    channels, height, width = input_shape
    img = img.convert("L" if channels == 1 else "RGB").resize((width, height), Image.BILINEAR)
    x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return x.view(height, width, channels).permute(2, 0, 1).contiguous()    # (C, H, W)


def _info(dataset) -> DatasetInfo | None:
    try:
        return get_info(dataset)
    except ValueError:          # a dataset deleted since, or a foreign run.json's
        return None


def image_for_model(raw: bytes, meta: dict) -> torch.Tensor:
    """An image file as the run's model input, (C, H, W) uint8: a digit for a model of a built-in drawable
    dataset (MNIST) goes through MNIST's own recipe (mnist_preprocess); a picture for a dataset added from
    pictures is fitted as those were (pictures.decode: crop or pad); anything else is resized."""
    info = _info(meta.get("dataset"))
    if info is not None and info.own is not None:
        c, h, _ = meta["input_shape"]
        return torch.from_numpy(pictures.decode(raw, h, c, info.own.get("fit", "crop"))[0])
    if info is not None and info.drawable:
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
    img = open_image(raw, MAX_UPLOAD_BYTES)
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


# ---- the Draw page's helpers: which runs can read a digit, one digit's answer and first-layer maps ------
def drawable(dataset: str | None) -> bool:
    """Whether a hand-drawn digit reads like the images of `dataset` (data.DatasetInfo.drawable)."""
    info = _info(dataset)
    return bool(info and info.drawable)


def drawable_runs(runs_dir: Path | None = None) -> list[store.Run]:
    """Runs that can read a drawing: the bundled model first (when it is there), then every run in the runs
    folder trained on a drawable dataset (MNIST, or a grey one added from pictures) with a best.pt, newest
    first."""
    out = []
    if (BUNDLED_MNIST / store.BEST).is_file():
        try:
            out.append(store.read_run(BUNDLED_MNIST))
        except ValueError:
            pass                                     # a damaged bundled folder is left out, not fatal
    out += [r for r in store.readable(store.list_runs(runs_dir)) if drawable(r.dataset) and (r.path / store.BEST).is_file()]
    return out


def drawing_for_model(ink, meta: dict) -> torch.Tensor:
    """A drawing's ink (H, W) in [0, 1] as the run's model input, (C, H, W) uint8: MNIST's recipe for a
    built-in digit set; for a grey dataset added from pictures, the whole square resized to its size, dark
    on light when its pictures are (their mean brightness above one half). ValueError when there is no ink."""
    digit = mnist_preprocess(ink)                     # also the check that something was drawn
    info = _info(meta.get("dataset"))
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
    return predict_uint8(model, meta, image.unsqueeze(0))[0].numpy()


def first_conv_maps(model: nn.Module, meta: dict, image: torch.Tensor) -> tuple[str, np.ndarray] | None:
    """The first conv layer's output for one uint8 image (C, H, W): (layer name, maps (K, h, w) float32).
    None for a model without conv layers (an MLP). Safe on a model shared between threads: when the conv is
    the model's first layer (every registry model) it is applied directly, with no hook on the shared model;
    otherwise inspection.recording keeps the output of this thread's forward pass only."""
    from cnn_core.analysis.inspection import recording
    from cnn_core.nets.architectures import conv_layers

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


# ---- classify many (DIGITS' "Classify Many") -------------------------------------------------------------
@dataclass
class Classified:
    """A trained model's answers for many pictures; `truth` from class folders that name the run's classes."""
    classes: list[str]
    files: list[str]
    images: torch.Tensor                 # (N, C, H, W) uint8: what the model read
    probs: torch.Tensor                  # (N, classes)
    truth: list[int | None]
    skipped: list[tuple[str, str]]       # (file, why)
    ignored: int

    @property
    def labelled(self) -> list[int]:
        return [i for i, t in enumerate(self.truth) if t is not None]

    @property
    def predicted(self) -> list[int]:
        return self.probs.argmax(1).tolist()

    def accuracy(self) -> float | None:
        """Share of the labelled pictures read right; None when none is labelled."""
        idx = self.labelled
        return sum(self.predicted[i] == self.truth[i] for i in idx) / len(idx) if idx else None

    def confusion(self) -> np.ndarray | None:
        """(true, predicted) counts over the labelled pictures; None when none is labelled."""
        idx = self.labelled
        if not idx:
            return None
        cm = np.zeros((len(self.classes), len(self.classes)), dtype=np.int64)
        for i in idx:
            cm[self.truth[i], self.predicted[i]] += 1
        return cm

    def rows(self, k: int = 3) -> list[dict]:
        """One row per picture: file, its label (when labelled), whether it was read right, then the top k
        classes with their probabilities."""
        out = []
        for i, best in enumerate(top_k(self.probs, self.classes, k)):
            row = {"file": self.files[i], "label": None if self.truth[i] is None else self.classes[self.truth[i]],
                   "correct": None if self.truth[i] is None else self.predicted[i] == self.truth[i]}
            for rank, (name, p) in enumerate(best, 1):
                row[f"top{rank}"], row[f"p{rank}"] = name, round(p, 4)
            out.append(row)
        return out

    def to_csv(self, k: int = 3) -> str:
        """rows() as CSV text for a spreadsheet (label and correct only when a picture is labelled). A cell a
        spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage return: a file name
        in a zip can) is written as text, with a leading quote, as OWASP's CSV-injection advice says."""
        rows = self.rows(k)
        if all(r["label"] is None for r in rows):
            rows = [{c: v for c, v in r.items() if c not in ("label", "correct")} for r in rows]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["file"])   # RFC 4180: CR LF, CR quoted
        writer.writeheader()
        writer.writerows({c: spreadsheet_text(v) for c, v in r.items()} for r in rows)
        return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value):
    """A CSV cell that a spreadsheet shows as text, never runs: a string starting with = + - @, a tab or a
    carriage return gets a leading single quote; anything else is returned as it is."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _label(path: str, classes: list[str]) -> int | None:
    """The class named by the nearest folder of `path` that is one of `classes` (test/cat/1.png -> cat)."""
    for part in reversed(path.split("/")[:-1]):
        if part in classes:
            return classes.index(part)
    return None


def _picture_file(path) -> bool:
    """Whether `path` is a regular file that is not a zip (a picture to read); False for a folder, a zip,
    a pipe or a device (never opened: list_source refuses those)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with guards.open_regular(path) as f:
            return not zipfile.is_zipfile(f)
    except (OSError, ValueError):
        return False


def classify_many(model: nn.Module, meta: dict, sources, progress=None, batch: int = 256) -> Classified:
    """Read every picture of `sources` with the model: each a folder or zip path, an image file path, a
    zip's bytes, or (name, bytes) of an uploaded picture or zip. Unreadable pictures are skipped and listed."""
    entries, ignored = [], 0
    for src in sources:
        name, raw = src if isinstance(src, tuple) else (None, src)
        is_zip = isinstance(raw, (bytes, bytearray)) and raw[:4] == b"PK\x03\x04"
        if isinstance(raw, (bytes, bytearray)) and not is_zip:
            entries.append(pictures.Entry(name or "upload", len(raw), lambda raw=raw: bytes(raw)))
        elif not is_zip and _picture_file(raw):
            entries.append(pictures.Entry(str(raw), Path(raw).stat().st_size,
                                           lambda p=raw: guards.read_regular(p, pictures.MAX_IMAGE_BYTES)))
        else:
            listing = pictures.list_source(raw, name)
            entries += listing.entries
            ignored += len(listing.ignored)
    if len(entries) > pictures.MAX_FILES:
        raise ValueError(f"{len(entries):,} pictures; the limit is {pictures.MAX_FILES:,}")
    c, h, w = meta["input_shape"]
    too_big = guards.decoded_problem(len(entries), c, h, w, "choose fewer pictures")
    if too_big:                                  # before anything is decoded or allocated
        raise ValueError(too_big)
    x = torch.empty(len(entries), c, h, w, dtype=torch.uint8)           # (N, C, H, W), filled as read
    classes, skipped, files, truth = list(meta["classes"]), [], [], []
    for done, e in enumerate(entries):
        if progress and done % 64 == 0:
            progress(done, len(entries), f"reading {done:,} of {len(entries):,} pictures")
        try:
            x[len(files)] = image_for_model(e.read(), meta)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            skipped.append((e.path, str(exc)))
            continue
        files.append(e.path)
        truth.append(_label(e.path, classes))
    if not files:
        raise ValueError("no picture could be read" + (f": {skipped[0][0]}: {skipped[0][1]}" if skipped else
                                                       " (give PNG, JPEG, BMP, GIF or WebP files)"))
    x = x[:len(files)]
    probs = torch.cat([predict_uint8(model, meta, x[i:i + batch]) for i in range(0, len(x), batch)])
    if progress:
        progress(len(entries), len(entries), f"read {len(files):,} pictures")
    return Classified(classes, files, x, probs, truth, skipped, ignored)
