"""What the Live panel's buttons do (stop, resume, steer: learning rate, pause, continue; more epochs), and
which run the Train page watches and which tab it opens. Launch and Clone are the form's own (form.py). Each
runs as a widget callback, before the page redraws, so the page that follows already shows the result."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_core.runs import store
from cnn_core.train import jobs
from ui import nav, signin, views
from ui.train import state


def open_tab(name: str) -> None:
    """Open tab `name` (New run or Live) on the next draw."""
    st.session_state[state.TAB] = st.session_state[state.LAST_TAB] = name


def watch(run_id: str) -> None:
    st.session_state[state.WATCH] = st.session_state[state.WATCHING] = run_id
    st.query_params["run"] = run_id


def stop(path: Path) -> None:
    """Ask the run to stop; it saves a checkpoint between steps and ends `cancelled`. Said on the live panel
    while it stops (steering_notice), not as a page message: the button is in the ticking panel, which
    redraws alone, so a page message would show only at the next whole-page draw, after the run ended."""
    try:
        jobs.cancel(path, by=signin.me())
    except ValueError as exc:          # people.NotYours: another's run (the panel shows no Stop for one)
        _notice(path, 0, error=str(exc))
        return
    _notice(path, 0, stop=True)


def _launch(path: Path, resume: bool, done: str, failed: str) -> None:
    """Start the run's process; then watch it on the Live tab and say `done`, or say why it could not."""
    try:
        jobs.launch(path, resume=resume, by=signin.me())
    except (ValueError, OSError) as exc:
        nav.flash(state.FLASH, "error", f"{failed}: {views.md(exc)}")
        return
    watch(Path(path).name)
    open_tab("Live")
    nav.flash(state.FLASH, "success", done)


def resume(path: Path, from_checkpoint: bool = True) -> None:
    _launch(path, from_checkpoint, "Resumed from the last checkpoint." if from_checkpoint else "Started again.",
            "Could not resume")


def steer(path: Path, steers: int, **ask) -> None:
    """A steering request (runs.steer): the run takes it at its next step; the live panel says what was asked
    and, once taken, from which step (views.steering_lines). `steers`: the learning-rate changes the run
    has logged so far. Keyed values (a widget's) are read from the session: steer(path, n, lr=state.STEER_LR)."""
    ask = {k: st.session_state[v] if isinstance(v, str) else v for k, v in ask.items()}
    try:
        store.steer(path, by=signin.me(), **ask)
    except ValueError as exc:
        _notice(path, steers, error=str(exc))
        return
    _notice(path, steers, **ask)


def _notice(path: Path, steers: int, **ask) -> None:
    notice = st.session_state.get(state.STEER_NOTICE)
    st.session_state[state.STEER_NOTICE] = views.steering_notice(notice, Path(path).name, steers, **ask)


def more(path: Path, key: str) -> None:
    """Train the finished or stopped run st.session_state[key] epochs more, from its checkpoint."""
    n = int(st.session_state[key])
    try:
        total = jobs.more_epochs(path, n, by=signin.me())
    except ValueError as exc:
        nav.flash(state.FLASH, "error", f"Could not go on: {views.md(exc)}")
        return
    _launch(path, True, f"Training {views.count(n, 'more epoch', 'more epochs')} ({total} in all) from the checkpoint.", "Could not go on")
