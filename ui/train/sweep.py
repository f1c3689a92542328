"""The Train page's Sweep tab: the New run form's values as the base, a row per swept field, Launch, the
trials as they go; and the pieces Compare's Sweeps section shows too (the picker, a sweep's trials by score).
The work is cnn_core.sweeps.ledger's."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from cnn_core.config import TrainConfig, field_label
from cnn_core.core import people
from cnn_core.core.settings import specs
from cnn_core.runs import owners
from cnn_core.sweeps import ledger
from ui import nav, signin, views
from ui.train import state

# The settings a sweep can vary, by the label the New run form shows them with (the field ids are the CLI's).
SWEPT = {field_label(name): name for name in specs(TrainConfig) if name not in ("arch_params", "dataset")}
EXAMPLES = {"Grid": pd.DataFrame([{"field": field_label("lr"), "values": "0.01,0.03,0.1"}]),   # a row more: every combination
            "Sample": pd.DataFrame([{"field": field_label("lr"), "values": "log:0.003:0.3"},
                                    {"field": field_label("label_smoothing"), "values": "0:0.2"}])}


def _space(rows: pd.DataFrame, sample: bool) -> tuple[dict, dict]:
    """The grid or the sampled ranges of the rows (a setting by its label, its values as text)."""
    items = [f"{SWEPT.get(r.field, r.field)}={r['values']}" for _, r in rows.dropna().iterrows()
             if str(r["values"]).strip()]
    return ({}, ledger.parse_sample(items)) if sample else (ledger.parse_grid(items), {})


def trials_frame(sweep: ledger.Sweep) -> pd.DataFrame:
    """One row per trial, best score first: number, status, score, the swept values, why it stopped."""
    rows = [{"trial": t["number"], "status": t["status"], "score": t.get("score"), **t["params"],
             "why": t.get("reason") or "", "run": t.get("run")} for t in sweep.runs]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    best = sweep.best()
    frame.insert(1, "best", [bool(best) and t == best["number"] for t in frame["trial"]])
    return frame.sort_values("score", ascending=sweep.direction == "minimize", na_position="last")


def sweep_tab(config, errors: dict) -> None:
    """The base is the New run tab's form; here, what to vary and how many trials."""
    st.caption("A sweep launches many runs from the New run tab's settings, each with other values of the "
               "fields below: every combination of listed values (a grid), or values drawn from ranges. Each "
               "trial is an ordinary run: every page opens it.")
    if errors:
        st.warning("Fix the New run tab's settings first: " + ", ".join(errors), icon=":material/block:")
        return
    mode = st.segmented_control("Space", ["Grid", "Sample"], default="Grid", key=state.SWEEP_MODE) or "Grid"
    st.caption("Grid: values separated by commas (0.01,0.03,0.1). Sample: LOW:HIGH, log:LOW:HIGH, or a list "
               "of choices. Pick each setting by its name in the New run form.")
    rows = st.data_editor(EXAMPLES[mode], num_rows="dynamic", key=state.sweep_rows(mode), hide_index=True,
                          width="stretch", column_config={
        "field": st.column_config.SelectboxColumn("setting", options=list(SWEPT), required=True),
        "values": st.column_config.TextColumn("values or range", required=True)})
    a, b, c, d = st.columns(4)
    trials = a.number_input("Trials", 1, ledger.MAX_TRIALS, 8, key=state.SWEEP_TRIALS, disabled=mode == "Grid",
                            help="How many to draw (a grid has as many as its combinations).")
    objective = b.selectbox("Objective", list(ledger.OBJECTIVES), key=state.SWEEP_OBJECTIVE,
                            format_func=lambda o: ledger.OBJECTIVES[o][1])
    prune = c.selectbox("Stop poor trials", list(ledger.PRUNERS), key=state.SWEEP_PRUNE,
                        help="median: a trial below the median of earlier ones at the same epoch stops; asha: "
                             "successive halving. Stopped trials show why.")
    backend = d.selectbox("Where", list(ledger.BACKENDS), key=state.SWEEP_BACKEND,
                          help="local: this machine's queue. ray: tasks on a Ray cluster (or a local Ray).")
    cluster = _cluster_picker(disabled=backend != "ray")
    if st.button("Launch sweep", key=state.SWEEP_LAUNCH, type="primary", icon=":material/rocket_launch:"):
        try:
            grid, sample = _space(rows, mode == "Sample")
            sweep = ledger.create(config, grid, sample, int(trials), objective, "tpe", prune, backend,
                                  cluster=cluster if backend == "ray" else None, by=signin.me())
            ledger.launch(sweep, by=signin.me())
            nav.flash(state.SWEEP_FLASH, "success", f"Launched sweep {sweep.id}: {sweep.trials} trials.")
        except ValueError as exc:   # ConfigError and a learner's limits too: each problem, before anything launched
            errors_ = getattr(exc, "errors", None)
            why = "; ".join(f"{k}: {v}" for k, v in errors_.items()) if errors_ else exc
            nav.flash(state.SWEEP_FLASH, "error", "Not launched: " + views.md(why))   # values of a cloned run
        st.rerun()
    nav.show_flash(state.SWEEP_FLASH)
    live()


