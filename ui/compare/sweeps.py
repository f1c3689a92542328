"""The Compare page's Sweeps section: a sweep's trials by score (as the Train page's Sweep tab lists them),
their curves overlaid, parallel coordinates of the swept fields against the score, what mattered, Delete."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from cnn_core.analysis import compare
from cnn_core.core import people
from cnn_core.runs import owners, store
from cnn_core.runs.metrics_log import CURVES
from cnn_core.sweeps import ledger
from ui import nav, signin, views
from ui.compare import state
from ui.figures import CONFIG
from ui.figures import curves as figures
from ui.train.sweep import picked, show, trials_frame


def section() -> None:
    """A sweep's trials by score, overlaid, in parallel coordinates, and what mattered."""
    sweep = picked(state.SWEEP)
    if sweep is None:
        return
    show(sweep, actions=False)
    records = [r for r in owners.visible(store.readable(store.list_runs()), signin.me()) if r.sweep == sweep.id]
    if records:
        labels = {r.id: f"#{r.trial}" for r in records}
        curves = compare.curves_frame(records, labels)
        if not curves.empty:
            for i, metric in enumerate(CURVES):
                if i % 2 == 0:
                    row = st.columns(2)
                row[i % 2].plotly_chart(figures.runs_curves_figure(curves, metric, "epoch", "epoch"),
                                        key=state.sweep_curve(metric))
    frame = trials_frame(sweep)
    names = list(sweep.grid) + list(sweep.sample)
    scored = frame.dropna(subset=["score"]) if not frame.empty else frame
    if len(scored) >= 2:
        fig = px.parallel_coordinates(scored, dimensions=[n for n in names if pd.api.types.is_numeric_dtype(scored[n])]
                                      + ["score"], color="score")
        fig.update_layout(margin=dict(l=70, r=70, t=50, b=30))          # room for the outer axes' names
        st.plotly_chart(fig, key=state.SWEEP_PC, config=CONFIG)
    if imp := ledger.importance(sweep):
        st.plotly_chart(px.bar(x=list(imp.values()), y=list(imp), orientation="h",
                               labels={"x": "importance (share of the score's variance)", "y": "field"},
                               title="What mattered (Optuna's fANOVA importance)"), key=state.SWEEP_IMP,
                        config=CONFIG)
    if not people.may_change(sweep.owner, signin.me()):     # a classmate's or the teacher's: to look at only
        return
    with st.popover("Delete this sweep", icon=":material/delete:"):
        st.caption(f"This cancels it and deletes its {len(sweep.runs)} trial runs.")
        if st.button("Delete sweep and its runs", key=state.SWEEP_DELETE, type="primary"):
            try:
                gone = ledger.delete(sweep.id, by=signin.me())
                nav.flash(state.FLASH, "success", f"Deleted sweep {sweep.id} and its {views.count(gone, 'run')}.")
            except ValueError as exc:          # people.NotYours
                nav.flash(state.FLASH, "error", views.md(exc))
            st.rerun()
