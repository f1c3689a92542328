"""Sweeps: a base config, a search space, a budget and an objective. Every trial is an ordinary run of the
run store (tagged with its sweep and trial number); Optuna picks the values (a grid, random, or its
model-based TPE sampler) and, if asked, stops poor trials early (median rule or ASHA). Trials run on the
local queue (jobs.launch: the slots of this machine) or as Ray tasks on a cluster.

A sweep is `<runs>/.sweeps/<id>.json`, written by its driver (cnn_core.sweeps.driver.drive), a process of
its own like a run's: `python -m cnn_core sweeps drive ID`, detached, or in the foreground with `sweep --wait`.
This module is the record, its space and checks, the store, and what a sweep found.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import socket
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core import files, people
from cnn_core.core.settings import parse_value, specs
from cnn_core.runs import metrics_log, owners, store
from cnn_core.train import jobs

MAX_TRIALS = 1_000
FOLDER = ".sweeps"
OBJECTIVES = {"val_acc": ("maximize", "best validation accuracy"),
              "val_loss": ("minimize", "final validation loss")}
SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "median", "asha")
BACKENDS = ("local", "ray")
ACTIVE = ("starting", "running")
RESUMABLE = ("interrupted", "failed")          # its driver died (killed, or an error): `sweeps resume` goes on
POLL_S = 0.25
CONNECT_TIMEOUT_S = 5.0
RAY_ADDRESSES_ENV = "CNN_RAY_ADDRESSES"     # the Ray clusters the dashboard may use: NAME=HOST:PORT,... (or HOST:PORT)
_RAY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_. -]{0,39}$")
_RAY_ADDRESS_RE = re.compile(r"^(ray://)?([A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


@dataclass
class Sweep:
    id: str
    name: str
    base: dict                                   # TrainConfig fields shared by every trial
    grid: dict = field(default_factory=dict)     # field -> values (every combination is a trial)
    sample: dict = field(default_factory=dict)   # field -> {"low", "high", "scale": linear|log} or {"values": [...]}
    trials: int = 0                              # how many (a grid: its size)
    objective: str = "val_acc"
    sampler: str = "tpe"
    prune: str = "none"
    backend: str = "local"
    address: str | None = None                   # a Ray cluster's, else a local Ray instance
    seed: int = 0
    status: str = "starting"                     # starting, running, completed, cancelled, failed, interrupted
    created: str = ""
    pid: int | None = None
    host: str = ""
    error: str | None = None
    runs: list = field(default_factory=list)     # per trial: number, run, params, status, score, reason
    owner: str | None = None                     # who made it, in class mode (core/people.py); its trials are theirs

    @property
    def direction(self) -> str:
        return OBJECTIVES[self.objective][0]

    def best(self) -> dict | None:
        scored = [t for t in self.runs if t.get("score") is not None and t.get("status") == "completed"]
        if not scored:
            return None
        return (max if self.direction == "maximize" else min)(scored, key=lambda t: t["score"])


# ---- the space: parsed, checked ------------------------------------------------------------------------

def _field(name: str):
    known = {k: s for k, s in specs(TrainConfig).items() if s.kind not in ("params",)}
    if name not in known:
        raise ConfigError({name: f"{name!r} is not a setting a sweep can vary; choose among: {', '.join(known)}"})
    return known[name]


def parse_grid(items: list[str]) -> dict:
    """["lr=0.01,0.03,0.1", "batch_size=64,128"] -> {"lr": [0.01, 0.03, 0.1], "batch_size": [64, 128]}."""
    out = {}
    for item in items:
        name, _, values = item.partition("=")
        name = name.strip().replace("-", "_")
        _field(name)
        parsed = [parse_value(v.strip()) for v in values.split(",") if v.strip()]
        if not parsed:
            raise ConfigError({name: f"--grid {item!r}: give NAME=V1,V2,..."})
        out[name] = parsed
    return out


def parse_sample(items: list[str]) -> dict:
    """["lr=log:0.001:0.3", "dropout=0:0.5", "optimizer=sgd,adam"] -> ranges (linear or log) and choices."""
    out = {}
    for item in items:
        name, _, text = item.partition("=")
        name = name.strip().replace("-", "_")
        spec = _field(name)
        parts = text.split(":")
        if "," in text or spec.kind in ("choice", "bool"):
            out[name] = {"values": [parse_value(v.strip()) for v in text.split(",") if v.strip()]}
            continue
        scale = parts.pop(0) if parts and parts[0] in ("log", "linear") else "linear"
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ConfigError({name: f"--sample {item!r}: give NAME=LOW:HIGH, NAME=log:LOW:HIGH or "
                                     "NAME=V1,V2,..."}) from None
        if not low < high or (scale == "log" and low <= 0):
            raise ConfigError({name: f"--sample {item!r}: LOW must be below HIGH" + (" and above 0 on a log scale"
                                                                                       if scale == "log" else "")})
        if spec.kind == "int":
            low, high = int(math.ceil(low)), int(math.floor(high))
        out[name] = {"low": low, "high": high, "scale": scale}
    return out


def corners(sweep: Sweep) -> list[dict]:
    """The values to check before anything launches: every grid point; each sampled range's ends and
    every listed choice (a value in a checked range passes the same checks)."""
    if sweep.grid:
        names = list(sweep.grid)
        return [dict(zip(names, combo)) for combo in itertools.product(*sweep.grid.values())]
    out = []
    for name, dim in sweep.sample.items():
        out += [{name: v} for v in (dim["values"] if "values" in dim else (dim["low"], dim["high"]))]
    return out


def check(sweep: Sweep) -> None:
    """ConfigError naming each problem, before anything is written: an empty space, a grid and a sample
    together, too many trials, and every value TrainConfig's own checks refuse (with its message)."""
    errors = {}
    if not sweep.grid and not sweep.sample:
        errors["space"] = "the search space is empty: give --grid NAME=V1,V2 or --sample NAME=LOW:HIGH"
    if sweep.grid and sweep.sample:
        errors["space"] = "give --grid or --sample, not both: a grid tries every combination, a sample draws"
    if sweep.grid:
        sweep.trials = math.prod(len(v) for v in sweep.grid.values())
    if not isinstance(sweep.trials, int) or isinstance(sweep.trials, bool) or not 1 <= sweep.trials <= MAX_TRIALS:
        errors["trials"] = f"a sweep has 1 to {MAX_TRIALS:,} trials; this one would have {sweep.trials!r}"
    for what, value, allowed in (("objective", sweep.objective, OBJECTIVES), ("sampler", sweep.sampler, SAMPLERS),
                                 ("prune", sweep.prune, PRUNERS), ("backend", sweep.backend, BACKENDS)):
        if value not in allowed:
            errors[what] = f"{what} must be one of: {', '.join(allowed)}; got {value!r}"
    if not errors:
        for i, values in enumerate(corners(sweep)):
            try:
                TrainConfig.from_dict({**sweep.base, **values}).check()
            except ConfigError as exc:
                for k, v in exc.errors.items():
                    errors.setdefault(k, f"{v} (in {', '.join(f'{n}={x}' for n, x in values.items())})")
    if errors:
        raise ConfigError(errors)


