"""Your own images as a dataset: a folder or a zip of class folders, checked, decoded, resized and cached like
the built-in sets (data.py), with a report of what was found. The same reading serves "classify many".

    ROOT/<class>/<images>                          split here: stratified, seeded (--test, --val)
    ROOT/train/<class>/...  ROOT/test/<class>/...  the folder's own split is kept (as DIGITS does)

Nothing is extracted: a zip's entries are read in memory after every entry has been checked (no `..`, no
absolute path, no link; the limits below), and the only file written is the dataset's cache in the data
folder, through the atomic writer, sidecar last: a process killed mid-add leaves no dataset that looks ready.
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from cnn_core import recipe
from cnn_core.core import files, people
from cnn_core.core.progress import count
from cnn_core.data import catalog, guards
from cnn_core.data.sources import RawDataset, open_image

# Limits, stated to the person when they bite.
MAX_FILES = 200_000                 # entries in a zip, or files in a folder
MAX_UNZIPPED_BYTES = 4 * 2**30      # a zip's entries together, uncompressed
MAX_RATIO = 100                     # uncompressed / compressed over a whole zip above RATIO_FROM bytes:
RATIO_FROM = 64 * 2**20             #   PNG and JPEG hardly compress (about 1x); a zip bomb goes to 1,000x
MAX_IMAGE_BYTES = 64 * 2**20        # one image file
SIZES = (8, 512)                    # the side of the square images stored
FITS = {"crop": "shorter side to the size, then the centre cropped square",
        "pad": "longer side to the size, then padded with black to a square"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
SPLIT_FOLDERS = ("train", "test")
FEW_IMAGES = 10                     # a class with fewer is warned about
IMBALANCE = 10                      # largest class / smallest class above this is warned about
SHOWN = 5                           # examples named in a warning

Progress = Callable[[int, int, str], None]


class Refused(ValueError):
    """The source or the name cannot become a dataset; the message says why and what to do."""


# ---- what a source holds -----------------------------------------------------------------------------

@dataclass
class Entry:
    path: str                       # relative, '/'-separated, the common root folder of a zip taken off
    size: int                       # bytes (uncompressed)
    reader: Callable[[], bytes]

    def read(self) -> bytes:
        """The file's bytes; ValueError, unread, when it is over MAX_IMAGE_BYTES."""
        if self.size > MAX_IMAGE_BYTES:
            raise ValueError(f"the file is {self.size / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB")
        return self.reader()


@dataclass
class Listing:
    label: str                      # "folder /home/me/pets" or "zip pets.zip"
    entries: list[Entry]            # files with an image suffix
    ignored: list[str]              # other files: not images, hidden, links in a folder
    folders: list[str] = field(default_factory=list)   # every folder, relative ('/'-separated)


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _hidden(parts) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _folder_listing(root: Path) -> Listing:
    entries, ignored, folders = [], [], []
    for folder, dirs, names in os.walk(root):       # links to folders are not followed (loops, other disks)
        dirs.sort()
        folders += [(Path(folder) / d).relative_to(root).as_posix() for d in dirs]
        for name in sorted(names):
            p = Path(folder) / name
            rel = p.relative_to(root).as_posix()
            if len(entries) + len(ignored) >= MAX_FILES:
                raise Refused(f"{root} holds more than {MAX_FILES:,} files; the limit is {MAX_FILES:,}")
            try:
                st = os.lstat(p)
            except OSError:
                continue                                    # gone meanwhile
            if _hidden(rel.split("/")) or stat.S_ISLNK(st.st_mode) or not _is_image_name(name):
                ignored.append(rel)
                continue
            # a pipe or device named like a picture is listed, then skipped unopened: reading one would block
            entries.append(Entry(rel, st.st_size, lambda p=p: guards.read_regular(p, MAX_IMAGE_BYTES, follow=False)))
    return Listing(f"folder {root}", entries, ignored, folders)


