"""A run's metrics.jsonl: one JSON line per logged step, epoch, test, gradient histogram or change of
course, appended whole by the training process; read back (torn or foreign lines skipped) as records or
pandas frames, cut back to a checkpoint's step on resume."""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from cnn_core.core import faults, files
from cnn_core.runs.store import METRICS


class MetricsWriter:
    """Appends one JSON line per record and flushes it, so a reader always sees whole lines."""

    def __init__(self, path: Path):
        self._file = open(Path(path) / METRICS, "a")

    def log(self, record: dict) -> None:
        line = json.dumps(record, default=files.json_default) + "\n"
        if faults.ACTIVE:   # a crash between the halves leaves the torn line readers must skip
            self._file.write(line[:len(line) // 2])
            self._file.flush()
            faults.reached("metrics-append")
            line = line[len(line) // 2:]
        self._file.write(line)
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: Path) -> list[dict]:
    """Every whole JSON object line of metrics.jsonl; a torn last line or garbage line is skipped."""
    file = Path(path) / METRICS
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for line in raw.split(b"\n"):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if _metric_ok(record):
            out.append(record)
    return out


_NUMERIC = ("step", "epoch", "loss", "acc", "lr", "time", "train_loss", "train_acc", "val_loss", "val_acc",
            "images_per_sec", "test_acc", "test_loss", "final_test_acc")


class Metric(NamedTuple):
    label: str                    # a chart's title
    percent: bool                 # a share (shown as %), or a plain number


# Every metric the engine logs per split, and how it is shown: an epoch line holds train_<name> and
# val_<name>, a step line <name> (over the last log_every steps). Compare overlays each of them, and Train
# charts each one that has no chart of its own (loss and accuracy do): a new metric logged by the trainer
# (cnn_core/train/trainer.py) and named here is on both pages.
CURVES = {"loss": Metric("Loss (cross-entropy)", False), "acc": Metric("Accuracy", True)}

# The columns every reader may count on, even before the first line; any other key the engine logs is
# kept too.
STEP_COLUMNS = ["step", "epoch", "loss", "acc", "lr", "time"]
EPOCH_COLUMNS = ["epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "images_per_sec", "time"]


EVENTS = ("steer", "pause", "stop")     # metrics lines of what changed a run's course


def metrics_frames(path: Path, events: bool = False):
    """metrics.jsonl as two pandas DataFrames: one row per logged training step (loss and accuracy over
    the last log_every steps), and one per finished epoch (train and validation loss and accuracy,
    learning rate, images/s, and whatever else the engine logs); with `events`, a third: the learning
    rate changes, pauses and early stop (kind, step, epoch, lr, ...)."""
    import pandas as pd  # here: the run store is imported by every page before anything is drawn

    metrics = read_metrics(path)

    def frame(kind: str, base: list[str]):
        rows = [m for m in metrics if m["kind"] == kind]
        extra = [k for k in dict.fromkeys(k for m in rows for k in m) if k not in base and k != "kind"]
        return pd.DataFrame(rows, columns=base + extra)

    frames = frame("step", STEP_COLUMNS), frame("epoch", EPOCH_COLUMNS)
    if not events:
        return frames
    rows = [m for m in metrics if m["kind"] in EVENTS]
    return (*frames, pd.DataFrame(rows, columns=list(dict.fromkeys(["kind", "step", "epoch", "lr"]
                                                                  + [k for m in rows for k in m]))))


def best_epoch(epochs) -> int | None:
    """The epoch with the highest validation accuracy (the first such) in an epochs frame; None before one."""
    if epochs.empty:
        return None
    return int(epochs.loc[epochs["val_acc"].idxmax(), "epoch"])


def _metric_ok(record) -> bool:
    """A metrics object readers can use: a text kind, a numeric step on step/epoch lines, numbers where numbers go."""
    if not isinstance(record, dict) or not isinstance(record.get("kind"), str):
        return False
    if record["kind"] in ("step", "epoch") and "step" not in record:
        return False
    return all(isinstance(record[k], (int, float)) and not isinstance(record[k], bool)
               for k in _NUMERIC if k in record)


def truncate_metrics(path: Path, step: int) -> None:
    """Keep only the training records up to step `step` (a run resuming from its checkpoint); a test
    line from a finish that did not get to record `completed` goes too (the finish runs again), and an
    early stop's line (the resumed loop decides again: with more epochs asked, it goes on)."""
    kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= step and r["kind"] not in ("test", "stop")]
    with files.atomic_write(Path(path) / METRICS, "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in kept))
