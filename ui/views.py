"""The dashboard's display logic, with no Streamlit: what runs, numbers and settings read like on the pages
(labels, formats, the live panel's view of a run, the Compare diff as text), form <-> TrainConfig.

Everything here is plain Python and pandas, so it is tested without a browser. Modules that pull in
torch (models, data, jobs) are imported inside the functions that need them.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

import pandas as pd

from cnn_core.analysis import compare
from cnn_core.config import TrainConfig, field_label
from cnn_core.core.progress import count, fmt_duration  # noqa: F401  (the pages' counts and durations read like the CLI's)
from cnn_core.core.settings import Setting, specs
from cnn_core.runs import metrics_log, store

MISSING = "—"     # a field one run has and another lacks (e.g. arch_params.width of another architecture)
STATUS_WORDS = {
    "queued": "waiting for a training slot",
    "running": "training",
    "paused": "paused between two steps, its model in memory and its slot held; Continue goes on",
    "completed": "finished",
    "failed": "stopped by an error (below); resumable from its last checkpoint when it has one",
    "cancelled": "stopped by the user; resumable from its checkpoint",
    "interrupted": "its process ended without a word (killed, crashed, machine restarted); resumable",
    "corrupt": "its run.json cannot be read",
}
# ---- formatting ---------------------------------------------------------------------------------
_MD_PUNCT = re.compile(r"[!-/:-@\[-`{-~]")   # every ASCII punctuation character
_LINE_BREAK = re.compile(r"\r\n?|\n")


def md(text) -> str:
    """`text` from elsewhere (a run's or a class's name, a file name, a message quoting them) as Streamlit
    Markdown that shows it exactly as typed. Every ASCII punctuation character gets a backslash (CommonMark
    reads one before any of them as that character), line breaks become spaces: `![](http://host/x)` shows
    those characters and never becomes an image the browser fetches, nor a link, HTML, a heading, emphasis,
    code, LaTeX ($) or a Streamlit directive (:red[...], :material/...:). Only for what Streamlit renders as
    Markdown (alerts, captions, markdown, labels, help, st.table cells), not for dataframes or inputs."""
    return _MD_PUNCT.sub(lambda m: "\\" + m.group(), _LINE_BREAK.sub(" ", str(text)))


def whose(owner: str | None) -> str:
    """Class mode's name for whom a record belongs to, as Markdown: its owner's address, or the teacher for
    one made outside class mode (people.check_change words a refusal the same)."""
    return md(owner or "the teacher")


def looking_only(owner: str | None, verb: str) -> str:
    """The line a page shows instead of the buttons that would change another person's run."""
    return f"This run is {whose(owner)}'s: you may {verb} it, not change it."


def md_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for st.table, which renders Markdown in every cell and header: its text escaped by md."""
    def esc(v):
        return md(v) if isinstance(v, str) else v

    out = frame.map(esc)
    out.index, out.columns = out.index.map(esc), out.columns.map(esc)
    out.index.name, out.columns.name = esc(frame.index.name), esc(frame.columns.name)
    return out


def plot_text(text) -> str:
    """`text` from elsewhere as plotly.js shows it as typed: plotly draws <a href>, <b>, <span style> in
    titles, legends, axis labels and hover text; &lt; &gt; &amp; are among the entities it decodes."""
    return html.escape(str(text), quote=False)


def fmt_acc(value, digits: int = 2) -> str:
    """0.9712 -> '97.12%'; '–' when missing. 1.0 -> '100%' (no room is wasted on '100.00%')."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "–"
    return "100%" if value >= 1.0 else f"{value:.{digits}%}"


def fmt_created(created) -> str:
    """A run's creation time (run.json's ISO text, or a timestamp; stored in UTC) in local time, to the
    second: '2025-11-22 23:10:05'; '' when there is none."""
    try:
        when = created.to_pydatetime() if isinstance(created, pd.Timestamp) else datetime.fromisoformat(created)
        return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, AttributeError):
        return ""


