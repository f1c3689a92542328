"""The Train page's live panel: pick a run, then watch it train, redrawn from its files.

The run trains in its own process (cnn_core.train.jobs), so the panel only reads run.json and metrics.jsonl.
Which run is shown survives a reload (?run=<id> in the URL), leaving the page (session state) and
opens in a second tab on the newest run in progress.

A watched run shares the machine with the server and the browser, and on a 2-core CPU a training job
loses more speed than they take (two threads wait for each other whenever one is preempted). So the
panel is built to be cheap, as bench/page_vs_cli.py measures: fragments, the status, progress and
numbers every REFRESH_S as one block of plain HTML (the run's files read once a tick, the controls below
the charts drawn from that same read), the charts every CHART_REFRESH_S (every REFRESH_S for a run's first
EARLY_POINTS loss points); no whole-page redraw when the run starts training; no fading of elements being redrawn (NO_FADE); charts drawn empty
while the run starts, so their first, costly draw is done before training is.
"""
from __future__ import annotations

import html
import math

import streamlit as st

from cnn_core.core import people
from cnn_core.runs import owners, store
from cnn_core.runs.metrics_log import CURVES
from cnn_core.train import jobs
from ui import nav, signin, views
from ui.figures import curves
from ui.train import actions, state

SMOOTHING = 0.6       # the loss chart's smoothing until the person moves its slider
PICKER_SIZE = 30      # recent finished runs offered beside every run in progress
REFRESH_S = 2         # status, progress and numbers of a run in progress (one HTML block)
CHART_REFRESH_S = 8   # its loss and accuracy charts (a changed chart costs the browser ~70 ms)
EARLY_POINTS = 30     # until a run has logged this many loss points, its charts redraw every REFRESH_S: the
                      # first drop of the loss is what a learner watches, and it keeps up with the step counter
ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:", "paused": ":material/pause:",
        "completed": ":material/check_circle:", "failed": ":material/error:",
        "cancelled": ":material/stop_circle:", "interrupted": ":material/warning:"}
NOTICE_ICON = {"info": ":material/tune:", "success": ":material/check:", "error": ":material/error:"}
# While a run is watched, elements being redrawn do not fade. Streamlit dims an element whose redraw
# takes over 0.5 s (a CSS opacity transition to 0.33 over 1 s); with a run training on every core the
# redraw often takes that long, and the fading cost the browser ~15 % of a core, which the training lost.
NO_FADE = ('<style>[data-testid="stElementContainer"][data-stale="true"] '
           '{opacity: 1 !important; transition: none !important}</style>')


def _signature(run_id: str, status: str | None, active: list[store.Run]) -> tuple:
    """What, when it changes, needs the whole page redrawn: the other runs in progress (the picker lists
    them) and whether the watched run is still in progress (its buttons and outcome change when it ends).
    Its own queued -> running is redrawn by the ticking panel: a whole-page redraw then would land on the
    run's first seconds of training."""
    others = tuple((r.id, r.effective_status) for r in owners.visible(active, signin.me()) if r.id != run_id)
    return others, status in store.ACTIVE


def _listing(run_id: str) -> tuple[store.Run | None, list[store.Run]]:
    """One read of the runs folder: the watched run (None when it went or cannot be read) and the runs
    in progress, oldest first (everyone's: a queued run's place in line counts them all)."""
    all_runs = store.list_runs()
    watched = next((r for r in owners.visible(store.readable(all_runs), signin.me()) if r.id == run_id), None)
    return watched, jobs.in_progress(all_runs)


def first_tab() -> str:
    """The tab the page opens on: Live when the URL names a run or runs are in progress, else the tab
    this session had open last (New run at first)."""
    if st.query_params.get("run") or owners.visible(jobs.active_runs(), signin.me()):
        return "Live"
    return st.session_state.get(state.LAST_TAB) or "New run"


