"""Files that are whole or absent: every write goes to a hidden temp file beside its target, is fsynced,
then renamed over it and its folder fsynced (atomic_write), so a reader (or a process killed mid-write)
sees the old file or the new one, never half, and a failed write leaves no temp file. Used by the run
store, checkpoints, the metrics log, the dataset cache and exports."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import threading
from pathlib import Path
from typing import IO, Iterator

from cnn_core.core import faults


def temp_path(path: Path) -> Path:
    """Where a file is written before os.replace puts it at `path`: hidden, beside it, named by the
    writing process and thread (two sessions of one server never share one; remove_stale_temps knows a
    dead writer's by its pid). Every atomic writer of the project writes through one of these."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_native_id()}.tmp")


def remove_stale_temps(*folders: Path) -> None:
    """Delete the temp files that writers killed mid-write left in `folders` (a live writer's are kept)."""
    for tmp in [t for folder in folders for t in Path(folder).glob(".*.tmp")]:
        pid = tmp.name.rsplit(".", 2)[-2].split("-")[0]
        if not (pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid))):
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_write(path: Path, mode: str | None = "wb") -> Iterator[IO | Path]:
    """Write `path` whole or not at all: yields its temp file (temp_path) open in `mode` (text: UTF-8),
    or, with mode=None, the temp file's path, for writers that take a path (torch.onnx.export). When the
    block ends the file is flushed and fsynced, renamed over `path`, and the folder fsynced (the rename is
    on disk only then). On any exception the temp file is removed and `path` is left as it was."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        if mode is None:
            yield tmp
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        else:
            with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """fsync a folder, so that a file renamed or created in it keeps its name after a power cut."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:      # a file system that cannot fsync a folder (some network ones): nothing to do
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: dict) -> None:
    """JSON through atomic_write: readers see the old file or the new one, never half; an error (a value
    JSON cannot hold) leaves the old file and no temp file."""
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=1, default=json_default)
        f.flush()
        faults.reached("run-json-write")


def json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")





def pid_alive(pid: int) -> bool:
    """True while process `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:   # /proc is there and the process is not: it was reaped just now
        return not Path("/proc/self/stat").exists()
    except (OSError, IndexError):
        return True

