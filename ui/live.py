"""The Train page's live panel: pick a run, then watch it train, redrawn every second from its files.

The run trains in its own process (cnn_core.jobs), so the panel only reads run.json and metrics.jsonl.
Which run is shown survives a reload (?run=<id> in the URL), leaving the page (session state) and
opens in a second tab on the newest run in progress.
"""
from __future__ import annotations

import streamlit as st

from cnn_core import runs, views
from ui import actions, charts, nav

PICKER_SIZE = 30      # recent finished runs offered beside every run in progress
ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:",
        "completed": ":material/check_circle:", "failed": ":material/error:",
        "cancelled": ":material/stop_circle:", "interrupted": ":material/warning:"}
SIGNATURE = "train.signature"


def _signature(run_id: str | None) -> tuple:
    """What, when it changes, needs the whole page redrawn: the runs in progress and the watched run's status."""
    from cnn_core import jobs

    active = tuple((r["id"], r["effective_status"]) for r in jobs.active_runs())
    status = None
    if run_id:
        try:
            status = runs.effective_status(runs.read_run(runs.run_dir(run_id)))
        except ValueError:
            status = "gone"
    return active, status


def first_tab() -> str:
    """The tab the page opens on: Live when the URL names a run or runs are in progress, else the tab
    this session had open last (New run at first)."""
    from cnn_core import jobs

    if st.query_params.get("run") or jobs.active_runs():
        return "Live"
    return st.session_state.get(actions.LAST_TAB) or "New run"


def picker() -> str | None:
    """The run picker (runs in progress first) and a line per run in progress; returns the run id shown."""
    from cnn_core import jobs

    all_runs = runs.list_runs()
    active = jobs.active_runs()
    ordered = active + [r for r in all_runs if r["effective_status"] not in runs.ACTIVE][:PICKER_SIZE]
    ids = [r["id"] for r in ordered]
    by_id = {r["id"]: r for r in all_runs}
    wanted = st.session_state.get(actions.WATCH) or st.query_params.get("run") \
        or st.session_state.get(actions.WATCHING)
    if wanted and wanted in by_id and wanted not in ids:
        ids.append(wanted)
    chosen = views.pick_run(ids, wanted, all_runs)
    if chosen is None:
        st.info("No runs yet. Set one up in the **New run** tab and press **Launch**; it trains here, live.")
        return None
    actions.watch(chosen)
    left, right = st.columns([3, 2], gap="large")
    left.selectbox("Run", ids, key=actions.WATCH, help="Runs in progress first, then the most recent others.",
                   format_func=lambda i: f"{views.run_label(by_id[i])} — {by_id[i]['effective_status']}")
    lines = []
    for r in active:
        where = (f"waiting, #{views.queue_position(r['id'], active)} in line"
                 if r["effective_status"] == "queued" else "training")
        lines.append(f"{ICON[r['effective_status']]} **{r.get('name')}** — {where}")
    right.markdown("**In progress**  \n" + ("  \n".join(lines) if lines else "nothing right now"))
    slots = jobs.max_jobs()
    right.caption(f"At most {slots} run{'s' if slots != 1 else ''} train at once here; a run launched while "
                  "every slot is busy waits `queued` and starts, oldest first, when one frees.")
    st.session_state[SIGNATURE] = _signature(chosen)
    return chosen


def show(run_id: str) -> None:
    """The panel; redrawn every second while the run is queued or running, drawn once otherwise."""
    try:
        status = runs.effective_status(runs.read_run(runs.run_dir(run_id)))
    except ValueError as exc:
        st.warning(f"Run {run_id} cannot be read: {exc}")
        return
    (_live_panel if status in runs.ACTIVE else _panel)(run_id)


@st.fragment(run_every=1)
def _live_panel(run_id: str) -> None:
    if _signature(run_id) != st.session_state.get(SIGNATURE):
        st.rerun(scope="app")   # the run started, ended or another run came or went: redraw the page
    _panel(run_id)