def picker() -> tuple[store.Run, list[store.Run]] | None:
    """The run picker (runs in progress first) over the runs this person may open (in class mode: owners.visible;
    another's run named in ?run= is as unknown); the run shown and every run in progress, or None."""
    everyone = store.list_runs()
    all_runs = owners.visible(everyone, signin.me())
    active = jobs.in_progress(everyone)
    ordered = jobs.in_progress(all_runs) + [r for r in all_runs if r.effective_status not in store.ACTIVE][:PICKER_SIZE]
    ids = [r.id for r in ordered]
    by_id = {r.id: r for r in all_runs}
    wanted = st.session_state.get(state.WATCH) or st.query_params.get("run") \
        or st.session_state.get(state.WATCHING)
    if wanted and wanted in by_id and wanted not in ids:
        ids.append(wanted)
    chosen = views.pick_run(ids, wanted, all_runs)
    if chosen is None:
        st.info("No runs yet. Set one up in the **New run** tab and press **Launch**; it trains here, live.")
        return None
    actions.watch(chosen)
    # no status in the label but `corrupt`, which stays: a keyed selectbox keeps the label it first drew
    # while the run moves on (the status is in the lines below and on the panel)
    st.selectbox("Run", ids, key=state.WATCH, help="Runs in progress first, then the most recent others.",
                 format_func=lambda i: views.run_label(by_id[i]) + (" — corrupt" if by_id[i].corrupt else ""))
    st.session_state[state.SIGNATURE] = _signature(chosen, by_id[chosen].effective_status, active)
    if by_id[chosen].corrupt:
        st.warning(f"Run {chosen} cannot be read: {views.md(by_id[chosen].error)}")
        return None
    return by_id[chosen], active


def show(record: store.Run, active: list[store.Run]) -> None:
    """The panel, top down: status and numbers, the charts (in view at 1440x900 after Launch), then the
    controls and the runs in progress; redrawn by fragments while the run is queued or running, drawn once
    otherwise (with its outcome)."""
    run = views.live_run(record)
    if run.active:
        st.html(NO_FADE)
        st.session_state[state.TICK] = run, active
        fast = len(run.steps) < EARLY_POINTS
        st.session_state[state.CHARTS_FAST] = fast
        _ticking(run.id)
        st.fragment(_charts_of, run_every=REFRESH_S if fast else CHART_REFRESH_S)(run.id)
        _ticking_controls(run.id)
    else:
        _head(run, [])
        _outcome(run)
        _numbers_and_progress(run)
        _charts(run)
        _buttons(run)
        _in_progress(active)


@st.fragment(run_every=REFRESH_S)
def _ticking(run_id: str) -> None:
    record, active = _listing(run_id)      # the runs folder, read once per tick
    if record is None or _signature(run_id, record.effective_status, active) != st.session_state.get(state.SIGNATURE):
        st.rerun(scope="app")   # the run ended or went, or another run came or went: redraw the page
    points = record.progress.get("step", 0) // max(int(record.config.get("log_every") or 20), 1)
    if st.session_state.get(state.CHARTS_FAST) and points >= EARLY_POINTS:
        st.session_state[state.CHARTS_FAST] = False
        st.rerun(scope="app")   # once a run: its charts go from every REFRESH_S to every CHART_REFRESH_S
    run = views.live_run(record)
    st.session_state[state.TICK] = run, active      # the controls' fragment draws from this read
    _head(run, active)
    _numbers_and_progress(run)


def _charts_of(run_id: str) -> None:
    """The watched run's charts, redrawn on their own clock (a fragment: show() sets how often)."""
    try:
        _charts(views.live_run(store.read_run(store.run_dir(run_id))))
    except ValueError:
        pass                    # the run went: the other fragment redraws the page


@st.fragment(run_every=REFRESH_S)
def _ticking_controls(run_id: str) -> None:
    """Stop, Pause or Continue, the new rate; and the runs in progress, below the charts: from the ticking
    panel's latest read of the run (at most REFRESH_S old), not a second read of its files."""
    run, active = st.session_state.get(state.TICK, (None, []))
    if run is None or run.id != run_id:
        return                  # another run is watched now: the page redraws
    _buttons(run)
    _in_progress(active)


