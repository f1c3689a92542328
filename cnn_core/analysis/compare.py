"""Runs side by side, as numbers: the runs table, their curves in one long table, the config fields
that differ and what each run scored, hyper-parameters against test accuracy, and class mode's leaderboard
(each person's best completed run per dataset).

Plain Python and pandas, read from the run store (parameter counts too: create_run and the engine
record n_params in run.json). How the dashboard words and draws them: ui/views.py, ui/figures.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from cnn_core.runs import metrics_log, store

# What a person compares first comes first: the run, how it ended, its accuracy; then its settings.
TABLE_COLUMNS = ["id", "name", "status", "test_acc", "best_val_acc", "final_val_acc", "dataset", "arch",
                 "arch_params", "optimizer", "lr", "batch_size", "weight_decay", "augment", "schedule", "params",
                 "epochs", "wall_time", "images_per_sec", "device", "created", "note"]
CURVE_COLUMNS = ["run", "run_id", "granularity", "split", "metric", "epoch", "step", "time", "value"]
_SKIP_IN_PLOT = ("dataset", "device", "log_every", "dry_run_batches", "amp")  # not a choice that shapes accuracy


# ---- the runs table -----------------------------------------------------------------------------
def _short_params(params: dict) -> str:
    """'conv1_channels=6, dropout=0.25, ...': an architecture's parameters in one table cell."""
    text = lambda v: str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    return ", ".join(f"{k}={text(v)}" for k, v in params.items())


def runs_table(records: list[store.Run | store.UnreadableRun]) -> pd.DataFrame:
    """One row per run, numbers kept as numbers (NaN where unknown) so the table sorts right; a run that
    cannot be read has its id, status `corrupt` and when its file was written."""
    rows = []
    for r in records:
        if r.corrupt:
            rows.append({"id": r.id, "name": r.title, "status": "corrupt", "created": _timestamp(r.created),
                         "note": "", "epochs": 0})
            continue
        cfg, s, p = r.config, r.summary, r.progress
        running = r.effective_status in store.ACTIVE
        rows.append({
            "id": r.id, "name": short_name(r), "dataset": r.dataset or cfg.get("dataset"),
            "arch": r.arch or cfg.get("arch"), "arch_params": _short_params(_arch_params(r)),
            "optimizer": cfg.get("optimizer"), "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"),
            "weight_decay": cfg.get("weight_decay"), "augment": cfg.get("augment"), "schedule": cfg.get("schedule"),
            "params": _count(r.n_params), "epochs": s.get("epochs_done", 0),
            "best_val_acc": _num(s.get("best_val_acc")), "final_val_acc": _num(s.get("last_val_acc")),
            "test_acc": _num(s.get("test_acc")),
            "wall_time": _num(p.get("elapsed") if running else s.get("wall_time", p.get("elapsed"))),
            "images_per_sec": _num(p.get("images_per_sec") if running else s.get("images_per_sec")),
            "device": r.device or s.get("device") or cfg.get("device"),
            "status": r.effective_status, "created": _timestamp(r.created),
            "note": r.note or "",
        })
    frame = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    frame["params"] = frame["params"].astype("Int64")
    frame["epochs"] = frame["epochs"].astype("Int64")
    return frame


def _timestamp(created) -> pd.Timestamp:
    """run.json's creation time (ISO 8601, UTC) as a timestamp; NaT when it is missing or not a time."""
    return pd.to_datetime(created, utc=True, errors="coerce") if isinstance(created, str) else pd.NaT


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


def short_name(record: store.Run) -> str:
    """The run's name with what tells it apart first: a sweep's trial, named "<sweep name> #3: lr=0.01"
    (sweeps.driver), reads "#3: lr=0.01 · <sweep name>", so that a narrow column cut at its end still shows
    which trial it is (every trial's name starts with the same long sweep name)."""
    name = record.title
    trial = getattr(record, "trial", None)
    if trial is None or f" #{trial}: " not in name:
        return name
    sweep, values = name.split(f" #{trial}: ", 1)
    return f"#{trial}: {values} · {sweep}"