def _panel(run_id: str) -> None:
    from cnn_core import jobs

    try:
        run = views.live_run(runs.run_dir(run_id))
    except ValueError as exc:
        st.warning(f"Run {run_id} cannot be read: {exc}")
        return
    st.markdown(f"#### {run.name}\n{ICON.get(run.status, '')} **{run.status}** — "
                f"{views.STATUS_WORDS.get(run.status, '')}")
    elapsed = views.fmt_duration(run.progress.get("elapsed")) if run.progress else None
    st.progress(run.fraction, text=run.progress_text + (f" · {elapsed} elapsed" if elapsed else ""))
    if run.status == "queued":
        pos = views.queue_position(run.id, jobs.active_runs())
        st.info(f"Waiting for a training slot{f' (#{pos} in line)' if pos else ''}: at most {jobs.max_jobs()} "
                "run(s) train at once here; this one starts when a slot frees.", icon=":material/schedule:")
    _numbers(run)
    _buttons(run)
    _outcome(run)
    if run.steps.empty and run.epochs.empty:
        if run.active:
            st.caption(f"The first loss point appears after {run.record['config'].get('log_every', 20)} "
                       "training steps.")
        return
    loss, acc = st.columns(2, gap="medium")
    loss.plotly_chart(charts.loss_figure(run.steps, run.epochs), key="train.chart.loss",
                      config={"displayModeBar": False})
    if not run.epochs.empty:
        acc.plotly_chart(charts.accuracy_figure(run.epochs, run.best_epoch), key="train.chart.acc",
                         config={"displayModeBar": False})
    else:
        acc.caption("Accuracy per epoch appears when the first epoch ends.")


def _numbers(run: views.LiveRun) -> None:
    p = run.progress
    cols = st.columns(4)
    cols[0].metric("Images/s", f"{run.speed:,.0f}" if run.speed else "–", help="Training images per second "
                   "(the run's mean once it has finished).")
    cols[1].metric("ETA", views.fmt_duration(run.eta) if run.active else "–",
                   help="Time left at the current speed (evaluation not counted).")
    cols[2].metric("Learning rate", f"{p['lr']:.3g}" if p.get("lr") is not None else "–",
                   help="The optimizer's current learning rate (after the schedule).")
    best = run.best_epoch
    cols[3].metric("Best val. acc.", views.fmt_acc(run.epochs["val_acc"].max(), 1) if best is not None else "–",
                   help=(f"Highest validation accuracy so far (epoch {best}); its weights are kept in best.pt."
                         if best is not None else "Appears when the first epoch ends."))


def _buttons(run: views.LiveRun) -> None:
    if run.active:
        st.button("Stop", key="train.stop", icon=":material/stop:", on_click=actions.stop, args=(run.path,),
                  help="Saves a checkpoint and ends the run `cancelled`; Resume continues it.")
    elif run.resumable:
        st.button("Resume", key="train.resume", icon=":material/play_arrow:", type="primary",
                  on_click=actions.resume, args=(run.path,), help="Continue from the last checkpoint.")
    elif run.restartable:
        st.button("Start", key="train.restart", icon=":material/play_arrow:", type="primary",
                  on_click=actions.resume, args=(run.path, False),
                  help="It stopped before its first checkpoint: train it from the beginning.")


def _outcome(run: views.LiveRun) -> None:
    if run.status == "completed" and run.test_acc is not None:
        st.success(f"**Test accuracy {views.fmt_acc(run.test_acc)}** with the weights of the best validation "
                   f"epoch ({run.record['summary'].get('best_epoch')}).", icon=":material/check_circle:")
        nav.link("inspect", "Inspect this run: filters, feature maps, mistakes", run=run.id)
    elif run.status == "failed":
        st.error(f"The run failed: {run.error or 'no message'}")
        log = run.path / runs.LOG
        if log.is_file():
            with st.expander("Last lines of train.log"):
                st.code("\n".join(log.read_text(errors="replace").splitlines()[-30:]) or "(empty)")