def short(text: str | None, limit: int = 48) -> str:
    """`text` cut to `limit` characters with an ellipsis."""
    text = text or ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def run_label(record: store.Run) -> str:
    """What a run is called in a picker: its name and when it was created."""
    created = fmt_created(record.created)
    name = record.title
    return f"{name} · {created}" if created else name


def fmt_value(value) -> str:
    """A config value as the Compare page writes it: true/false, 0.03, '—' for none."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return MISSING if value is None else str(value)


# ---- one run as the live panel shows it ---------------------------------------------------------
@dataclass
class LiveRun:
    id: str
    name: str
    path: Path
    status: str              # effective status
    record: store.Run
    steps: pd.DataFrame
    epochs: pd.DataFrame
    progress: dict
    fraction: float          # 0..1 for the progress bar
    progress_text: str       # "epoch 2/5 · step 140/315"
    best_epoch: int | None
    test_acc: float | None
    error: str | None
    has_checkpoint: bool
    speed: float | None      # training images/s now (the last epoch's figure at an epoch boundary)
    eta: float | None        # seconds left at that speed
    events: pd.DataFrame = None   # learning-rate changes, pauses, an early stop (metrics_log.EVENTS)

    @property
    def base_lr(self) -> float | None:
        """The base learning rate now: the last one steered to, else the config's."""
        steers = self.events[self.events["kind"] == "steer"] if self.events is not None else []
        return float(steers["lr"].iloc[-1]) if len(steers) else self.record.config.get("lr")

    @property
    def active(self) -> bool:
        return self.status in store.ACTIVE

    @property
    def resumable(self) -> bool:
        """Stopped or interrupted with a checkpoint: Resume continues where it left off."""
        return self.status in ("cancelled", "interrupted", "failed") and self.has_checkpoint

    @property
    def restartable(self) -> bool:
        """Stopped before any checkpoint (e.g. while queued): it can only start from the beginning."""
        return self.status in ("cancelled", "interrupted") and not self.has_checkpoint and self.steps.empty


def progress_text(progress: dict, world_size: int = 1, hosts: list | None = None) -> str:
    """"epoch 2/5 · step 140/315", and with several processes "· 2 processes" (on how many machines)."""
    if not progress:
        return "not started yet"
    together = ""
    if world_size > 1:
        machines = len(set(hosts or []))
        together = f" · {world_size} processes" + (f" on {machines} machines" if machines > 1 else "")
    return (f"epoch {progress.get('epoch', 0)}/{progress.get('epochs', '?')} · "
            f"step {progress.get('step', 0)}/{progress.get('total_steps', '?')}{together}")


def live_run(record: store.Run) -> LiveRun:
    """Everything the live panel draws for a run: its record, and its metrics read from its folder."""
    path = record.path
    steps, epochs, events = metrics_log.metrics_frames(path, events=True)
    progress = record.progress
    total = progress.get("total_steps") or 0
    status = record.effective_status
    fraction = 1.0 if status == "completed" else (min(progress.get("step", 0) / total, 1.0) if total else 0.0)
    summary = record.summary
    speed, eta = progress.get("images_per_sec") or None, progress.get("eta")
    if status not in store.ACTIVE:   # finished or stopped: its whole-run speed, else its last epoch's
        last_epoch = float(epochs["images_per_sec"].iloc[-1]) if not epochs.empty else None
        speed, eta = summary.get("images_per_sec") or last_epoch or speed, None
    return LiveRun(record.id, record.title, path, status, record, steps, epochs,
                   progress, fraction, progress_text(progress, record.world_size, record.hosts),
                   metrics_log.best_epoch(epochs), record.test_acc,
                   record.error, (path / store.CHECKPOINT).is_file(), speed, eta, events)


