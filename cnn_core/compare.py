"""Runs side by side: the runs table, overlaid curves, the config diff, hyper-parameters vs accuracy.

Plain Python and pandas, read from the run store. Parameter counts are kept per architecture
signature (arch, params, input shape, classes) in memory and in <runs>/.cache/param_counts.json:
torch is imported only to count a signature never seen, which the page does after drawing.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import threading
import time
from pathlib import Path

import pandas as pd

from . import runs
from .views import fmt_created

PARAM_CACHE = Path(".cache") / "param_counts.json"   # inside the runs folder; no run.json is touched
TABLE_COLUMNS = ["id", "name", "dataset", "arch", "arch_params", "optimizer", "lr", "batch_size",
                 "weight_decay", "augment", "schedule", "params", "epochs", "best_val_acc", "final_val_acc",
                 "test_acc", "wall_time", "images_per_sec", "device", "status", "created", "note"]
CURVE_COLUMNS = ["run", "run_id", "granularity", "split", "metric", "epoch", "step", "time", "value"]
MISSING = "—"     # a field one run has and another lacks (e.g. arch_params.width of another architecture)
_SKIP_IN_PLOT = ("dataset", "device", "log_every", "dry_run_batches", "amp")  # not a choice that shapes accuracy
_LOG_AXES = ("lr", "weight_decay")
_memo: dict[str, int | None] = {}
_memo_lock = threading.Lock()


# ---- the runs table -----------------------------------------------------------------------------
def load_records(runs_dir: Path | None = None) -> list[dict]:
    """Every run of the runs folder, newest first (runs.list_runs)."""
    return runs.list_runs(runs_dir)


def _short_params(params: dict) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def runs_table(records: list[dict], runs_dir: Path | None = None, count: bool = True) -> pd.DataFrame:
    """One row per run, numbers kept as numbers (NaN where unknown) so the table sorts right.
    count=False leaves parameters not counted before empty (see count_missing_params)."""
    counts = param_counts(records, runs_dir, compute=count)
    rows = []
    for r in records:
        cfg, s, p = r.get("config") or {}, r.get("summary") or {}, r.get("progress") or {}
        running = r.get("effective_status") in runs.ACTIVE
        rows.append({
            "id": r["id"], "name": r.get("name") or r["id"], "dataset": r.get("dataset") or cfg.get("dataset"),
            "arch": r.get("arch") or cfg.get("arch"), "arch_params": _short_params(_arch_params(r)),
            "optimizer": cfg.get("optimizer"), "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
            "weight_decay": cfg.get("weight_decay"), "augment": cfg.get("augment"), "schedule": cfg.get("schedule"),
            "params": counts.get(r["id"]), "epochs": s.get("epochs_done", 0),
            "best_val_acc": _num(s.get("best_val_acc")), "final_val_acc": _num(s.get("last_val_acc")),
            "test_acc": _num(s.get("test_acc")),
            "wall_time": _num(p.get("elapsed") if running else s.get("wall_time", p.get("elapsed"))),
            "images_per_sec": _num(p.get("images_per_sec") if running else s.get("images_per_sec")),
            "device": r.get("device") or s.get("device") or cfg.get("device"),
            "status": r.get("effective_status") or r.get("status"), "created": fmt_created(r.get("created")),
            "note": r.get("note") or "",
        })
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["params"] = frame["params"].astype("Int64")
    frame["epochs"] = frame["epochs"].astype("Int64")
    return frame


def _num(value) -> float:
    """A finite number as float; NaN for None, -1 (the engine's 'no best yet') or text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return math.nan
    return float(value)


def filter_table(table: pd.DataFrame, datasets=(), archs=(), statuses=()) -> pd.DataFrame:
    """Rows whose dataset, architecture and status are among those given (an empty choice keeps all)."""
    keep = pd.Series(True, index=table.index)
    for column, wanted in (("dataset", datasets), ("arch", archs), ("status", statuses)):
        if wanted:
            keep &= table[column].isin(list(wanted))
    return table[keep]


def unique_labels(records: list[dict]) -> dict[str, str]:
    """run id -> a legend label: the run's name, plus the end of its id where names repeat."""
    names = [r.get("name") or r["id"] for r in records]
    return {r["id"]: (n if names.count(n) == 1 else f"{n} · {r['id'][-4:]}") for r, n in zip(records, names)}


# ---- parameter counts ---------------------------------------------------------------------------
def _arch_params(record: dict) -> dict:
    """The resolved architecture parameters run.json keeps; the config's own when those are absent."""
    params = record.get("arch_params")
    if not isinstance(params, dict):
        params = (record.get("config") or {}).get("arch_params")
    return params if isinstance(params, dict) else {}


def _signature(record: dict) -> str | None:
    """What fixes a model's parameter count: architecture, its params, input shape, class count."""
    arch, shape, classes = record.get("arch"), record.get("input_shape"), record.get("classes")
    if not isinstance(arch, str) or not isinstance(shape, list) or not isinstance(classes, list):
        return None
    return json.dumps([arch, _arch_params(record), shape, len(classes)], sort_keys=True)


@functools.lru_cache(maxsize=1)
def _code_version() -> str:
    """A hash of the model code: a cache written by other model code is ignored."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha1()
    for name in ("models.py", "blocks.py"):
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def _count(signature: str) -> int | None:
    """Parameters of the model `signature` describes (built on the CPU: the meta device costs
    seconds of one-time set-up, more than the tens of milliseconds a small CPU build takes)."""
    import torch

    from .models import build_model
    arch, params, shape, n_classes = json.loads(signature)
    try:
        with torch.no_grad():
            model = build_model(arch, tuple(shape), n_classes, params)
    except (ValueError, TypeError, RuntimeError):
        return None
    return sum(p.numel() for p in model.parameters())


def param_counts(records: list[dict], runs_dir: Path | None = None, compute: bool = True) -> dict[str, int | None]:
    """run id -> parameter count (None when the model cannot be rebuilt here, or, with
    compute=False, when it was never counted). Counted once per architecture signature and kept
    in memory and in the runs folder's cache file, so later opens never import torch."""
    sigs = {r["id"]: _signature(r) for r in records}
    file = Path(runs_dir or runs.default_runs_dir()) / PARAM_CACHE
    with _memo_lock:
        todo = {s for s in sigs.values() if s and s not in _memo}
        if todo:
            stored = _read_cache(file)
            _memo.update({s: stored[s] for s in todo if s in stored})
            todo = {s for s in todo if s not in _memo}
        if todo and compute:
            for sig in sorted(todo):
                _memo[sig] = _count(sig)
            _save_cache(file, {sig: _memo[sig] for sig in todo})
        return {rid: _memo.get(s) for rid, s in sigs.items()}


def count_missing_params(records: list[dict], runs_dir: Path | None = None) -> int:
    """Count the parameters of every architecture signature not counted yet; how many there were.
    The page calls this after drawing, so a first open over many new runs is not held up."""
    sigs = {_signature(r) for r in records} - {None}
    missing = len(sigs - set(_memo))
    if missing:
        param_counts(records, runs_dir)
    return missing


def _read_cache(file: Path) -> dict:
    try:
        disk = json.loads(file.read_text())
        return disk["counts"] if disk.get("code") == _code_version() and isinstance(disk["counts"], dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _save_cache(file: Path, new: dict) -> None:
    """Merge `new` into the cache file (another server may have added counts meanwhile)."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        runs.write_json_atomic(file, {"code": _code_version(), "counts": {**_read_cache(file), **new}})
    except OSError:
        pass  # a read-only runs folder still shows the counts, computed again next time


# ---- curves -------------------------------------------------------------------------------------
def curves_frame(records: list[dict], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Long table of every selected run's curves: one row per (run, point, split, metric).
    granularity "epoch" has train and val per finished epoch; "step" has train per logged step,
    its epoch fractional (step / steps per epoch) so both share one epoch axis."""
    labels = labels or unique_labels(records)
    rows = []
    for r in records:
        path, label = Path(r["path"]), labels[r["id"]]
        per_epoch = (r.get("progress") or {}).get("steps_per_epoch")
        for m in runs.read_metrics(path):
            if m["kind"] == "epoch":
                for split in ("train", "val"):
                    for metric in ("loss", "acc"):
                        rows.append((label, r["id"], "epoch", split, metric, m.get("epoch"), m.get("step"),
                                     m.get("time"), m.get(f"{split}_{metric}")))
            elif m["kind"] == "step":
                epoch = m["step"] / per_epoch if per_epoch else m.get("epoch")
                for metric in ("loss", "acc"):
                    rows.append((label, r["id"], "step", "train", metric, epoch, m.get("step"), m.get("time"),
                                 m.get(metric)))
    frame = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return frame.dropna(subset=["value"])


# ---- config diff --------------------------------------------------------------------------------
def flat_config(record: dict) -> dict:
    """The run's config with arch_params flattened into arch_params.<name> (resolved values)."""
    flat = {k: v for k, v in (record.get("config") or {}).items() if k != "arch_params"}
    flat.update({f"arch_params.{k}": v for k, v in _arch_params(record).items()})
    return flat


def diff_fields(records: list[dict]) -> list[str]:
    """The flattened config fields whose values are not the same in every run, in config order."""
    flats = [flat_config(r) for r in records]
    order = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in order if len({json.dumps(f.get(k, MISSING), sort_keys=True) for f in flats}) > 1]


def _fmt_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return MISSING if value is None else str(value)


def config_diff(records: list[dict], labels: dict[str, str] | None = None, outcomes: bool = True) -> pd.DataFrame:
    """Only the differing fields, one column per run (text). With `outcomes`, rows of what the
    difference did follow: test and best validation accuracy, with the change from the first run."""
    labels = labels or unique_labels(records)
    flats = [flat_config(r) for r in records]
    fields = diff_fields(records)
    data = {labels[r["id"]]: [_fmt_value(f.get(k)) if k in f else MISSING for k in fields]
            for r, f in zip(records, flats)}
    frame = pd.DataFrame(data, index=fields, columns=[labels[r["id"]] for r in records])
    if outcomes and records:
        extra = {}
        for key, title in (("test_acc", "→ test accuracy"), ("best_val_acc", "→ best val accuracy")):
            values = [_num((r.get("summary") or {}).get(key)) for r in records]
            extra[title] = [_fmt_outcome(v, values[0], i) for i, v in enumerate(values)]
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.columns).T])
    frame.index.name = "field"
    return frame