def _in_progress(active: list[store.Run]) -> None:
    """A line per run in progress, waiting or training (in class mode those this person may open, and how many
    others'): redrawn with the ticking panel, since the watched run's own queued -> running redraws only that
    (_signature)."""
    lines, seen = [], owners.visible(active, signin.me())
    for r in seen:
        where = (f"waiting, #{views.queue_position(r.id, active)} in line" if r.effective_status == "queued"
                 else "paused" if r.effective_status == "paused" else "training")
        lines.append(f"{ICON[r.effective_status]} **{views.md(r.name)}** — {where}")
    if hidden := len(active) - len(seen):
        lines.append(f"and {views.count(hidden, 'run')} of others in the class")
    st.markdown("**In progress:** " + ("  \n".join(lines) if lines else "nothing right now"))
    st.caption(f"At most {views.runs_at_once(jobs.slots_for(signin.me()))} at once here; a run launched while every "
               "slot is busy waits `queued` and starts, oldest first, when one frees.")


def _head(run: views.LiveRun, active: list[store.Run]) -> None:
    """Name and status; for a queued run, its place in line among the runs in progress (`active`)."""
    st.markdown(f"**{views.md(run.name)}** · {ICON.get(run.status, '')} **{run.status}** — "
                f"{views.STATUS_WORDS.get(run.status, '')}")
    if run.status == "queued":
        pos = views.queue_position(run.id, active)
        st.info(f"Waiting for a training slot{f' (#{pos} in line)' if pos else ''}: at most "
                f"{views.runs_at_once(jobs.slots_for(signin.me()))} at once here; this one starts when a slot frees.",
                icon=":material/schedule:")


def _learning_rate(run: views.LiveRun, lr: float | None) -> tuple[str, str, str, str]:
    """The rate now while it trains; once it has ended, the rate its schedule ended on, and the base rate
    it started from (a finished cosine run ends at 0, which alone reads like a mistake)."""
    if lr is None:
        return "Learning rate", "–", "Appears with the first step.", ""
    if run.active or run.base_lr is None or math.isclose(lr, run.base_lr):
        return "Learning rate", f"{lr:.3g}", "The optimizer's current learning rate (after the schedule).", ""
    schedule = run.record.config.get("schedule", "none")
    return ("Learning rate", f"{lr:.3g}",
            "The rate at the run's last step, after its schedule; beneath it, the base rate it was set (or "
            "steered) to. The learning-rate chart below draws every step.",
            f"at the end ({schedule} schedule), base {run.base_lr:.3g}")


def _numbers_and_progress(run: views.LiveRun) -> None:
    """The progress bar and four numbers (images/s, ETA, learning rate, best validation accuracy) as one
    block of plain HTML: one element to redraw per tick, and no animation (st.progress animated, ~60 ms
    of browser time per redraw)."""
    elapsed = views.fmt_duration(run.progress.get("elapsed")) if run.progress else None
    text = run.progress_text + (f" · {elapsed} elapsed" if elapsed else "")
    pct = round(100 * min(max(run.fraction, 0.0), 1.0), 1)
    lr, best = run.progress.get("lr"), run.best_epoch
    dtype, why = views.precision_of(run.record)
    numbers = [
        ("Images/s", f"{run.speed:,.0f}" if run.speed else "–",
         "Training images per second (the run's mean once it has finished)." + (f" In {dtype}: {why}." if why else ""),
         f"in {dtype} on {run.record.device}" if dtype and run.record.device else ""),
        ("ETA", views.fmt_duration(run.eta) if run.active else "–",
         "Time left at the current speed (evaluation not counted); a pause stops its clock.",
         "held while paused" if run.status == "paused" else ""),
        _learning_rate(run, lr),
        ("Best val. acc.", views.fmt_acc(run.epochs["val_acc"].max(), 1) if best is not None else "–",
         f"Highest validation accuracy so far (epoch {best}); its weights are kept in best.pt."
         if best is not None else "Appears when the first epoch ends.", ""),
    ]
    cells = "".join(
        f'<div title="{_h(tip)}"><div style="font-size:0.875rem">{label}</div>'
        f'<div style="font-size:2rem;line-height:1.3">{_h(value)}</div>'
        + (f'<div style="font-size:0.8rem;opacity:0.7">{_h(note)}</div>' if note else "") + '</div>'
        for label, value, tip, note in numbers)
    st.markdown(
        f'<div role="progressbar" aria-label="Training progress" aria-valuenow="{pct}" aria-valuemin="0" '
        f'aria-valuemax="100" data-testid="runProgress" style="margin:0.25rem 0 0.6rem">'
        f'<div style="font-size:0.875rem;margin-bottom:0.3rem">{_h(text)}</div>'
        f'<div style="background:rgba(128,128,128,0.25);border-radius:0.5rem;height:0.5rem;overflow:hidden">'
        f'<div style="background:#2e7d32;width:{pct}%;height:100%"></div></div></div>'
        f'<div data-testid="runNumbers" style="display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));'
        f'gap:0.5rem 1rem;margin-bottom:0.5rem">{cells}</div>', unsafe_allow_html=True)