def steering_notice(notice: dict | None, run_id: str, steers: int, **ask) -> dict:
    """The live panel's notice of what was asked of run `run_id` (ask: lr=RATE, pause=True|False, stop=True,
    error=TEXT), added to what was asked of it before (a notice of another run is dropped); `steers`: the
    learning-rate changes the run had logged when asked, so the one it takes next is told apart."""
    kept = notice if notice and notice.get("run") == run_id else {"run": run_id}
    return {**{k: v for k, v in kept.items() if k != "error"}, **ask, **({"steers": steers} if "lr" in ask else {})}


def steering_lines(notice: dict | None, run: LiveRun) -> list[tuple[str, str]]:
    """What the live panel says of the steering asked (steering_notice) of `run`: (kind, text) lines, kind an
    st.info/success/error. None once the run has ended (its status then says how), nor for another run; a
    pause or continue asked says nothing once the status shows it."""
    if not notice or notice.get("run") != run.id or not run.active:
        return []
    lines = []
    if notice.get("error"):
        lines.append(("error", f"Not changed: {md(notice['error'])}"))
    if notice.get("stop"):
        return lines + [("info", "Stop asked: the run saves a checkpoint and stops within a step.")]
    steers = run.events[run.events["kind"] == "steer"] if run.events is not None and len(run.events) else []
    if "lr" in notice and len(steers) > notice.get("steers", 0):
        taken = steers.iloc[-1]
        lines.append(("success", f"Learning rate set to {taken['lr']:g} from step {int(taken['step']) + 1:,} "
                                 f"on (it was {taken['was']:.3g})."))
    elif "lr" in notice:
        when = " once you press Continue" if run.status == "paused" else ""
        lines.append(("info", f"New learning rate {notice['lr']:g} asked: it applies from the next step{when}."))
    if notice.get("pause") is True and run.status != "paused":
        lines.append(("info", "Pause asked: the run holds after the step it is on."))
    elif notice.get("pause") is False and run.status == "paused":
        lines.append(("info", "Continue asked: the run goes on within a second."))
    return lines


def error_labels(errors: dict, arch=None) -> list[str]:
    """The names a person reads for the fields in `errors` ("Learning rate", "Dropout"), in form order
    where the form has them. `arch`: the registry entry whose knobs arch_params.<name> refers to."""
    titles = {f"arch_params.{p.name}": p.title for p in (arch.params if arch else ())} | {"name": "Run name"}
    order = {f: i for i, f in enumerate(("dataset", "arch", *titles, *form_settings()))}
    return [titles.get(f) or field_label(f) for f in sorted(errors, key=lambda f: (order.get(f, 99), f))]


def runs_at_once(n: int) -> str:
    """'1 run trains' / '2 runs train': how many runs the training slots let train at once."""
    return "1 run trains" if n == 1 else f"{n} runs train"


def queue_note(active: list[store.Run], max_jobs: int) -> str:
    """One sentence on the training slots: how many train at once, how many run or wait now."""
    running = sum(r.effective_status == "running" for r in active)
    queued = sum(r.effective_status == "queued" for r in active)
    now = f"now {running} training, {queued} waiting" if active else "none training now"
    return (f"At most {runs_at_once(max_jobs)} at once on this machine "
            f"({now}). A run launched while every slot is busy waits as `queued` and starts, oldest first, "
            f"when a slot frees. Set CNN_MAX_JOBS to change the number of slots.")


def queue_position(run_id: str, active: list[store.Run]) -> int | None:
    """1 for the next run to get a slot; None when the run is not waiting."""
    waiting = [r.id for r in active if r.effective_status == "queued"]
    return waiting.index(run_id) + 1 if run_id in waiting else None


def pick_run(ids: list[str], wanted: str | None, all_runs: list[store.Run]) -> str | None:
    """The run the live panel shows: `wanted` when it exists; else the newest running run, else the next
    queued one (the oldest), else the newest run. `all_runs` is newest first, as runs.list_runs gives it."""
    if wanted and wanted in ids:
        return wanted
    running = [r.id for r in all_runs if r.effective_status == "running"]
    queued = [r.id for r in all_runs if r.effective_status == "queued"]
    if running or queued:
        return running[0] if running else queued[-1]
    return all_runs[0].id if all_runs else None