def _zip_listing(zf: zipfile.ZipFile, label: str, compressed_bytes: int) -> Listing:
    """Every entry checked before any is read: names, links, counts and sizes."""
    infos = zf.infolist()
    if len(infos) > MAX_FILES:
        raise Refused(f"{label} holds {len(infos):,} entries; the limit is {MAX_FILES:,}")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise Refused(f"{label} would unpack to {total / 2**30:.1f} GiB; the limit is "
                      f"{MAX_UNZIPPED_BYTES // 2**30} GiB")
    if total > RATIO_FROM and total > MAX_RATIO * max(compressed_bytes, 1):
        raise Refused(f"{label} would unpack to {total / max(compressed_bytes, 1):,.0f} times its size "
                      f"(the limit is {MAX_RATIO}x): refused as a zip bomb")
    for i in infos:
        name = i.filename.replace("\\", "/")
        if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in name.split("/"):
            raise Refused(f"{label}: entry {i.filename!r} points outside the archive; nothing was read")
        if stat.S_ISLNK(i.external_attr >> 16):
            raise Refused(f"{label}: entry {i.filename!r} is a symbolic link; nothing was read")
        if i.flag_bits & 0x1:
            raise Refused(f"{label}: entry {i.filename!r} is encrypted; zip it again without a password")
    entries, ignored, folders = [], [], set()
    for i in infos:
        parts = [p for p in i.filename.replace("\\", "/").split("/") if p]
        folders.update("/".join(parts[:k]) for k in range(1, len(parts) if not i.is_dir() else len(parts) + 1))
        if i.is_dir():
            continue
        if _hidden(parts) or not _is_image_name(parts[-1]):
            ignored.append("/".join(parts))
            continue
        entries.append(Entry("/".join(parts), i.file_size, lambda i=i: zf.read(i)))
    return Listing(label, entries, ignored, sorted(folders))


def _strip_root(listing: Listing) -> Listing:
    """A zip of one folder (pets/cat/1.png, pets/dog/2.png) reads as that folder's content."""
    while listing.entries and all(e.path.count("/") >= 2 for e in listing.entries):
        first = {e.path.split("/", 1)[0] for e in listing.entries}
        if len(first) != 1 or next(iter(first)).lower() in SPLIT_FOLDERS:
            break
        root = next(iter(first)) + "/"
        for e in listing.entries:
            e.path = e.path[len(root):]
        listing.folders = [f[len(root):] for f in listing.folders if f.startswith(root)]
    return listing