def _h(text) -> str:
    """A value (from run.json: an imported run's progress, its schedule) as text of the panel's HTML block:
    escaped, on one line, since a blank line would end the block and Markdown would read the rest."""
    return html.escape(" ".join(str(text).splitlines()))


def _charts(run: views.LiveRun) -> None:
    """Loss (log scale and smoothing on request) and accuracy, side by side; the learning rate; then every
    other metric the run logs (metrics_log.CURVES)."""
    if run.steps.empty and run.epochs.empty and not run.active:
        return
    smoothing = st.session_state.get(state.SMOOTHING, SMOOTHING)    # its slider is drawn below the charts
    loss_fig, acc_fig, lr_fig = _figures(run, smoothing, bool(st.session_state.get(state.LOG_SCALE)))
    loss, acc = st.columns(2, gap="medium")
    loss.plotly_chart(loss_fig, key=state.CHART_LOSS, config=curves.CONFIG)
    acc.plotly_chart(acc_fig, key=state.CHART_ACC, config=curves.CONFIG)
    with acc:          # the loss chart's options beside the learning rate, under the accuracy
        a, b = st.columns([1, 2], vertical_alignment="center")
        a.toggle("Log scale", key=state.LOG_SCALE, help="The loss on a logarithmic axis: late, small changes "
                 "show, and a spike no longer squashes the rest.")
        b.slider("Smoothing", 0.0, 0.99, SMOOTHING, 0.01, key=state.SMOOTHING,
                 help="Exponential moving average of the logged loss, as TensorBoard draws it "
                      "(0 = the raw points). The raw points stay behind it, faint.")
    loss.plotly_chart(lr_fig, key=state.CHART_LR, config=curves.CONFIG)
    more = [m for m in CURVES if m not in ("loss", "acc") and f"val_{m}" in run.epochs]   # charted above
    for i, metric in enumerate(more):
        if i % 2 == 0:
            row = st.columns(2, gap="medium")
        row[i % 2].plotly_chart(curves.metric_figure(run.epochs, metric), key=state.chart(metric), config=curves.CONFIG)


def _figures(run: views.LiveRun, smoothing: float, log: bool):
    """The two figures; the same objects again while nothing they show has changed."""
    key = (run.id, smoothing, log, run.status, len(run.steps), len(run.epochs), len(run.events))
    cached = st.session_state.get(state.CHARTS)
    if cached is None or cached["key"] != key:
        # Drawn empty, with a word, before the first point: the browser then builds each chart while the
        # run is still starting (a first draw costs several times an update), not in its first seconds.
        loss = curves.loss_figure(run.steps, run.epochs, smoothing=smoothing, log=log)
        if run.steps.empty:
            curves.waiting(loss, "The first loss point appears after " + views.plot_text(
                                     views.count(run.record.config.get("log_every", 20), "training step")))
        acc = curves.accuracy_figure(run.epochs, run.best_epoch, chance=store.chance_acc(run.record),
                                     stopped=run.record.summary.get("stopped_early"))
        if run.epochs.empty:
            curves.waiting(acc, "Accuracy appears when the first epoch ends")
        cached = {"key": key, "figures": (loss, acc, curves.lr_figure(run.steps, run.events))}
        st.session_state[state.CHARTS] = cached
    return cached["figures"]


