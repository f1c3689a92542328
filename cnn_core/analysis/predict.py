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

from cnn_core.core.progress import count
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


def dataset_info(dataset) -> DatasetInfo | None:
    """The dataset a run names, or None when it is not here (deleted since, or a foreign run.json's)."""
    try:
        return get_info(dataset)
    except ValueError:          # a dataset deleted since, or a foreign run.json's
        return None


def image_for_model(raw: bytes, meta: dict) -> torch.Tensor:
    """An image file as the run's model input, (C, H, W) uint8: a digit for a model of a built-in drawable
    dataset (MNIST) goes through MNIST's own recipe (mnist_preprocess); a picture for a dataset added from
    pictures is fitted as those were (pictures.decode: crop or pad); anything else is resized."""
    info = dataset_info(meta.get("dataset"))
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


def top_k(probs, classes, k: int = 3) -> list[tuple[str, float]]:
    """One image's k most likely (class name, probability) from its probabilities (K,) (a tensor or an
    array), most likely first; of equal probabilities the lower class index first (a stable sort: topk
    orders ties at random)."""
    values, indices = torch.as_tensor(probs).flatten().sort(descending=True, stable=True)
    return [(classes[i], float(v)) for v, i in zip(values[:k].tolist(), indices[:k].tolist())]


# ---- MNIST's own recipe for a drawing or an upload ---------------------------------------------
INK_THRESHOLD = 0.1        # a pixel is ink when brighter than this share of the brightest pixel
MIN_INK_PIXELS = 8         # fewer ink pixels than this is an empty drawing


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
        for i, best in enumerate(top_k(row, self.classes, k) for row in self.probs):
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
        progress(len(entries), len(entries), f"read {count(len(files), 'picture')}")
    return Classified(classes, files, x, probs, truth, skipped, ignored)
