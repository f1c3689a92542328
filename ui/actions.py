"""What the Train page's buttons do: launch, stop, resume, clone. Each runs as a widget callback,
before the page redraws, so the page that follows already shows the result."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import train_form

WATCH = "train.watch"          # the run-picker widget
WATCHING = "train.watching"    # the watched run, kept while the picker is off screen (other pages)
FLASH = "train.flash"          # (kind, message) shown once at the top of the open tab
TAB = "train.tab"              # the New run / Live tabs
LAST_TAB = "train.last_tab"    # the tab last open, kept while the page is off screen


def flash(kind: str, message: str) -> None:
    st.session_state[FLASH] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind:
        getattr(st, kind)(message)


def open_tab(name: str) -> None:
    """Open tab `name` (New run or Live) on the next draw."""
    st.session_state[TAB] = st.session_state[LAST_TAB] = name


def watch(run_id: str) -> None:
    st.session_state[WATCH] = st.session_state[WATCHING] = run_id
    st.query_params["run"] = run_id


def launch() -> None:
    """Create the run from the form and start it; refuse while the form has errors."""
    from cnn_core import jobs, models, runs

    from ui import views
    from cnn_core.config import ConfigError

    config, errors, name = train_form.current()
    if errors:
        arch = models.ARCHITECTURES.get(config.arch) if isinstance(config.arch, str) else None
        flash("error", "Not launched: fix " + ", ".join(views.error_labels(errors, arch)) + " first.")
        return
    try:
        path = runs.create_run(config, name or views.default_name(config))
    except ConfigError as exc:
        flash("error", "Not launched: " + "; ".join(f"{k}: {v}" for k, v in exc.errors.items()))
        return
    except (ValueError, OSError) as exc:
        flash("error", f"Not launched: {exc}")
        return
    try:
        jobs.launch(path)
    except (ValueError, OSError) as exc:   # never leave a run that looks queued but has no process
        runs.update_run(path, status="failed", error=f"could not start the training process: {exc}")
        flash("error", f"Run {path.name} could not start: {exc}")
        return
    watch(path.name)
    open_tab("Live")
    flash("success", f"Launched run {path.name}.")


def stop(path: Path) -> None:
    """Ask the run to stop; it saves a checkpoint between steps and ends `cancelled`."""
    from cnn_core import jobs

    was = jobs.cancel(path)
    flash("info", f"Stop requested (the run was {was}); it saves a checkpoint and stops within a step.")


def resume(path: Path, from_checkpoint: bool = True) -> None:
    from cnn_core import jobs

    try:
        jobs.launch(path, resume=from_checkpoint)
    except (ValueError, OSError) as exc:
        flash("error", f"Could not resume: {exc}")
        return
    watch(Path(path).name)
    open_tab("Live")
    flash("success", "Resumed from the last checkpoint." if from_checkpoint else "Started again.")


def clone(run_id: str | None) -> None:
    """Fill the form with a saved run's settings (DIGITS' 'Clone job')."""
    from cnn_core import runs

    from ui import views

    if not run_id:
        return
    try:
        record = runs.read_run(runs.run_dir(run_id))
        config, dropped = views.clone_config(record)
    except (ValueError, TypeError) as exc:
        flash("error", f"Could not clone {run_id}: {exc}")
        return
    given = (record.get("config") or {}).get("arch_params")
    odd = [f"arch_params: {given!r:.60} is not an object of parameter values; the defaults are used"] \
        if given is not None and not isinstance(given, dict) else []
    notes = odd + train_form.load_config(config) + [f"{d}: a field unknown to this version" for d in dropped]
    st.session_state["train.clone_note"] = ("warning" if notes else "success", f"Form filled from run {run_id}."
                                            + (" Not carried over: " + "; ".join(notes) + "." if notes else ""))
    open_tab("New run")