def default_name(config: TrainConfig) -> str:
    """A run name that tells runs apart in a list: model, data and the knobs people change most."""
    return (f"{config.arch} on {config.dataset} · {config.optimizer} lr {config.lr:g} · "
            f"batch {config.batch_size} · {count(config.epochs, 'epoch')}")


def runs_frame(records: list) -> pd.DataFrame:
    """A table of runs for Home: name, status, dataset, model, epochs, test accuracy, created."""
    rows = []
    for r in records:
        if r.corrupt:
            rows.append({"name": r.id, "status": "corrupt", "dataset": "", "model": "", "epochs": "",
                         "test accuracy": "–", "created": fmt_created(r.created), "id": r.id})
            continue
        s, p = r.summary, r.progress
        rows.append({"name": r.title, "status": r.effective_status,
                     "dataset": r.dataset, "model": r.arch,
                     "epochs": f"{s.get('epochs_done', p.get('epoch', 0) if p else 0)}/"
                               f"{r.config.get('epochs', '?')}",
                     "test accuracy": fmt_acc(s.get("test_acc")),
                     "created": fmt_created(r.created), "id": r.id})
    return pd.DataFrame(rows, columns=["name", "status", "dataset", "model", "epochs", "test accuracy",
                                       "created", "id"])


# ---- the form <-> TrainConfig -------------------------------------------------------------------
def form_settings(cls: type = TrainConfig) -> dict[str, Setting]:
    """The settings the Train form draws as widgets: every one with a section (arch_params are per
    architecture and drawn from its knobs)."""
    return {name: spec for name, spec in specs(cls).items() if spec.section}


def form_values(config: TrainConfig) -> dict:
    """The value each form widget should hold to show `config` (an int lr from a JSON file becomes 1.0)."""
    return {name: spec.widget_value(getattr(config, name)) for name, spec in form_settings(type(config)).items()}


def config_from_form(values: dict, arch_params: dict, cls: type = TrainConfig) -> TrainConfig:
    """A config from the form's values; not validated (call .validate())."""
    known = {f.name for f in fields(cls)}
    data = {k: v for k, v in values.items() if k in known and k != "arch_params"}
    return cls(**data, arch_params=dict(arch_params))


def clone_config(record: dict, cls: type = TrainConfig) -> tuple[TrainConfig, list[str]]:
    """The config of a saved run, for the form; fields this version does not know are dropped
    and returned by name, so a run from an older or newer version still clones."""
    data = dict(record.config)
    known = {f.name for f in fields(cls)}
    dropped = sorted(set(data) - known)
    config = cls(**{k: v for k, v in data.items() if k in known})
    if not isinstance(config.arch_params, dict):
        config.arch_params = {}
    return config, dropped


def shown(value) -> str:
    """A value as a warning quotes it: its repr, cut to 60 characters."""
    return short(repr(value), 60)


# ---- model preview ------------------------------------------------------------------------------
def layer_frame(dataset: str, arch: str, params: dict) -> tuple[pd.DataFrame, int]:
    """The layer table of `arch` built for `dataset`: layer, type, output shape, parameters; and the total.
    ValueError (a message for a person) when the model cannot be built with these values."""
    from cnn_core.data import catalog

    # torch: imported only when a model is built
    from cnn_core.nets import architectures

    info = catalog.get_info(dataset)
    model = architectures.build_model(arch, info.input_shape, len(info.classes), params)
    rows, total = architectures.layer_table(model)
    table = pd.DataFrame(
        [{"layer": r.name, "type": r.kind, "kernel, stride, padding": r.settings,
          "output shape": " × ".join(map(str, r.output_shape)), "parameters": r.params} for r in rows],
        columns=["layer", "type", "kernel, stride, padding", "output shape", "parameters"])
    return table, total


