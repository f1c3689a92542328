"""The run store: one folder per run under the runs folder, plain files, atomic writes.

runs/<run_id>/run.json       config, status, progress, heartbeat, final metrics (replaced atomically)
runs/<run_id>/metrics.jsonl  one JSON object per logged step / epoch (append-only, flushed; metrics_log.py)
runs/<run_id>/checkpoint.pt  latest training state, for resume
runs/<run_id>/best.pt        best-validation weights + what is needed to rebuild and predict
runs/<run_id>/snapshots/     small per-epoch weights, for scrubbing through time on Inspect
runs/<run_id>/exports/       the model as ONNX, .pt2, TorchScript (export/formats.py)
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core import files
from cnn_core.core.settings import is_number, specs

RUNS_DIR_ENV = "CNN_RUNS_DIR"
RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
CANCEL = "cancel.request"
STEER = "steer.json"              # a request to the training process: {"lr": new rate} or {"pause": true|false}
LOG = "train.log"
SNAPSHOTS = "snapshots"
EXPORT_DIR = "exports"          # model exports (export/formats.py); never zipped with the run
RESERVE = ".reserve"            # space set aside by a training process, freed to record a full disk
FORMAT = "cnn-dashboard-run/1"
ACTIVE = ("queued", "running", "paused")       # paused: its process holds its slot and waits (steer)
FINISHED = ("completed", "failed", "cancelled", "interrupted")
HEARTBEAT_STALE_S = 60.0          # a run silent this long, on another host, reads as interrupted
MAX_NAME = 120
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def default_runs_dir() -> Path:
    """$CNN_RUNS_DIR, else ./runs."""
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs")


def validate_run_id(run_id: str) -> str:
    """A run id is 1-100 of letters, digits, '.', '_', '-', starting with a letter or digit, no '..'."""
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id) or ".." in run_id:
        shown = repr(run_id)[:60]
        raise ValueError(f"invalid run id {shown}: use 1-100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit, and no '..'")
    return run_id


def run_dir(run_id: str, runs_dir: Path | None = None) -> Path:
    """The folder of `run_id`, guaranteed to lie directly inside the runs folder."""
    root = Path(runs_dir or default_runs_dir()).resolve()
    path = (root / validate_run_id(run_id)).resolve()
    if path.parent != root:
        raise ValueError(f"run id {run_id!r} points outside the runs folder {root}")
    return path


def resolve_run(ref: str | Path, runs_dir: Path | None = None) -> Path:
    """A run given by id, or by the path of its folder; must hold run.json.
    Text (what a person typed, a URL parameter) names a run inside the runs folder: an id, or a folder
    path that resolves directly inside it. A Path is the program's own (the bundled model, a run handed to
    its training process) and may lie anywhere."""
    if isinstance(ref, Path):
        path = ref.resolve()
    elif isinstance(ref, str) and ("/" in ref or os.sep in ref) and "\x00" not in ref:
        root = Path(runs_dir or default_runs_dir()).resolve()
        path = Path(ref).resolve()
        if path.parent != root:
            raise ValueError(f"no run {ref[:100]!r} in the runs folder: it lies outside {root}; name a run by "
                             "its id (`python -m cnn_core runs list` shows them)")
    else:
        path = run_dir(ref, runs_dir)
    if not (path / RUN_JSON).is_file():
        raise ValueError(f"no run at {path} (no {RUN_JSON}); `python -m cnn_core runs list` shows the runs")
    return path


def new_run_id(config: TrainConfig) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{config.dataset}-{config.arch}-{secrets.token_hex(2)}"


def _printable(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable()).strip()


def tidy_name(name: str) -> str:
    """A name from elsewhere (an imported run) as a rename would keep it: printable, one line, cut to
    MAX_NAME characters; '' when nothing printable is left (the run then shows its id)."""
    return _printable(name if isinstance(name, str) else "")[:MAX_NAME].strip()


def clean_name(name: str) -> str:
    """A display name: printable, one line, at most 120 characters."""
    if not isinstance(name, str):
        raise ValueError(f"a run name must be text, got {type(name).__name__}")
    cleaned = _printable(name)
    if not cleaned:
        raise ValueError("a run name cannot be empty")
    if len(cleaned) > MAX_NAME:
        raise ValueError(f"a run name has at most {MAX_NAME} characters, got {len(cleaned)}")
    return cleaned


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock on the run folder's lock file, for read-modify-write of run.json."""
    with open(path / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# ---- the record ---------------------------------------------------------------------------------
@dataclass
class Run:
    """One run.json, typed: the fields the product writes. Keys it does not know (a newer version's) are
    kept in `extra` and written back, so an update by this version loses nothing. `folder` is where it
    was read from (not stored)."""
    id: str
    status: str
    config: dict
    format: str = FORMAT
    name: str = ""
    note: str = ""
    created: str = ""
    host: str = ""
    dataset: str = ""
    arch: str = ""
    arch_params: dict = field(default_factory=dict)
    classes: list = field(default_factory=list)
    input_shape: list = field(default_factory=list)
    n_params: int | None = None
    error: str | None = None
    pid: int | None = None
    heartbeat: float | None = None
    progress: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    started: float | None = None      # when a process last began training it (time.time())
    queued_at: float | None = None    # when it joined the queue for a training slot
    device: str | None = None         # what it trains on ("cpu", "cuda:0") and with how many threads
    threads: int | None = None
    precision: dict = field(default_factory=dict)  # amp, dtype, why: what it trains in (devices.precision)
    versions: dict = field(default_factory=dict)
    imported: dict = field(default_factory=dict)   # from_id, from_host, at: where an imported run came from
    sweep: str | None = None          # the sweep it is a trial of (sweeps.py), and its trial number
    trial: int | None = None
    world_size: int = 1               # processes that trained it together (torchrun), their backend and hosts
    backend: str | None = None
    hosts: list = field(default_factory=list)
    owner: str | None = None          # who made it, in class mode (core/people.py); None: the administrator
    extra: dict = field(default_factory=dict, repr=False)
    folder: Path | None = field(default=None, repr=False, compare=False)

    corrupt = False

    @classmethod
    def from_dict(cls, data: dict, folder: Path | None = None) -> "Run":
        known = {f.name for f in fields(cls)} - {"extra", "folder"}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        config = values.get("config") or {}
        for key in ("dataset", "arch", "arch_params"):   # runs of early versions kept these in config only
            if key not in values and isinstance(config.get(key), (str, dict)):
                values[key] = config[key]
        return cls(**values, extra={k: v for k, v in data.items() if k not in known}, folder=folder)

    def to_dict(self) -> dict:
        """What run.json holds: every field but `folder`, and the unknown keys as they came."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "folder")}
        return {**out, **self.extra}

    @property
    def path(self) -> Path:
        return Path(self.folder) if self.folder is not None else default_runs_dir() / self.id

    @property
    def title(self) -> str:
        """What a person calls it: its name, else its id."""
        return self.name or self.id

    @cached_property
    def effective_status(self) -> str:
        """The status a reader should show (see effective_status); read once per record."""
        return effective_status(self)

    @property
    def test_acc(self) -> float | None:
        value = self.summary.get("test_acc")
        return float(value) if is_number(value) else None


@dataclass
class UnreadableRun:
    """A run folder whose run.json cannot be read (torn, hand-edited, foreign): listed so a person sees it
    and can delete it, never opened. `error` says why."""
    id: str
    folder: Path
    error: str
    created: str = ""          # the file's modification time: where it sorts in a list
    corrupt = True
    status = "corrupt"

    @property
    def path(self) -> Path:
        return self.folder

    @property
    def title(self) -> str:
        return self.id

    @property
    def effective_status(self) -> str:
        return "corrupt"


# ---- create / read / update ---------------------------------------------------------------------
def create_run(config: TrainConfig, name: str | None = None, runs_dir: Path | None = None, by=None) -> Path:
    """Validate `config` and `name`, make runs/<id>/ with run.json (status queued); return the folder.
    Raises ConfigError naming every bad field (and a bad name) before anything is written. by: the Person
    making it in class mode (core/people.py), its owner; their limits are checked first (people.OverLimit)."""
    errors = {}
    if name is not None:
        try:
            name = clean_name(name)
        except ValueError as exc:
            errors["name"] = str(exc)
    try:
        config.check()
    except ConfigError as exc:
        errors = {**exc.errors, **errors}
    if errors:
        raise ConfigError(errors)
    # torch (2.7 s): only when a run is made; `import cnn_core.runs` stays light
    from cnn_core.data import catalog
    from cnn_core.nets import architectures

    from cnn_core.runs import owners

    info = catalog.get_info(config.dataset)
    arch = architectures.get_architecture(config.arch)
    name = name or f"{config.dataset} · {arch.title}"
    root = Path(runs_dir or default_runs_dir())
    n_params = architectures.count_params(config.arch, info.input_shape, len(info.classes), config.arch_params)
    owners.check_room(by, root, epochs=config.epochs, n_params=n_params)
    root.mkdir(parents=True, exist_ok=True)
    run_id = new_run_id(config)
    path = run_dir(run_id, root)
    path.mkdir()
    record = Run(id=run_id, status="queued", config=config.to_dict(), name=name, created=_now(),
                 host=socket.gethostname(), dataset=config.dataset, arch=config.arch,
                 arch_params=architectures.resolve_params(config.arch, config.arch_params),
                 classes=list(info.classes), input_shape=list(info.input_shape), n_params=n_params,
                 owner=by.email if by is not None else None)
    files.write_json_atomic(path / RUN_JSON, record.to_dict())
    return path


def read_run(path: Path) -> Run:
    """run.json as a Run; ValueError naming the file when it is missing, not JSON or not a run record."""
    file = Path(path) / RUN_JSON
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ValueError(f"{file} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc}); the run cannot be read") from None
    if not isinstance(data, dict) or "config" not in data or "status" not in data:
        raise ValueError(f"{file} is not a run record (no config/status)")
    wrong = [k for k, kind in _RECORD_TYPES.items() if k in data and not isinstance(data[k], kind)
             and (data[k] is not None or k in ("config", "status"))]
    if wrong:   # readers index these; a hand-edited or foreign file is refused here, not deep in a page
        raise ValueError(f"{file} is not a run record ({', '.join(wrong)} of the wrong type)")
    if not isinstance(data.get("id"), str):
        data["id"] = Path(path).name
    return Run.from_dict(data, Path(path))


_RECORD_TYPES = {"config": dict, "status": str, "name": str, "note": str, "created": str, "host": str, "error": str,
                 "dataset": str, "arch": str, "arch_params": dict, "classes": list, "input_shape": list,
                 "summary": dict, "progress": dict, "pid": int, "heartbeat": (int, float), "n_params": int,
                 "started": (int, float), "queued_at": (int, float), "device": str, "threads": int,
                 "precision": dict, "versions": dict, "imported": dict, "owner": str}


def update_run(path: Path, **changes) -> Run:
    """Read-modify-write run.json under the run's lock; nested dicts given are replaced whole. A key
    that is no field of Run is kept among its `extra` keys."""
    path = Path(path)
    with _locked(path):
        data = {**read_run(path).to_dict(), **changes}
        files.write_json_atomic(path / RUN_JSON, data)
    return Run.from_dict(data, path)


def check_change(path: Path, by) -> Run:
    """The run's record, when `by` (a Person in class mode, None for the administrator) may change it;
    people.NotYours naming its owner otherwise."""
    from cnn_core.core import people

    record = read_run(path)
    people.check_change(f"run {record.title!r}", record.owner, by)
    return record


def rename_run(path: Path, name: str, by=None) -> Run:
    check_change(path, by)
    return update_run(path, name=clean_name(name))


def set_note(path: Path, note: str, by=None) -> Run:
    if not isinstance(note, str) or len(note) > 5000:
        raise ValueError("a note is text of at most 5,000 characters")
    check_change(path, by)
    return update_run(path, note=note)


def delete_run(path: Path, runs_dir: Path | None = None, by=None) -> None:
    """Remove one run folder, only if it is a run inside the runs folder (and `by` may change it)."""
    path = Path(path).resolve()
    root = Path(runs_dir or default_runs_dir()).resolve()
    if path.parent != root or not (path / RUN_JSON).is_file():
        raise ValueError(f"{path} is not a run folder inside {root}; nothing deleted")
    if by is not None:
        from cnn_core.core import people

        try:
            check_change(path, by)
        except people.NotYours:
            raise
        except ValueError:      # unreadable: only a teacher (or the CLI) removes it
            people.check_change(f"run folder {path.name}", "", by)
    for attempt in range(3):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:   # a file removed meanwhile (by a process letting go): what is left goes
            if not path.exists():
                return
            if attempt == 2:
                raise


# ---- liveness -----------------------------------------------------------------------------------
def snapshot_file(path: Path, epoch: int) -> Path:
    """snapshots/epoch-NNN.pt of run folder `path` (epoch 0 = before training)."""
    return Path(path) / SNAPSHOTS / f"epoch-{epoch:03d}.pt"


def effective_status(record: Run) -> str:
    """The status a reader should show: a queued/running run whose process is gone, or that was
    created and never launched, is `interrupted`. (Run.effective_status: the same, read once.)"""
    status = record.status
    if status not in ACTIVE:
        return status
    pid = record.pid
    same_host = record.host == socket.gethostname()
    if pid and same_host:
        return status if files.pid_alive(int(pid)) else "interrupted"
    beat = record.heartbeat
    if beat is None:   # created, never launched: fine for a moment, then no process will come
        if pid:
            return "interrupted"
        try:
            age = time.time() - datetime.fromisoformat(record.created).timestamp()
        except (TypeError, ValueError):
            return status
        return status if age < HEARTBEAT_STALE_S else "interrupted"
    return status if time.time() - float(beat) < HEARTBEAT_STALE_S else "interrupted"


CHANCE_MARGIN = 0.05   # a test accuracy less than 5 points above chance: the model learned (almost) nothing


def chance_acc(record: Run) -> float | None:
    """What guessing scores on the run's test set: the share of its most common class (recorded by the
    engine), else 1 / classes; None when the run does not say how many classes it has."""
    recorded = record.summary.get("chance_acc")
    if is_number(recorded):
        return float(recorded)
    return 1 / len(record.classes) if record.classes else None


def chance_note(record: Run) -> str | None:
    """A warning when a completed run's test accuracy is at chance level, else None."""
    acc, chance = record.test_acc, chance_acc(record)
    if record.status != "completed" or acc is None or chance is None:
        return None
    if acc >= chance + CHANCE_MARGIN:
        return None
    return f"test accuracy {acc:.2%} is chance level (guessing scores {chance:.2%}): {CHANCE_ADVICE}"