def unique_labels(records: list[store.Run]) -> dict[str, str]:
    """run id -> a legend label: the run's short_name, plus the end of its id where names repeat."""
    names = [short_name(r) for r in records]
    return {r.id: (n if names.count(n) == 1 else f"{n} · {r.id[-4:]}") for r, n in zip(records, names)}


# ---- architecture parameters -------------------------------------------------------------------
def _arch_params(record: store.Run) -> dict:
    """The resolved architecture parameters run.json keeps; the config's own when those are absent."""
    params = record.arch_params
    if not isinstance(params, dict):
        params = record.config.get("arch_params")
    return params if isinstance(params, dict) else {}


# ---- curves -------------------------------------------------------------------------------------
def curves_frame(records: list[store.Run], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Long table of every selected run's curves: one row per (run, point, split, metric), for every metric
    in metrics_log.CURVES. granularity "epoch" has train and val per finished epoch; "step" has train per
    logged step, its epoch fractional (step / steps per epoch) so both share one epoch axis."""
    labels = labels or unique_labels(records)
    rows = []
    for r in records:
        path, label = Path(r.path), labels[r.id]
        per_epoch = r.progress.get("steps_per_epoch")
        for m in metrics_log.read_metrics(path):
            if m["kind"] == "epoch":
                for split in ("train", "val"):
                    for metric in metrics_log.CURVES:
                        rows.append((label, r.id, "epoch", split, metric, m.get("epoch"), m.get("step"),
                                     m.get("time"), m.get(f"{split}_{metric}")))
            elif m["kind"] == "step":
                epoch = m["step"] / per_epoch if per_epoch else m.get("epoch")
                for metric in metrics_log.CURVES:
                    rows.append((label, r.id, "step", "train", metric, epoch, m.get("step"), m.get("time"),
                                 m.get(metric)))
    frame = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    return frame.dropna(subset=["value"])


# ---- config diff --------------------------------------------------------------------------------
def flat_config(record: store.Run) -> dict:
    """The run's config with arch_params flattened into arch_params.<name> (resolved values)."""
    flat = {k: v for k, v in record.config.items() if k != "arch_params"}
    flat.update({f"arch_params.{k}": v for k, v in _arch_params(record).items()})
    return flat


def diff_fields(records: list[store.Run]) -> list[str]:
    """The flattened config fields whose values are not the same in every run, in config order."""
    flats = [flat_config(r) for r in records]
    order = list(dict.fromkeys(k for f in flats for k in f))
    return [k for k in order if len({json.dumps(f.get(k, "\x00absent"), sort_keys=True) for f in flats}) > 1]


def outcomes(records: list[store.Run]) -> pd.DataFrame:
    """Per run (index: run id): test_acc and best_val_acc (NaN where unknown), and same_dataset: whether
    it trained on the first run's dataset (accuracies of different datasets do not compare)."""
    first = _dataset(records[0]) if records else None
    return pd.DataFrame({"test_acc": [_num(r.summary.get("test_acc")) for r in records],
                         "best_val_acc": [_num(r.summary.get("best_val_acc")) for r in records],
                         "same_dataset": [_dataset(r) == first for r in records]},
                        index=[r.id for r in records])


def _dataset(record: store.Run) -> str | None:
    return record.dataset or record.config.get("dataset")


def busiest_dataset(records: list[store.Run]) -> str | None:
    """The dataset with the most runs that have a test accuracy (what hyperparam_frame plots), the first by
    name on a tie; None when no run has one."""
    counts: dict[str, int] = {}
    for r in records:
        if (d := _dataset(r)) and not math.isnan(_num(r.summary.get("test_acc"))):
            counts[d] = counts.get(d, 0) + 1
    return min(counts, key=lambda d: (-counts[d], d)) if counts else None


def datasets_of(records: list[store.Run]) -> list[str]:
    """The datasets of these runs, each once, in order: more than one means their accuracies do not compare."""
    return list(dict.fromkeys(d for d in map(_dataset, records) if d))


def at_chance(records: list[store.Run]) -> list[store.Run]:
    """The completed runs whose test accuracy is chance level (runs.chance_note)."""
    return [r for r in records if store.chance_note(r)]


# ---- hyper-parameters against test accuracy -----------------------------------------------------
def hyperparam_frame(records: list[store.Run], dataset: str) -> pd.DataFrame:
    """Runs of `dataset` with a test accuracy: the config fields that vary among them, and test_acc."""
    chosen = [r for r in records
              if r.dataset == dataset and not math.isnan(_num(r.summary.get("test_acc")))]
    if not chosen:
        return pd.DataFrame(columns=["run", "test_acc"])
    labels = unique_labels(chosen)
    fields = [f for f in diff_fields(chosen) if f not in _SKIP_IN_PLOT]
    rows = [{"run": labels[r.id], **{f: flat_config(r).get(f) for f in fields},
             "test_acc": float(r.summary["test_acc"])} for r in chosen]
    return pd.DataFrame(rows, columns=["run", *fields, "test_acc"])


# ---- the class's leaderboard --------------------------------------------------------------------
LEADERBOARD_COLUMNS = ["dataset", "owner", "run_id", "name", "test_acc", "arch", "epochs", "lr", "batch_size",
                       "optimizer", "runs"]


def leaderboard(records: list[store.Run | store.UnreadableRun]) -> pd.DataFrame:
    """The class's best runs (class mode, core/people.py): one row per (dataset, owner), the owner's completed
    run of that dataset with the highest test accuracy, and that run's name, architecture and key settings
    (epochs: those it trained, fewer than asked when early stopping ended it; lr, batch_size, optimizer); `runs`:
    how many completed runs with a test accuracy the owner has on that dataset. Datasets by name, and within one
    the best first (a tie: the owner's address first). A tie within one owner's runs goes to the earlier run.

    Only completed runs with a test accuracy count: failed, stopped, running or waiting ones, unreadable ones,
    and runs without an owner are left out. A run without an owner was made outside class mode (the CLI, the
    laptop dashboard: the administrator's) and ranks no person of the class; a teacher's runs made signed in
    carry the teacher's address and are listed like a learner's."""
    best: dict[tuple[str, str], tuple[store.Run, int]] = {}
    for r in sorted(store.readable(records), key=lambda r: (r.created, r.id)):     # oldest first: a tie keeps it
        acc, dataset = _num(r.summary.get("test_acc")), _dataset(r)
        if r.status != "completed" or not r.owner or not dataset or math.isnan(acc):
            continue
        kept, n = best.get((dataset, r.owner), (None, 0))
        best[(dataset, r.owner)] = (r if kept is None or acc > _num(kept.summary.get("test_acc")) else kept, n + 1)
    rows = []
    for (dataset, owner), (r, n) in best.items():
        cfg = r.config
        rows.append({"dataset": dataset, "owner": owner, "run_id": r.id, "name": short_name(r),
                     "test_acc": _num(r.summary.get("test_acc")), "arch": r.arch or cfg.get("arch"),
                     "epochs": _count(r.summary.get("epochs_done")) or _count(cfg.get("epochs")),
                     "lr": cfg.get("lr"), "batch_size": cfg.get("batch_size"), "optimizer": cfg.get("optimizer"),
                     "runs": n})
    frame = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    frame = frame.sort_values(["dataset", "test_acc", "owner"], ascending=[True, False, True], kind="stable")
    frame["epochs"] = frame["epochs"].astype("Int64")
    frame["runs"] = frame["runs"].astype("Int64")
    return frame.reset_index(drop=True)