def list_source(source, name: str | None = None) -> Listing:
    """The image files of a folder path, a zip path, or a zip's bytes (an upload named `name`)."""
    if isinstance(source, (bytes, bytearray)):
        label = f"zip {name or 'upload'}"
        try:
            zf = zipfile.ZipFile(io.BytesIO(source))
        except zipfile.BadZipFile as exc:
            raise Refused(f"{label} is not a readable zip file ({exc})") from None
        return _strip_root(_zip_listing(zf, label, len(source)))
    path = Path(source).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise Refused(f"{path} does not exist: name a folder of class folders, or a .zip of one") from None
    except (OSError, ValueError) as exc:
        raise Refused(f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(mode):
        return _folder_listing(path.resolve())
    if stat.S_ISREG(mode):                          # a pipe or device is never opened (it would block, or never end)
        f = guards.open_regular(path)
        if zipfile.is_zipfile(f):
            try:
                zf = zipfile.ZipFile(f)
            except zipfile.BadZipFile as exc:
                f.close()
                raise Refused(f"{path} is not a readable zip file ({exc})") from None
            return _strip_root(_zip_listing(zf, f"zip {path}", os.fstat(f.fileno()).st_size))
        f.close()
    raise Refused(f"{path} is neither a folder nor a zip file")


# ---- one image ----------------------------------------------------------------------------------------

def _to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Any PIL mode to "L" or "RGB": 16-bit scaled to 8, transparency laid on white, palette and CMYK
    converted."""
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        a = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
            a = a / 257
        elif img.mode == "F" and a.max(initial=0) <= 1:
            a = a * 255
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    if img.mode == "P" or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img.convert("RGBA"))
    return img.convert("L" if channels == 1 else "RGB")


def decode(raw: bytes, size: int, channels: int, fit: str = "crop") -> tuple[np.ndarray, tuple[int, int]]:
    """Image file bytes -> (channels, size, size) uint8 and the picture's own (width, height); ValueError
    for anything that is not a readable picture (sources.open_image's checks). The first frame of a
    GIF; EXIF orientation applied."""
    img = open_image(raw, MAX_IMAGE_BYTES, draft=("L" if channels == 1 else "RGB", (size, size)))
    found = img.size
    img = _to_mode(ImageOps.exif_transpose(img), channels)
    if fit == "pad":
        img = ImageOps.pad(img, (size, size), Image.Resampling.BILINEAR, color=0)
    else:
        img = ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    a = np.asarray(img, dtype=np.uint8)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)), found


# ---- a source read as a dataset ---------------------------------------------------------------------

@dataclass
class Options:
    size: int = 32
    channels: int = 3
    val: float = 0.1                # share held out for validation at training time (of all the images)
    test: float = 0.1               # share split off for test (class folders only; train/ and test/ keep theirs)
    fit: str = "crop"
    seed: int = 0

    def check(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not SIZES[0] <= self.size <= SIZES[1]:
            raise Refused(f"size must be a whole number of pixels from {SIZES[0]} to {SIZES[1]}, got {self.size!r}")
        if self.channels not in (1, 3):
            raise Refused(f"channels must be 1 (grey) or 3 (colour), got {self.channels!r}")
        for what in ("val", "test"):
            v = getattr(self, what)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 0.5:
                raise Refused(f"{what} must be a share above 0 and at most 0.5, got {v!r}")
        if self.fit not in FITS:
            raise Refused(f"fit must be one of: {', '.join(FITS)}; got {self.fit!r}")


@dataclass
class Report:
    """What a source holds and what would be done with it: shown before and after adding."""
    source: str
    layout: str
    classes: list[str]
    counts: dict[str, dict[str, int]]               # class -> {"train": n, "test": n}
    sizes: list[tuple[str, int]]                    # "WxH" found -> images, most common first
    skipped: list[tuple[str, str]]                  # (file, why): unreadable pictures
    ignored: int                                    # files that are not pictures
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        n_train = sum(c["train"] for c in self.counts.values())
        n_test = sum(c["test"] for c in self.counts.values())
        return (f"{len(self.classes)} classes, {n_train:,} training and {n_test:,} test images from {self.source} "
                f"({self.layout}); {len(self.skipped):,} unreadable skipped, {self.ignored:,} other files ignored")


@dataclass
class ImageSet:
    report: Report
    options: Options
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    train_files: list[str]
    test_files: list[str]


def _layout(listing: Listing) -> tuple[str, dict[str, list[tuple[str, Entry]]], list[str], set[str]]:
    """(layout words, {"all" | "train" | "test": [(class, entry)]}, files outside any class folder, the
    class folders, those without pictures included)."""
    tops = {e.path.split("/", 1)[0].lower() for e in listing.entries if "/" in e.path}
    split = set(SPLIT_FOLDERS) <= tops
    parts, loose, folder_classes = defaultdict(list), [], set()
    for e in listing.entries:
        bits = e.path.split("/")
        if split:
            if len(bits) >= 3 and bits[0].lower() in SPLIT_FOLDERS:
                parts[bits[0].lower()].append((bits[1], e))
            else:
                loose.append(e.path)
        elif len(bits) >= 2:
            parts["all"].append((bits[0], e))
        else:
            loose.append(e.path)
    words = "train/ and test/ folders, their split kept" if split else "class folders, split here"
    for f in listing.folders:          # class folders with no picture at all count as classes (then refused)
        bits = f.split("/")
        if _hidden(bits):
            continue
        if split and len(bits) == 2 and bits[0].lower() in SPLIT_FOLDERS:
            parts.setdefault(bits[0].lower(), [])
            folder_classes.add(bits[1])
        elif not split and len(bits) == 1:
            parts.setdefault("all", [])
            folder_classes.add(bits[0])
    return words, parts, loose, folder_classes


def read_source(source, options: Options | None = None, name: str | None = None,
                progress: Progress | None = None) -> ImageSet:
    """Read every picture of `source` (list_source) into uint8 tensors of the options' size and channels,
    split into train and test, with the report; Refused when it cannot make a dataset."""
    options = options or Options()
    options.check()
    progress = progress or (lambda done, total, message: None)
    listing = list_source(source, name)
    layout, parts, loose, folder_classes = _layout(listing)
    if not parts:
        raise Refused(f"found no class folders in {listing.label.split(' ', 1)[1]}: put each class's pictures "
                      "in a folder named after the class (cat/1.png, dog/2.png), or in train/<class>/ and "
                      "test/<class>/" + (f" ({len(loose)} pictures lie outside any class folder)" if loose else ""))
    classes = sorted({c for rows in parts.values() for c, _ in rows} | folder_classes)
    if len(classes) < 2:
        raise Refused(f"found one class only ({classes[0]}): a classifier needs at least two class folders")
    index = {c: i for i, c in enumerate(classes)}
    # Stored in the order of the file names (then class): files named by their index in a source (as a
    # dataset exported to folders usually is) keep that source's order, so a run on them draws the very same
    # batches as on the source itself (tests/test_real_data.py: the real CIFAR-2 as PNG files).
    todo = [(part, c, e) for part in sorted(parts)
            for c, e in sorted(parts[part], key=lambda r: (r[1].path.rsplit("/", 1)[-1], r[0], r[1].path))]
    too_big = guards.decoded_problem(len(todo), options.channels, options.size, options.size,
                                     "choose a smaller size or fewer pictures")
    if too_big:                                     # before anything is decoded: 1x1 pictures at 512 each take 768 KB
        raise Refused(too_big)
    x = torch.empty(len(todo), options.channels, options.size, options.size, dtype=torch.uint8)   # (N, C, S, S)
    filled = x.numpy()                              # the same memory, written picture by picture
    n, labels, where, digests, skipped, sizes = 0, [], [], [], [], Counter()
    t0 = time.monotonic()
    for done, (part, c, e) in enumerate(todo):
        if done % 256 == 0:
            progress(done, len(todo), f"reading {done:,} of {len(todo):,} pictures")
        try:
            raw = e.read()
            picture, found = decode(raw, options.size, options.channels, options.fit)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            skipped.append((e.path, str(exc)))
            continue
        filled[n] = picture
        n += 1
        labels.append(index[c])
        where.append((part, e.path))
        digests.append(hashlib.blake2b(raw, digest_size=16).digest())
        sizes[f"{found[0]}x{found[1]}"] += 1
    progress(len(todo), len(todo), f"read {count(n, 'picture')} in {time.monotonic() - t0:.1f} s")
    x = x[:n]                                       # the skipped pictures' rows were never filled
    y = torch.tensor(labels, dtype=torch.int64)
    in_part = torch.tensor([p == "test" for p, _ in where], dtype=torch.bool)
    found_in = Counter(int(v) for v in y)
    empty = [c for c in classes if not found_in[index[c]]]
    if empty:
        raise Refused(f"class folder {empty[0]!r} holds no readable picture"
                      + (f" (and {len(empty) - 1} more: {', '.join(empty[1:SHOWN])})" if len(empty) > 1 else "")
                      + ": remove it or put pictures in it")
    if "all" in parts:
        train_idx, test_idx = _split(y, options.test, options.seed)
    else:
        train_idx, test_idx = torch.nonzero(~in_part).flatten(), torch.nonzero(in_part).flatten()
        missing = [c for c in classes if not (y[train_idx] == index[c]).any()]
        if missing:
            raise Refused(f"class {missing[0]!r} has pictures in test/ but none in train/: a model cannot "
                          "learn a class it never sees")
    names = [p for _, p in where]
    counts = {c: {"train": int((y[train_idx] == i).sum()), "test": int((y[test_idx] == i).sum())}
              for i, c in enumerate(classes)}
    report = Report(listing.label, layout, classes, counts, sizes.most_common(), skipped,
                    len(listing.ignored) + len(loose))
    report.warnings = _warnings(report, digests, names, train_idx.tolist(), test_idx.tolist())
    return ImageSet(report, options, x[train_idx], y[train_idx], x[test_idx], y[test_idx],
                    [names[i] for i in train_idx.tolist()], [names[i] for i in test_idx.tolist()])


def _n(k: int, one: str, many: str) -> str:
    return f"{k:,} {one if k == 1 else many}"


def _split(y: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices: per class a seeded draw of round(fraction * n) pictures for test, at least one
    of a class of two or more (so every class is tested), each part in the folders' order."""
    g = torch.Generator().manual_seed(seed)
    test = []
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        k = min(max(round(fraction * len(idx)), 1 if len(idx) >= 2 else 0), len(idx) - 1)
        test.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    is_test = torch.zeros(len(y), dtype=torch.bool)
    is_test[torch.cat(test)] = True
    return torch.nonzero(~is_test).flatten(), torch.nonzero(is_test).flatten()


def _examples(items: list[str]) -> str:
    return ", ".join(items[:SHOWN]) + (f" and {len(items) - SHOWN:,} more" if len(items) > SHOWN else "")


def _warnings(report: Report, digests: list[bytes], names: list[str], train: list[int], test: list[int]) -> list[str]:
    out = []
    totals = {c: n["train"] + n["test"] for c, n in report.counts.items()}
    few = [f"{c} ({n})" for c, n in totals.items() if n < FEW_IMAGES]
    if few:
        out.append(f"fewer than {FEW_IMAGES} pictures in {_examples(few)}: accuracy on such a class means little")
    if max(totals.values()) > IMBALANCE * min(totals.values()):
        big, small = max(totals, key=totals.get), min(totals, key=totals.get)
        out.append(f"classes are imbalanced over {IMBALANCE}:1 ({big} {totals[big]:,}, {small} {totals[small]:,}): "
                   "a model can score well by mostly answering the big class")
    untested = [c for c, n in report.counts.items() if n["test"] == 0]
    if untested:
        out.append(f"no test pictures for {_examples(untested)}: the test accuracy says nothing about them")
    first: dict[bytes, int] = {}
    copies = []
    for i, d in enumerate(digests):
        if d in first:
            copies.append(f"{names[i]} = {names[first[d]]}")
        else:
            first[d] = i
    if copies:
        out.append(f"{_n(len(copies), 'picture is an exact copy', 'pictures are exact copies')} of another: "
                   f"{_examples(copies)}")
    in_train = {digests[i]: names[i] for i in train}
    both = [f"{names[i]} = {in_train[digests[i]]}" for i in test if digests[i] in in_train]
    if both:
        out.append(f"{_n(len(both), 'test picture is', 'test pictures are')} also in train, so test accuracy "
                   f"reads high: {_examples(both)}")
    if report.skipped:
        out.append(f"{_n(len(report.skipped), 'picture', 'pictures')} could not be read and "
                   f"{'was' if len(report.skipped) == 1 else 'were'} skipped: "
                   + _examples([f"{p} ({why})" for p, why in report.skipped]))
    return out


# ---- adding, renaming, deleting ----------------------------------------------------------------------

def check_name(name: str, data_dir: Path, replacing: str | None = None) -> None:
    """Refused unless `name` can name a new dataset: its characters, a built-in's name, an added one's."""
    if not isinstance(name, str) or not catalog.OWN_NAME.fullmatch(name):
        raise Refused(f"{name!r} cannot name a dataset: use 1 to 40 lowercase letters, digits, '-' and '_', "
                      "starting with a letter or a digit (no '/', '..' or spaces)")
    if name in catalog.DATASETS:
        raise Refused(f"{name!r} is a built-in dataset; choose another name")
    if name != replacing and catalog._cache_paths(name, data_dir)[1].exists():   # a lone .pt is a killed add's
        raise Refused(f"a dataset named {name!r} exists already in {data_dir}; choose another name, or delete "
                      f"it first: python -m cnn_core data delete {name}")


def _dir(data_dir) -> Path:
    return Path(data_dir).resolve() if data_dir else catalog.default_data_dir()


def add(name: str, source, options: Options | None = None, data_dir: str | Path | None = None,
        upload_name: str | None = None, progress: Progress | None = None,
        read: ImageSet | None = None, by=None) -> catalog.DatasetInfo:
    """Read `source` (or take `read`, a read_source result already previewed) and cache it as dataset
    `name`; its DatasetInfo. Refused (nothing written) for a bad name or source. by: the Person adding it in
    class mode (core/people.py), kept as its owner; runs/owners.add_dataset checks their disk share first."""
    data_dir = _dir(data_dir)
    check_name(name, data_dir)
    found = read or read_source(source, options, upload_name, progress)
    o, r = found.options, found.report
    n_all = len(found.train_y) + len(found.test_y)
    share = n_all if "split here" in r.layout else len(found.train_y)
    val_size = min(max(1, round(o.val * share)), len(found.train_y) - 1)
    if val_size < 1:
        raise Refused(f"{len(found.train_y)} training picture(s) leave none to validate on: add pictures")
    mean, std = recipe.channel_stats(found.train_x)
    origin = str(Path(source).expanduser().resolve()) if isinstance(source, (str, Path)) else (upload_name or "upload")
    own = {"title": name, "classes": r.classes, "fit": o.fit, "val_size": val_size, "val": o.val,
           "test": o.test, "seed": o.seed, "layout": r.layout, "origin": origin, "counts": r.counts,
           "sizes": r.sizes[:20], "skipped": r.skipped[:200], "n_skipped": len(r.skipped), "ignored": r.ignored,
           "warnings": r.warnings, "mean": mean, "std": std, "owner": by.email if by is not None else None}
    raw = RawDataset(name, found.train_x, found.train_y, found.test_x, found.test_y, source=r.source, origin=origin)
    _check_disk(name, raw, data_dir)
    (data_dir / "cache").mkdir(parents=True, exist_ok=True)
    files.remove_stale_temps(data_dir / "cache")
    if progress:
        progress(1, 1, f"{name}: writing the cache")
    catalog._write_cache(raw, data_dir, origin, own=own)
    return catalog.get_info(name, data_dir)


def _check_disk(name: str, raw: RawDataset, data_dir: Path) -> None:
    """Refused when caching `raw` would bring the added datasets' caches past the DATA_DISK budget."""
    new = size_of(raw)
    used = sum(p.stat().st_size for info in added(data_dir) for p in catalog._cache_paths(info.id, data_dir)
               if p.is_file())
    if why := guards.disk_problem(f"Adding {name!r}", new, used, "the added datasets", guards.DATA_DISK,
                                  "delete a dataset or raise the limit"):
        raise Refused(why)


def added(data_dir: str | Path | None = None) -> list[catalog.DatasetInfo]:
    """The datasets added from a person's images, by name."""
    return [i for i in catalog.datasets(data_dir).values() if i.own is not None]


def report_of(info: catalog.DatasetInfo) -> Report:
    """The report an added dataset was stored with (its manifest's own entry), to show after adding."""
    own = info.own
    return Report(own["origin"], own["layout"], list(info.classes), own["counts"], [tuple(s) for s in own["sizes"]],
                  [tuple(s) for s in own["skipped"]], own["ignored"], own["warnings"])


def _own(name: str, data_dir: Path, by=None) -> catalog.DatasetInfo:
    info = catalog.get_info(name, data_dir)
    if info.own is None:
        raise Refused(f"{name!r} is a built-in dataset: only datasets added from your images can be renamed "
                      "or deleted")
    people.check_change(f"dataset {name!r}", info.owner, by)
    return info


def size_of(found: ImageSet) -> int:
    """Bytes the cache of `found` will take."""
    return sum(t.nbytes for t in (found.train_x, found.train_y, found.test_x, found.test_y))


def files_of(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The files an added dataset's cache is (the tensors, the sidecar)."""
    return list(catalog._cache_paths(name, _dir(data_dir)))


def rename(name: str, new: str, data_dir: str | Path | None = None, by=None) -> None:
    """Give an added dataset another name. Safe against a kill at any point: the new cache is linked and its
    sidecar written before the old one goes, so there is always one whole copy. Runs keep the name they
    were trained with."""
    data_dir = _dir(data_dir)
    info = _own(name, data_dir, by)
    check_name(new, data_dir)
    (old_pt, old_js), (new_pt, new_js) = catalog._cache_paths(name, data_dir), catalog._cache_paths(new, data_dir)
    meta = catalog._read_meta(name, data_dir)
    if meta is None:
        raise Refused(f"the cache of {name!r} is damaged; delete it and add the pictures again")
    os.link(old_pt, new_pt)
    files.write_json_atomic(new_js, {**meta, "id": new, "own": {**info.own, "title": new}})
    old_js.unlink()
    old_pt.unlink()


def delete(name: str, data_dir: str | Path | None = None, by=None) -> None:
    """Remove an added dataset's cache (sidecar first: it stops looking ready at once)."""
    data_dir = _dir(data_dir)
    _own(name, data_dir, by)
    pt, js = catalog._cache_paths(name, data_dir)
    js.unlink(missing_ok=True)
    pt.unlink(missing_ok=True)


def samples(images: torch.Tensor, labels: torch.Tensor, n_classes: int, per_class: int = 8) -> torch.Tensor:
    """Up to `per_class` images of each class, class by class: (n_classes, per_class, C, H, W) uint8, a class
    with fewer padded with zeros (black)."""
    out = torch.zeros(n_classes, per_class, *images.shape[1:], dtype=torch.uint8)
    for c in range(n_classes):
        some = images[labels == c][:per_class]
        out[c, :len(some)] = some
    return out