def _fmt_outcome(value: float, first: float, i: int) -> str:
    if math.isnan(value):
        return MISSING
    if i == 0 or math.isnan(first):
        return f"{value:.2%}"
    return f"{value:.2%} ({(value - first) * 100:+.2f} pts)"


# ---- hyper-parameters against test accuracy -----------------------------------------------------
def hyperparam_frame(records: list[dict], dataset: str) -> pd.DataFrame:
    """Runs of `dataset` with a test accuracy: the config fields that vary among them, and test_acc."""
    chosen = [r for r in records
              if r.get("dataset") == dataset and not math.isnan(_num((r.get("summary") or {}).get("test_acc")))]
    if not chosen:
        return pd.DataFrame(columns=["run", "test_acc"])
    labels = unique_labels(chosen)
    fields = [f for f in diff_fields(chosen) if f not in _SKIP_IN_PLOT]
    rows = [{"run": labels[r["id"]], **{f: flat_config(r).get(f) for f in fields},
             "test_acc": float(r["summary"]["test_acc"])} for r in chosen]
    return pd.DataFrame(rows, columns=["run", *fields, "test_acc"])


def parcoords_dimensions(frame: pd.DataFrame) -> list[dict]:
    """Axes for a parallel-coordinates plot: numbers as they are (lr and weight decay on a log10 axis
    labelled in their own units), text and booleans as evenly spaced ticks; each range padded 15% so
    lines at the extremes stay visible. The last axis is test accuracy."""
    dims = []
    for column in [c for c in frame.columns if c != "run"]:
        values = frame[column].tolist()
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and column in _LOG_AXES and all(v > 0 for v in values):
            logs = [math.log10(v) for v in values]
            ticks = sorted(set(zip(logs, values)))
            dims.append({"label": f"{column} (log)", "values": logs, "tickvals": [t[0] for t in ticks],
                         "ticktext": [_fmt_value(float(t[1])) for t in ticks], "range": _padded(logs)})
        elif numeric:
            values = [float(v) for v in values]
            dims.append({"label": column, "values": values, "range": _padded(values),
                         **({"tickformat": ".1%"} if column == "test_acc" else {})})
        else:
            text = [_fmt_value(v) for v in values]
            levels = sorted(set(text))
            codes = [levels.index(t) for t in text]
            dims.append({"label": column, "values": codes, "tickvals": list(range(len(levels))),
                         "ticktext": levels, "range": _padded(codes)})
    return dims


def _padded(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or abs(high) * 0.05 or 0.5
    return [low - pad, high + pad]


# ---- actions ------------------------------------------------------------------------------------
def delete_run(path: Path, runs_dir: Path | None = None, timeout: float = 60.0) -> str:
    """Delete one run folder; a queued or running run is cancelled first and waited for.
    Returns the status the run had. ValueError when it will not stop within `timeout` s."""
    path = Path(path)
    try:
        record = runs.read_run(path)
        status, pid = runs.effective_status(record), record.get("pid")
    except ValueError:
        status, pid = "corrupt", None
    if status in runs.ACTIVE and pid:
        from . import jobs   # imports torch: only when a live run must be stopped

        deadline = time.monotonic() + timeout
        # Asked again on every poll: the engine drops a request made before its first step.
        while jobs.cancel(path) in runs.ACTIVE:
            if time.monotonic() > deadline:
                raise ValueError(f"run {path.name} did not stop within {timeout:.0f} s; nothing deleted, "
                                 "try again in a moment")
            time.sleep(0.25)
    runs.delete_run(path, runs_dir)
    return status