def _buttons(run: views.LiveRun) -> None:
    _steering(run)
    if not people.may_change(run.record.owner, signin.me()):     # a classmate's shared run, the teacher's
        st.caption(views.looking_only(run.record.owner, "watch"))
        return
    if run.active:
        steers = int((run.events["kind"] == "steer").sum()) if run.events is not None and len(run.events) else 0
        a, b, c, d = st.columns([1, 1, 1.4, 1], vertical_alignment="bottom")
        a.button("Stop", key=state.STOP, icon=":material/stop:", on_click=actions.stop, args=(run.path,),
                 help="Saves a checkpoint and ends the run `cancelled`; Resume continues it.", width="stretch")
        if run.status == "paused":
            b.button("Continue", key=state.CONTINUE, icon=":material/play_arrow:", type="primary",
                     on_click=actions.steer, args=(run.path, steers), kwargs={"pause": False}, width="stretch")
        elif run.status == "running":
            b.button("Pause", key=state.PAUSE, icon=":material/pause:", on_click=actions.steer,
                     args=(run.path, steers), kwargs={"pause": True}, width="stretch",
                     help="Holds the run between two steps (a checkpoint is saved; the model stays in memory).")
        if run.status in ("running", "paused"):
            base = float(run.base_lr or 0.01)
            c.number_input("New learning rate", min_value=1e-6, max_value=10.0, value=base, step=base / 10,
                           format="%g", key=state.STEER_LR,
                           help="The base rate the schedule scales, from the next step on; drawn on the "
                                "learning-rate chart and kept in metrics.jsonl, so resume replays it.")
            d.button("Set rate", key=state.STEER, icon=":material/tune:", on_click=actions.steer,
                     args=(run.path, steers), kwargs={"lr": state.STEER_LR}, width="stretch")
        return
    if run.resumable:
        st.button("Resume", key=state.RESUME, icon=":material/play_arrow:", type="primary",
                  on_click=actions.resume, args=(run.path,), help="Continue from the last checkpoint.")
    elif run.restartable:
        st.button("Start", key=state.RESTART, icon=":material/play_arrow:", type="primary",
                  on_click=actions.resume, args=(run.path, False),
                  help="It stopped before its first checkpoint: train it from the beginning.")
    if run.has_checkpoint and run.status in store.FINISHED:
        a, b, _ = st.columns([1, 1, 2], vertical_alignment="bottom")
        a.number_input("More epochs", 1, 1000, 5, key=state.MORE_N,
                       help="The same run goes on from its checkpoint for this many epochs; its curves continue.")
        b.button("Train more", key=state.MORE, icon=":material/fast_forward:", on_click=actions.more,
                 args=(run.path, state.MORE_N), width="stretch")


def _steering(run: views.LiveRun) -> None:
    """What was asked of the run from this panel (Set rate, Pause, Continue, Stop) and whether it was taken;
    the notice goes once the run has ended or another run is watched."""
    lines = views.steering_lines(st.session_state.get(state.STEER_NOTICE), run)
    if not lines:
        st.session_state.pop(state.STEER_NOTICE, None)
    for kind, text in lines:
        getattr(st, kind)(text, icon=NOTICE_ICON[kind])


def _outcome(run: views.LiveRun) -> None:
    if run.status == "completed" and run.test_acc is not None:
        best = run.record.summary.get("best_epoch")
        if note := store.chance_note(run.record):
            st.warning(f"{note[0].upper()}{note[1:]}", icon=":material/warning:")
        else:
            st.success(f"**Test accuracy {views.fmt_acc(run.test_acc)}** with the weights of the best "
                       f"validation epoch ({best}).", icon=":material/check_circle:")
        if reason := run.record.summary.get("stop_reason"):
            st.info(f"Stopped early: {views.md(reason)}.", icon=":material/front_hand:")
        nav.link("inspect", "Inspect this run: filters, feature maps, mistakes", run=run.id)
    elif run.status == "failed":
        st.error(f"The run failed: {views.md(run.error or 'no message')}")
        log = run.path / store.LOG
        if log.is_file():
            with st.expander("Last lines of train.log"):
                st.code("\n".join(log.read_text(errors="replace").splitlines()[-30:]) or "(empty)")
