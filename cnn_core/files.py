"""Files that are whole or absent: every write goes to a hidden temp file beside its target, is fsynced,
then renamed over it, so a reader (or a process killed mid-write) sees the old file or the new one,
never half. Used by the run store, checkpoints, the dataset cache and exports."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from . import faults


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


def write_json_atomic(path: Path, data: dict) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace: readers see old or new, never half."""
    tmp = temp_path(path)
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, default=json_default)
        f.flush()
        faults.reached("run-json-write")
        os.fsync(f.fileno())
    os.replace(tmp, path)


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