# ---- the sweep store ----------------------------------------------------------------------------------

def folder(runs_dir: Path | None = None) -> Path:
    return Path(runs_dir or store.default_runs_dir()) / FOLDER


def _file(sweep_id: str, runs_dir: Path | None = None) -> Path:
    if not isinstance(sweep_id, str) or not sweep_id.replace("-", "").isalnum():
        raise ValueError(f"no sweep {sweep_id!r}")
    return folder(runs_dir) / f"{sweep_id}.json"


def save(sweep: Sweep, runs_dir: Path | None = None) -> None:
    folder(runs_dir).mkdir(parents=True, exist_ok=True)
    files.write_json_atomic(_file(sweep.id, runs_dir), asdict(sweep))


def read(sweep_id: str, runs_dir: Path | None = None) -> Sweep:
    path = _file(sweep_id, runs_dir)
    try:
        data = json.loads(path.read_text())
        return Sweep(**{k: v for k, v in data.items() if k in Sweep.__dataclass_fields__})
    except FileNotFoundError:
        raise ValueError(f"no sweep {sweep_id!r} in {folder(runs_dir)}") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sweep {sweep_id}: {path} cannot be read ({exc})") from None


def list_sweeps(runs_dir: Path | None = None) -> list[Sweep]:
    out = []
    for path in sorted(folder(runs_dir).glob("*.json"), reverse=True):
        try:
            out.append(read(path.stem, runs_dir))
        except ValueError:
            continue
    return out


