"""Compare: saved runs side by side (table, overlaid curves, config diff, hyper-parameters vs accuracy),
and runs you can take away (rename, note, delete, download, ONNX / TorchScript export, import)."""
from __future__ import annotations

import streamlit as st

from cnn_core.analysis import compare
from cnn_core.runs import owners, store
from cnn_core.runs.metrics_log import CURVES
from ui import nav, signin, views
from ui.compare import robustness, state
from ui.compare import widgets as w
from ui.figures import curves as figures

st.title("Compare runs")
st.caption("The tutorials change one thing at a time (width, dropout, batch norm, depth). Pick runs to see "
           "which choice helped, by how much, and where their curves part.")
nav.show_flash(state.FLASH)

records = owners.visible(store.list_runs(), signin.me())      # in class mode: what this person may open
readable = store.readable(records)            # what can be compared; the rest is listed as corrupt
by_id = {r.id: r for r in readable}
labels = compare.unique_labels(records)

if not records:
    st.info("No runs yet. Train one on the Train page, or import a run made elsewhere below.")
else:
    table = compare.runs_table(records)
    if chance := compare.at_chance(readable):
        st.warning(f"{len(chance)} run(s) finished at chance level, no better than guessing: "
                   + "; ".join(f"**{views.md(labels[r.id])}** ({r.summary['test_acc']:.2%})" for r in chance[:5])
                   + f". In each, {store.CHANCE_ADVICE}", icon=":material/warning:")
    if unreadable := [r for r in records if r.corrupt]:
        st.warning(f"{len(unreadable)} run(s) cannot be read (status corrupt in the table): "
                   + "; ".join(f"{r.id}: {views.md(r.error)}" for r in unreadable[:5]), icon=":material/warning:")
    shown = w.filters(table)
    st.caption(f"{len(shown)} of {views.count(len(table), 'run')} · click a column header to sort · tick rows to compare")
    picked = [by_id[i] for i in w.runs_table(shown, list(table["id"]), labels) if i in by_id]

    # ---- curves ---------------------------------------------------------------------------------
    st.subheader("Curves")
    if not picked:
        st.info("Pick two or more runs (tick their rows, or choose them above) to overlay their curves.")
    else:
        c1, c2 = st.columns(2)
        granularity = c1.radio("Points", ["epoch", "step"], horizontal=True, key=state.GRANULARITY,
                               format_func={"epoch": "per epoch", "step": "per logged step"}.get)
        x = c2.radio("x-axis", ["epoch", "time"], horizontal=True, key=state.X,
                     format_func={"epoch": "epochs", "time": "wall time"}.get)
        curves = compare.curves_frame(picked, labels)
        if curves.empty:
            st.info("The runs picked have no finished epoch or logged step yet.")
        else:
            for i, metric in enumerate(CURVES):             # loss and accuracy side by side, then any other
                if i % 2 == 0:
                    row = st.columns(2)
                row[i % 2].plotly_chart(figures.runs_curves_figure(curves, metric, granularity, x),
                                        key=state.curve(metric))

    # ---- config diff ----------------------------------------------------------------------------
    st.subheader("What differs")
    if len(picked) < 2:
        st.caption("Pick at least two runs to see the config fields that differ between them.")
    else:
        diff = views.diff_table(picked, labels)
        if len(datasets := compare.datasets_of(picked)) > 1:
            st.info(f"These runs are on different datasets ({', '.join(map(views.md, datasets))}): their "
                    "accuracies measure different tasks, so no change in points is shown between them.",
                    icon=":material/info:")
        elif len(compare.diff_fields(picked)) == 0:
            st.info("These runs share every config field: any gap between them comes from the machine, "
                    "the library versions or chance, not from a choice.")
        st.table(views.md_table(diff))           # st.table renders Markdown: names and values escaped

    # ---- robustness: how hard each is to fool -----------------------------------------------------
    if picked:
        robustness.section(picked, labels)

    # ---- hyper-parameters vs test accuracy ------------------------------------------------------
    st.subheader("Hyper-parameters against test accuracy")
    datasets = sorted({r.dataset for r in readable if r.dataset})
    first = picked[0].dataset if picked else compare.busiest_dataset(readable)   # the runs picked, else the most runs
    dataset = st.selectbox("Dataset", datasets, key=state.PC_DATASET,
                           index=datasets.index(first) if first in datasets else 0)
    hp = compare.hyperparam_frame(readable, dataset)
    if len(hp) < 2:
        st.caption(f"Needs two or more finished runs of {views.md(dataset)} with a test accuracy ({len(hp)} so far).")
    elif len(hp.columns) <= 2:
        st.caption(f"All {len(hp)} finished runs of {views.md(dataset)} share one config: nothing to set against "
                   "accuracy.")
    else:
        st.plotly_chart(figures.parcoords_figure(hp), key=state.PARCOORDS)
        st.caption("One line per finished run; drag along an axis to keep only the runs in that range.")

    # ---- actions on one run ---------------------------------------------------------------------
    st.subheader("Run actions")
    choices = [r.id for r in picked] or list(shown["id"]) or list(table["id"])
    rid = st.selectbox("Run", choices, key=state.PICKED, format_func=lambda i: labels.get(i, i))
    if record := next((r for r in records if r.id == rid), None):
        edit_tab, take_tab = st.tabs(["Rename, note, delete", "Download and export"], key=state.TABS,
                                     on_change="rerun")              # stays on its tab across reruns
        if edit_tab.open is not False:
            with edit_tab:
                w.edit_run(record)
        if take_tab.open is not False and not record.corrupt:
            with take_tab:
                w.take_away(record)

from ui.compare import sweeps  # noqa: E402

sweeps.section()

with st.expander("Import a run folder or zip made on another machine"):
    w.import_panel()
