"""What the server takes from a person, bounded: paths typed in a browser confined to the import folders, only
regular files opened (a pipe or device named like a picture is never waited on nor read), and the byte budgets
read from the environment (docs/SECURITY.md lists them). The command line, run by the machine's own user,
reads any path it is given; it still opens only regular files."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import BinaryIO

ROOTS_ENV = "CNN_IMPORT_ROOTS"      # os.pathsep-separated folders the browser may read (default <data>/import)
IMPORT_FOLDER = "import"            # the default root, inside the data folder
NOT_REGULAR = "not a regular file (a pipe, device or socket): not opened"

# Budgets: environment variable -> default bytes. A value is bytes (2000000000) or a size (2GB, 500MB, 1.5GiB).
DATASET_BYTES = "CNN_MAX_DATASET_BYTES"  # pictures decoded in memory at once: one dataset being added or
                                         # previewed, one classify-many batch (adding peaks near twice this:
                                         # the pictures, then their train and test copies)
DATA_DISK = "CNN_MAX_DATA_DISK"          # the added datasets' caches in the data folder, together
RUNS_DISK = "CNN_MAX_RUNS_DISK"          # the runs folder, checked when a run is imported
BUDGETS = {DATASET_BYTES: 2 * 10**9, DATA_DISK: 20 * 10**9, RUNS_DISK: 20 * 10**9}
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


class OutsideRoots(ValueError):
    """A path typed in the browser that is not read; one message whatever the reason."""


# ---- paths from a browser -------------------------------------------------------------------------------

def _named() -> list[str]:
    return [p.strip() for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip()]


def roots_named() -> bool:
    """Whether CNN_IMPORT_ROOTS names folders (the folder boxes work beyond loopback only then)."""
    return bool(_named())


def import_roots() -> list[Path]:
    """The folders the browser may read under: $CNN_IMPORT_ROOTS, else <data dir>/import (made when asked for)."""
    if _named():
        return [Path(p).expanduser().resolve() for p in _named()]
    from cnn_core.data.catalog import default_data_dir

    root = default_data_dir() / IMPORT_FOLDER
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass                        # a read-only data folder: nothing is there to read, the message says where
    return [root]


def refusal(roots: list[Path], what: str = "the pictures") -> str:
    """The one message for every path the browser may not read."""
    where = (f"the import folder {roots[0]}" if len(roots) == 1
             else "the import folders " + ", ".join(str(r) for r in roots))
    return f"Only folders and files under {where} can be read from the browser; put {what} there (or set {ROOTS_ENV})"


def confine(path: str | Path, what: str = "the pictures") -> Path:
    """`path`, typed in a browser, resolved (a relative one is taken in the first root) when it lies under an
    import root after links are followed and is a folder or a regular file this process may read; else
    OutsideRoots with refusal()'s one message, whatever the reason (outside, missing, unreadable, a link out,
    a pipe or device), so the answer tells nothing about the disk."""
    roots = import_roots()
    try:
        typed = Path(path).expanduser()
        real = (typed if typed.is_absolute() else roots[0] / typed).resolve()
        if any(real.is_relative_to(r) for r in roots):
            mode = os.stat(real).st_mode
            if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and os.access(real, os.R_OK):
                return real
    except (OSError, ValueError, RuntimeError):  # a NUL in the name, a loop of links, no home for '~'
        pass
    raise OutsideRoots(refusal(roots, what))


# ---- regular files only ---------------------------------------------------------------------------------

def open_regular(path: str | Path, follow: bool = True) -> BinaryIO:
    """`path` open for reading when it is a regular file; ValueError(NOT_REGULAR) for a pipe, device or socket,
    which is never opened (stat first). The open cannot block should one be swapped in meanwhile (O_NONBLOCK,
    then fstat). follow=False: a link is not followed either (skipped by the caller, refused here)."""
    mode = (os.stat(path) if follow else os.lstat(path)).st_mode
    if not stat.S_ISREG(mode):
        raise ValueError(NOT_REGULAR)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(NOT_REGULAR)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, max_bytes: int, follow: bool = True) -> bytes:
    """A regular file's bytes (open_regular), ValueError unread when it is over `max_bytes`."""
    with open_regular(path, follow) as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(max_bytes + 1) if size <= max_bytes else b""
        if size > max_bytes or len(raw) > max_bytes:
            raise ValueError(f"the file is {max(size, len(raw)) / 2**20:.1f} MB; the limit is "
                             f"{max_bytes // 2**20} MB")
    return raw


def folder_bytes(folder: str | Path) -> int:
    """Bytes of the regular files under `folder`, links not followed; 0 for a missing folder."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                st = os.lstat(os.path.join(parent, name))
            except OSError:
                continue             # gone meanwhile
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


# ---- budgets --------------------------------------------------------------------------------------------

def budget(name: str) -> int:
    """The byte budget `name` (a key of BUDGETS): its environment variable, else its default."""
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return BUDGETS[name]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"{name}={text!r} is not a size: give bytes (2000000000) or a size with a unit "
                         "(2GB, 500MB, 1.5GiB)")
    unit = m[2].upper()
    scale = 1024 ** list(_UNITS).index(unit) if m[3] and unit else _UNITS[unit]
    return int(float(m[1]) * scale)


def fmt_bytes(n: float) -> str:
    """Bytes for a person, in powers of 1000: 950 bytes, 15.5 kB, 236 MB, 4.8 GB, 412 GB, 2 GB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:,.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{n:,.0f} bytes"


def decoded_problem(n: int, channels: int, height: int, width: int, advice: str) -> str | None:
    """Why `n` pictures of (channels, height, width) uint8 may not be decoded (over DATASET_BYTES), or None;
    asked before anything is decoded or allocated."""
    need, limit = n * channels * height * width, budget(DATASET_BYTES)
    if need <= limit:
        return None
    return (f"{n:,} pictures at {width}x{height} {'grey' if channels == 1 else 'colour'} would take "
            f"{fmt_bytes(need)} in memory; the limit is {fmt_bytes(limit)} ({DATASET_BYTES}): {advice}")


def disk_problem(what: str, new: int, used: int, where: str, name: str, advice: str) -> str | None:
    """Why writing `new` bytes where `used` are taken already would pass the disk budget `name`, or None."""
    limit = budget(name)
    if used + new <= limit:
        return None
    return (f"{what} ({fmt_bytes(new)}) would bring {where} to {fmt_bytes(used + new)}; the limit is "
            f"{fmt_bytes(limit)} ({name}): {advice}")
