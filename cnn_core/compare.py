"""Runs side by side: the runs table, overlaid curves, the config diff, hyper-parameters vs accuracy.

Plain Python and pandas, read from the run store (parameter counts too: create_run and the engine
record n_params in run.json).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pandas as pd

from . import runs
from .views import fmt_created

# What a person compares first comes first: the run, how it ended, its accuracy; then its settings.
TABLE_COLUMNS = ["id", "name", "status", "test_acc", "best_val_acc", "final_val_acc", "dataset", "arch",
                 "arch_params", "optimizer", "lr", "batch_size", "weight_decay", "augment", "schedule", "params",
                 "epochs", "wall_time", "images_per_sec", "device", "created", "note"]
CURVE_COLUMNS = ["run", "run_id", "granularity", "split", "metric", "epoch", "step", "time", "value"]
MISSING = "—"     # a field one run has and another lacks (e.g. arch_params.width of another architecture)
_SKIP_IN_PLOT = ("dataset", "device", "log_every", "dry_run_batches", "amp")  # not a choice that shapes accuracy
_LOG_AXES = ("lr", "weight_decay")


# ---- the runs table -----------------------------------------------------------------------------
def load_records(runs_dir: Path | None = None) -> list[dict]:
    """Every run of the runs folder, newest first (runs.list_runs)."""
    return runs.list_runs(runs_dir)


def _short_params(params: dict) -> str:
    return ", ".join(f"{k}={_fmt_value(v)}" for k, v in params.items())


def runs_table(records: list[dict]) -> pd.DataFrame:
    """One row per run, numbers kept as numbers (NaN where unknown) so the table sorts right."""
    rows = []
    for r in records:
        cfg, s, p = r.get("config") or {}, r.get("summary") or {}, r.get("progress") or {}
        running = r.get("effective_status") in runs.ACTIVE
        rows.append({
            "id": r["id"], "name": r.get("name") or r["id"], "dataset": r.get("dataset") or cfg.get("dataset"),
            "arch": r.get("arch") or cfg.get("arch"), "arch_params": _short_params(_arch_params(r)),
            "optimizer": cfg.get("optimizer"), "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
            "weight_decay": cfg.get("weight_decay"), "augment": cfg.get("augment"), "schedule": cfg.get("schedule"),
            "params": _count(r.get("n_params")), "epochs": s.get("epochs_done", 0),
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


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


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


# ---- architecture parameters -------------------------------------------------------------------
def _arch_params(record: dict) -> dict:
    """The resolved architecture parameters run.json keeps; the config's own when those are absent."""
    params = record.get("arch_params")
    if not isinstance(params, dict):
        params = (record.get("config") or {}).get("arch_params")
    return params if isinstance(params, dict) else {}


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
        extra, datasets = {}, [_dataset(r) for r in records]
        for key, title in (("test_acc", "→ test accuracy"), ("best_val_acc", "→ best val accuracy")):
            values = [_num((r.get("summary") or {}).get(key)) for r in records]
            extra[title] = [_fmt_outcome(v, values[0], i, datasets[i] == datasets[0]) for i, v in enumerate(values)]
        frame = pd.concat([frame, pd.DataFrame(extra, index=frame.columns).T])
    frame.index.name = "field"
    return frame


def _fmt_outcome(value: float, first: float, i: int, same_data: bool = True) -> str:
    """The accuracy, and its change from the first run's, in points; none between different datasets."""
    if math.isnan(value):
        return MISSING
    if i == 0 or math.isnan(first):
        return f"{value:.2%}"
    if not same_data:
        return f"{value:.2%} (another dataset: no delta)"
    return f"{value:.2%} ({(value - first) * 100:+.2f} pts)"


def _dataset(record: dict) -> str | None:
    return record.get("dataset") or (record.get("config") or {}).get("dataset")


def datasets_of(records: list[dict]) -> list[str]:
    """The datasets of these runs, each once, in order: more than one means their accuracies do not compare."""
    return list(dict.fromkeys(d for d in map(_dataset, records) if d))


def at_chance(records: list[dict]) -> list[dict]:
    """The completed runs whose test accuracy is chance level (runs.chance_note)."""
    return [r for r in records if runs.chance_note(r)]


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