def effective_status(sweep: Sweep) -> str:
    """A starting or running sweep whose driver is gone reads interrupted."""
    if sweep.status in ACTIVE and sweep.pid and sweep.host == socket.gethostname() \
            and not files.pid_alive(int(sweep.pid)):
        return "interrupted"
    return sweep.status


def ray_addresses() -> dict[str, str]:
    """The Ray clusters this server is configured with, name -> address, from $CNN_RAY_ADDRESSES: entries
    separated by commas, each NAME=HOST:PORT or HOST:PORT (its own name), ray:// allowed
    ("lab=10.0.0.5:6379, gpu=ray://gpu-box:10001"). The dashboard offers these and a local Ray instance,
    nothing else. ValueError naming an entry that is not of that form."""
    out = {}
    for entry in filter(None, (e.strip() for e in os.environ.get(RAY_ADDRESSES_ENV, "").split(","))):
        name, _, address = (part.strip() for part in entry.rpartition("="))
        if not ((not name or _RAY_NAME_RE.match(name)) and _RAY_ADDRESS_RE.match(address)
                and 0 < int(address.rpartition(":")[2]) < 65536):
            raise ValueError(f"{RAY_ADDRESSES_ENV}: {entry[:80]!r} is not NAME=HOST:PORT or HOST:PORT "
                             "(entries separated by commas)")
        out[name or address] = address
    return out


def configured_address(cluster: str) -> str:
    """The address of the Ray cluster this server is configured with under the name `cluster`; ValueError
    for any other name (nothing is connected to)."""
    known = ray_addresses()
    if not isinstance(cluster, str) or cluster not in known:
        offered = ", ".join(known) if known else f"none is configured (the server's {RAY_ADDRESSES_ENV})"
        raise ValueError(f"{str(cluster)[:80]!r} is not a Ray cluster this server is configured with; choose a "
                         f"local Ray instance or one of: {offered}; nothing was launched")
    return known[cluster]


def create(base: TrainConfig, grid: dict | None = None, sample: dict | None = None, trials: int = 0,
           objective: str = "val_acc", sampler: str = "tpe", prune: str = "none", backend: str = "local",
           address: str | None = None, name: str | None = None, runs_dir: Path | None = None,
           cluster: str | None = None, by=None) -> Sweep:
    """Check, then write a new sweep (status starting). ConfigError before anything is written. The Ray
    cluster: `cluster`, the name of one this server is configured with (ray_addresses: the dashboard's
    way, a name it cannot turn into any other address), or `address`, any HOST:PORT (the command line's:
    the machine's own user typed it); neither: a local Ray instance. by: the Person making it in class mode
    (core/people.py), its owner and its trials'; every trial's epochs and the base model's size are checked
    against their limits (people.OverLimit)."""
    if cluster is not None:
        if address is not None or backend != "ray":
            raise ValueError("a configured Ray cluster goes with backend ray and no address")
        address = configured_address(cluster)
    base.check()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    sweep = Sweep(f"{stamp}-{os.urandom(2).hex()}", "", base.to_dict(), dict(grid or {}), dict(sample or {}),
                  trials, objective, sampler, prune, backend, address, base.seed,
                  created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    check(sweep)
    if by is not None:
        sweep.owner = by.email
        owners.check_room(by, runs_dir, epochs=max(int(c.get("epochs", base.epochs)) for c in corners(sweep)),
                          n_params=_params(base), starting=None)
    if backend == "ray" and address:
        if (why := _ray_unreachable(address)) is not None:
            raise ValueError(f"the Ray cluster at {address} does not answer ({why}); nothing was launched")
    shown = ", ".join(list(sweep.grid) + list(sweep.sample))
    sweep.name = name or f"sweep of {shown} · {base.dataset} · {base.arch}"
    save(sweep, runs_dir)
    return sweep


def _ray_unreachable(address: str) -> str | None:
    host, _, port = address.replace("ray://", "").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or address, int(port or 6379)), timeout=CONNECT_TIMEOUT_S):
            return None
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _params(config: TrainConfig) -> int:
    from cnn_core.data import catalog
    from cnn_core.nets import architectures

    info = catalog.get_info(config.dataset)
    return architectures.count_params(config.arch, info.input_shape, len(info.classes), config.arch_params)