CHANCE_ADVICE = ("the model learned nothing useful. Look at the loss curve: a learning rate too high can blow the "
                 "weights up in the first steps and leave a dead network; too low, and nothing moves. Try a "
                 "learning rate 10x smaller or larger, or more epochs.")


def list_runs(runs_dir: Path | None = None) -> list[Run | UnreadableRun]:
    """Every run, newest first. A folder whose run.json cannot be read is an UnreadableRun with the reason."""
    root = Path(runs_dir or default_runs_dir())
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        if not path.is_dir() or not _RUN_ID_RE.match(path.name) or not (path / RUN_JSON).exists():
            continue
        try:
            record = read_run(path)
        except ValueError as exc:
            try:
                mtime = (path / RUN_JSON).stat().st_mtime
            except FileNotFoundError:   # deleted while this listing read it: not a run any more
                continue
            record = UnreadableRun(path.name, path, str(exc),
                                   datetime.fromtimestamp(mtime, timezone.utc).isoformat(timespec="seconds"))
        out.append(record)
    out.sort(key=lambda r: (r.created, r.id), reverse=True)
    return out


def readable(records: list[Run | UnreadableRun]) -> list[Run]:
    """The runs of a listing that can be opened."""
    return [r for r in records if not r.corrupt]


def steer(path: Path, by=None, **request) -> dict:
    """Ask the run's training process to change course at its next step: lr=RATE (the base learning rate
    the schedule scales), pause=True|False. Requests add up until the process takes them; returns what
    waits now. The read-modify-write holds the run's lock, so requests from two tabs at once both stay.
    The training process takes them under the same lock (take_steering): each request arrives once."""
    path = Path(path)
    record = check_change(path, by)
    if (status := effective_status(record)) not in ("running", "paused"):
        raise ValueError(f"run {record.id} is {status}: only a training run can be steered")
    if "lr" in request:
        if (why := specs(TrainConfig)["lr"].check(request["lr"])) is not None:
            raise ValueError(why)
    file = path / STEER
    with _locked(path):
        try:
            pending = json.loads(file.read_text())
        except (OSError, ValueError):
            pending = {}
        pending = {**(pending if isinstance(pending, dict) else {}), **request}
        files.write_json_atomic(file, pending)
    return pending


def take_steering(path: Path) -> dict:
    """The steering requests waiting for the run in `path`, taken (the file goes); {} when none. Under the
    run's lock, as steer() writes them: a request is taken once, never lost."""
    file = Path(path) / STEER
    if not file.exists():
        return {}
    with _locked(Path(path)):
        try:
            ask = json.loads(file.read_text())
        except (OSError, ValueError):
            ask = {}
        file.unlink(missing_ok=True)
    return ask if isinstance(ask, dict) else {}
