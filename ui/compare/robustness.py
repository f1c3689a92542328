"""Compare's Robustness section: how hard each picked run is to fool. Does augmentation or batch norm make a
model harder to fool? Each run's best weights are attacked (PGD, cnn_core.analysis.adversarial) on the first
N test images of its dataset at growing budgets; the curves share one chart, and a sentence names the run
that takes the largest change to be fooled. Curves are cached by run folder, weights' mtime, N and method."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from cnn_core.runs import store
from ui import compute, views
from ui.compare import state
from ui.figures import CONFIG, PALETTE

N = 200              # test images per run: about 5 s of PGD per MNIST run on one thread of a busy 2-core machine
METHOD = "pgd"


def curve(path: str, mtime: float, n: int, method: str, progress=None):
    """The robustness of a run's best weights on the first n test images of its dataset (adversarial.Robustness),
    kept by run folder, best.pt's mtime, n and method (compute.keep: the progress bar is drawn outside).
    ValueError (for a person) when the run's test set is not here or does not fit its model."""
    from cnn_core.analysis import adversarial, inspection, predict

    key = ("compare-curve", path, mtime, n, method)
    if (found := compute.kept(key)) is not None:
        return found
    model, meta = predict.load_model(Path(path), which="best")
    test = inspection.load_test_set(meta.get("dataset"))
    inspection.check_fits(test, meta)
    n = min(n, len(test.y))
    with compute.one_thread():
        found = adversarial.robustness(model, meta, test.images[:n], test.y[:n], method=method, progress=progress)
    return compute.keep(key, found)


def _median(found) -> float:
    """The run's median fooling budget for ranking: inf where fewer than half fell within the budgets."""
    return found.median_eps if found.median_eps is not None else float("inf")


def _budget_text(eps: float, largest: float) -> str:
    return f"more than {largest:.2f}" if np.isinf(eps) else f"{eps:.2f}"


def figure(curves: dict[str, object]) -> go.Figure:
    """Test accuracy against the attack's budget, one line per run (label -> Robustness)."""
    fig = go.Figure()
    for i, (label, found) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(found.budgets), y=list(found.accuracy), name=views.plot_text(label),
                                 mode="lines+markers", line={"color": PALETTE[i % len(PALETTE)]},
                                 hovertemplate="budget %{x:.2f}: %{y:.0%} right<extra>%{fullData.name}</extra>"))
    fig.update_layout(title="Accuracy under attack", height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="budget: the most any pixel may change (share of black-to-white)",
                      yaxis={"title": "test images still read right", "tickformat": ".0%", "range": [0, 1.02]},
                      legend={"orientation": "h", "y": -0.3})
    return fig


def verdict(curves: dict[str, object]) -> str:
    """Which run is hardest to fool, in words: the largest median fooling budget; between equal medians (the
    budgets are a grid), the higher accuracy over the whole curve."""
    largest = max(max(found.budgets) for found in curves.values())
    ranked = sorted(((_median(found), float(np.mean(found.accuracy)), label) for label, found in curves.items()
                     if (found.min_eps > 0).any()), reverse=True)
    if not ranked:
        return "No run read any of these test images right, so none could be fooled."
    (top, top_mean, first), *rest = ranked
    if not rest:
        return (f"Half of the test images it reads right are misread once every pixel may move by "
                f"{_budget_text(top, largest)} of black-to-white.")
    each = "; ".join(f"{views.md(label)} {_budget_text(m, largest)}" for m, _, label in ranked)
    if top > rest[0][0]:
        return (f"Hardest to fool: **{views.md(first)}**. The budget that fools half of the images each run reads "
                f"right (higher: harder to fool): {each}.")
    return (f"Half of the images each reads right fall at the same budget, {_budget_text(top, largest)}; over the "
            f"whole curve **{views.md(first)}** holds out a little longer: it reads {top_mean:.0%} right on average "
            f"over the budgets, against {rest[0][1]:.0%} for {views.md(rest[0][2])}.")


def section(picked: list[store.Run], labels: dict[str, str]) -> None:
    """The button, the curves of the picked runs of one dataset (computed with a progress bar, then cached),
    and the verdict."""
    st.subheader("Robustness")
    st.caption(f"How much must every pixel change before a model misreads a picture? Does augmentation or batch "
               f"norm make a model harder to fool? Each run's best weights are attacked ({METHOD.upper()}) on the "
               f"first {N} test images of its dataset, at budgets growing from nothing.")
    runs = [r for r in picked if (Path(r.path) / store.BEST).is_file()]
    if len(runs) < len(picked):
        st.caption("Left out, no best weights saved yet: "
                   + ", ".join(views.md(labels.get(r.id, r.id)) for r in picked if r not in runs) + ".")
    if not runs:
        st.info("Pick runs that have saved their best weights to set their robustness side by side.")
        return
    if len(datasets := sorted({r.dataset or "?" for r in runs})) > 1:
        st.info(f"These runs are on different datasets ({', '.join(map(views.md, datasets))}): a change to their "
                "pixels means a different thing on each, so they cannot share a curve. Pick runs of one dataset.",
                icon=":material/info:")
        return
    ids = tuple(r.id for r in runs)
    asked = st.button("Robustness curves", key=state.ROBUST_GO, icon=":material/shield:",
                      help="About 5 s per run on a laptop's CPU; each curve is kept until the run's best weights change.")
    if not asked and st.session_state.get(state.ROBUST) != ids:
        return
    st.session_state[state.ROBUST] = ids
    curves = _curves(runs, labels)
    if curves:
        st.plotly_chart(figure(curves), config=CONFIG, key=state.ROBUST_CHART)
        st.markdown(verdict(curves))


def _curves(runs: list[store.Run], labels: dict[str, str]) -> dict[str, object]:
    """label -> Robustness of each run, computed (with a progress bar) or from the cache; a run whose test set
    is missing gets its error."""
    bar, out = st.empty(), {}
    for i, r in enumerate(runs):
        label, best = labels.get(r.id, r.id), Path(r.path) / store.BEST

        def progress(done: int, total: int, i=i, label=label) -> None:
            bar.progress((i + done / total) / len(runs), text=f"{views.md(label)}: budget {done} of {total}")

        try:
            out[label] = curve(str(r.path), best.stat().st_mtime, N, METHOD, progress=progress)
        except (ValueError, OSError) as exc:
            st.error(f"{views.md(label)}: {views.md(exc)}", icon=":material/error:")
    bar.empty()
    return out