def _cluster_picker(disabled: bool) -> str | None:
    """The Ray cluster, among those the server is configured with (CNN_RAY_ADDRESSES) or a local Ray
    instance: a name the library resolves, never an address typed here. None: a local Ray instance."""
    try:
        names = list(ledger.ray_addresses())
    except ValueError as exc:          # the server's setting is wrong: say so, offer the local instance
        st.error(str(exc), icon=":material/error:")
        names = []
    local = ""
    name = st.selectbox("Ray cluster", [local, *names], key=state.SWEEP_CLUSTER, disabled=disabled,
                        format_func=lambda n: n or "a local Ray instance",
                        help=f"The clusters this server was started with ({ledger.RAY_ADDRESSES_ENV}=NAME=HOST:PORT,"
                             "... where the dashboard starts), or a Ray instance started on this machine.")
    return name or None


def picked(key: str) -> ledger.Sweep | None:
    """A "Sweeps" heading and a picker over the sweeps this person may open (owners.visible), newest first (name
    and id); the sweep chosen, or None when there is none."""
    by_id = {s.id: s for s in owners.visible(ledger.list_sweeps(), signin.me())}
    if not by_id:
        return None
    st.subheader("Sweeps")
    # no status in the label: a selectbox keeps the label it first drew while the sweep moves on
    sid = st.selectbox("Sweep", list(by_id), key=key, format_func=lambda i: f"{by_id[i].name} · {i}")
    return by_id[sid]


@st.fragment(run_every=2.0)
def live() -> None:
    """The chosen sweep's trials as they go."""
    if sweep := picked(state.SWEEP_PICK):
        show(sweep)


def show(sweep: ledger.Sweep, actions: bool = True) -> None:
    """Its status and best trial, its trials by score; with `actions` (the Sweep tab), Cancel and Resume, for
    whoever may change it."""
    status = ledger.effective_status(sweep)
    actions = actions and people.may_change(sweep.owner, signin.me())
    best = sweep.best()
    st.markdown(f"**{status}** · {len(sweep.runs)} of {sweep.trials} trials started · "
                f"{ledger.OBJECTIVES[sweep.objective][1]}" + (f" · best: trial #{best['number']}, "
                                                              f"{best['score']:.4f}" if best else ""))
    if sweep.error:
        st.error(sweep.error, icon=":material/error:")
    frame = trials_frame(sweep)
    if not frame.empty:
        st.dataframe(frame, hide_index=True, width="stretch",
                     column_config={"best": st.column_config.CheckboxColumn("best")})
    if actions and status in ledger.ACTIVE and st.button("Cancel sweep", key=state.sweep_cancel(sweep.id)):
        _act(lambda: ledger.cancel(sweep.id, by=signin.me()))
    if actions and status in ledger.RESUMABLE and st.button(
            "Resume sweep", key=state.sweep_resume(sweep.id), icon=":material/play_arrow:",
            help="Its driver stopped. Trials that ended count as they ended; the others go on."):
        _act(lambda: ledger.launch(sweep, resume=True, by=signin.me()))


def _act(action) -> None:
    """Cancel or Resume, then the page again; a refusal (people.NotYours, a learner's limits) is said there."""
    try:
        action()
    except ValueError as exc:
        nav.flash(state.SWEEP_FLASH, "error", views.md(exc))
    st.rerun()