def input_text(dataset: str) -> str:
    from cnn_core.data import catalog

    c, h, w = catalog.get_info(dataset).input_shape
    return f"{c} × {h} × {w}"


# ---- datasets and devices -----------------------------------------------------------------------
@dataclass
class DatasetCard:
    id: str
    title: str
    state: str        # ready | subset | missing
    badge: str        # what a person reads: "ready", "subset", "not prepared"
    sizes: str        # "60,000 train · 10,000 test" or ""
    detail: str       # source, which subset, or what Prepare will do
    files_found: bool  # a local copy waits in the data folder (Prepare will use it)
    files_help: str = ""   # a missing dataset: which files to put where, for a machine without internet


def dataset_card(name: str) -> DatasetCard:
    """A dataset's state for Home: ready, a subset (which), or missing (and whether Prepare can find files)."""
    from cnn_core.data import catalog, sources

    info, st = catalog.get_info(name), catalog.dataset_status(name)
    local = sources.find_local(catalog.files_of(name), catalog.default_data_dir(), bare=False)
    found = local is not None
    if st.state == "missing":
        if found:
            return DatasetCard(name, info.title, st.state, "not prepared", "",
                               f"Files found in {local}: Prepare decodes and caches them.", True)
        # Not an error: Prepare downloads it where there is internet. Where there is none, the files to
        # put in the data folder are said on request (files_help), not in red beside a working button.
        return DatasetCard(name, info.title, st.state, "not prepared", "",
                           "Prepare downloads it (torchvision) or reads its files from the data folder.", False,
                           st.detail)
    sizes = f"{st.n_train:,} train · {st.n_test:,} test"
    detail = st.source
    if st.state == "subset":   # the subset's description names its source already, or gets it added
        detail = st.detail if st.source in st.detail else f"{st.source} — subset: {st.detail}"
    return DatasetCard(name, info.title, st.state, st.state, sizes, detail, found)


def precision_note(amp, device: str) -> str:
    """What a run with these settings would train in here, and why: the Train form says it under its choice."""
    from cnn_core.core import devices

    if devices.device_error(device):
        return ""
    got = devices.precision(amp, devices.resolve_device(device))
    return f"Trains in **{got.label}** here: {md(got.why)}."


def precision_of(record: store.Run) -> tuple[str, str]:
    """(what a run trained in, in a word or two; why), from its record; ("", "") before it started."""
    got = record.precision           # devices.Precision.to_dict(): its dtype is already in words
    if not isinstance(got.get("amp"), bool):
        return "", ""
    return str(got.get("dtype", "")), str(got.get("why", ""))


# ---- Compare: the differing settings and what they did, as text ---------------------------------
def diff_table(records: list[store.Run], labels: dict[str, str] | None = None, outcomes: bool = True) -> pd.DataFrame:
    """Only the config fields that differ (compare.diff_fields), one column per run, as text. With
    `outcomes`, rows of what the difference did follow: test and best validation accuracy with the change
    from the first run in points (none between runs on different datasets: they measure other tasks)."""
    labels = labels or compare.unique_labels(records)
    flats = [compare.flat_config(r) for r in records]
    fields_ = compare.diff_fields(records)
    data = {labels[r.id]: [fmt_value(f.get(k)) if k in f else MISSING for k in fields_]
            for r, f in zip(records, flats)}
    frame = pd.DataFrame(data, index=fields_, columns=[labels[r.id] for r in records])
    if outcomes and records:
        numbers = compare.outcomes(records)
        extra = {}
        for key, title in (("test_acc", "→ test accuracy"), ("best_val_acc", "→ best val accuracy")):
            values = list(numbers[key])
            extra[title] = [_fmt_outcome(v, values[0], i, same) for i, (v, same)
                            in enumerate(zip(values, numbers["same_dataset"]))]
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