def launch(sweep: Sweep, runs_dir: Path | None = None, resume: bool = False, by=None) -> int:
    """Start the sweep's driver as a detached process (like a run's); its pid. resume: an interrupted or
    failed sweep goes on from where its driver stopped (ValueError for any other)."""
    people.check_change(f"sweep {sweep.name!r}", sweep.owner, by)
    root = Path(runs_dir or store.default_runs_dir()).resolve()
    if resume:
        check_resume(sweep)
    pid = jobs.start_detached([sys.executable, "-m", "cnn_core", "sweeps", "drive", sweep.id]
                              + (["--resume"] if resume else []),
                              folder(root) / f"{sweep.id}.log", **{store.RUNS_DIR_ENV: str(root)})
    if resume:       # not resumable twice while its driver starts
        sweep.status, sweep.pid, sweep.host = "starting", pid, socket.gethostname()
        save(sweep, root)
    return pid


def check_resume(sweep: Sweep) -> None:
    if (status := effective_status(sweep)) not in RESUMABLE:
        raise ValueError(f"sweep {sweep.id} is {status}: only an interrupted or failed sweep resumes")


def cancel(sweep_id: str, runs_dir: Path | None = None, by=None) -> None:
    """Ask the driver to stop: it cancels its queued and running trials, then ends cancelled."""
    sweep = read(sweep_id, runs_dir)
    people.check_change(f"sweep {sweep.name!r}", sweep.owner, by)
    (folder(runs_dir) / f"{sweep.id}.cancel").touch()
    if effective_status(sweep) not in ACTIVE:      # no driver to do it: cancel what it left
        for t in sweep.runs:
            path = Path(runs_dir or store.default_runs_dir()) / t["run"]
            if path.is_dir():
                jobs.cancel(path)


def delete(sweep_id: str, runs_dir: Path | None = None, by=None) -> int:
    """Cancel the sweep, delete its trials' runs and its record; how many runs were deleted."""
    sweep = read(sweep_id, runs_dir)
    cancel(sweep_id, runs_dir, by=by)
    deadline = time.monotonic() + 30
    while effective_status(read(sweep_id, runs_dir)) in ACTIVE and time.monotonic() < deadline:
        time.sleep(0.25)
    root = Path(runs_dir or store.default_runs_dir())
    gone = 0
    for t in read(sweep_id, runs_dir).runs or sweep.runs:
        if (root / t["run"]).is_dir():
            jobs.delete_run(root / t["run"], root)
            gone += 1
    for suffix in (".json", ".cancel", ".log"):
        (folder(runs_dir) / f"{sweep.id}{suffix}").unlink(missing_ok=True)
    return gone


# ---- scores ---------------------------------------------------------------------------------------------
def epoch_scores(path: Path, objective: str) -> list[float]:
    key = "val_acc" if objective == "val_acc" else "val_loss"
    return [float(m[key]) for m in metrics_log.read_metrics(path) if m.get("kind") == "epoch" and m.get(key) is not None]

def score(record: store.Run, objective: str) -> float | None:
    """A finished trial's score: its best validation accuracy, or its final validation loss."""
    if objective == "val_acc":
        value = record.summary.get("best_val_acc")
    else:
        losses = epoch_scores(record.path, "val_loss")
        value = losses[-1] if losses else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


# ---- what a sweep found ------------------------------------------------------------------------------

def distributions(sweep: Sweep) -> dict:
    """Each swept field's Optuna distribution: the grid's or the listed choices, else the sampled range."""
    import optuna

    out = {}
    for name in list(sweep.grid) + list(sweep.sample):
        values = sweep.grid.get(name) or sweep.sample[name].get("values")
        if values is not None:
            out[name] = optuna.distributions.CategoricalDistribution(values)
        else:
            dim = sweep.sample[name]
            cls = (optuna.distributions.IntDistribution if specs(TrainConfig)[name].kind == "int"
                   else optuna.distributions.FloatDistribution)
            out[name] = cls(dim["low"], dim["high"], log=dim["scale"] == "log")
    return out


def importance(sweep: Sweep) -> dict[str, float]:
    """How much each swept field mattered to the score (Optuna's fANOVA importance over the completed
    trials); {} with fewer than two completed trials or a single field that never varied."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    done = [t for t in sweep.runs if t.get("status") == "completed" and t.get("score") is not None]
    if len(done) < 2 or not (dists := distributions(sweep)):
        return {}
    study = optuna.create_study(direction=sweep.direction)
    for t in done:
        study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=dists, value=t["score"]))
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
