"""Plotly figures of learning curves: one run's (Train, at a fixed height so a live redraw never moves
the page) and many runs' (Compare: overlaid curves, hyper-parameters against test accuracy).

The legend sits under the plot, where it covers neither the title nor a point at any width; the
accuracy axis keeps a readable span (a chance-level run once read "10% 10% 10% 10%"); the loss can be
smoothed as TensorBoard does and drawn on a log axis, and on a linear axis a lone spike is left above
the chart (and said so) instead of flattening the rest.
"""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from cnn_core.runs.metrics_log import CURVES
from ui.views import fmt_value, plot_text

HEIGHT = 320
CONFIG = {"displayModeBar": False}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")        # plotly's own order: a run keeps its colour in every chart
TRAIN, VAL, BEST = PALETTE[0], PALETTE[1], PALETTE[2]
STEP, RAW = "#6baed6", "rgba(107, 174, 214, 0.35)"    # the per-step loss, and its raw points behind a smoothing
MIN_ACC_SPAN = 0.04   # the accuracy axis spans at least 4 points
SPIKE = 3.0           # a logged loss this many times the median of the points before it is a spike


def _list(column: pd.Series) -> list:
    """Plain lists, not numpy: the browser then holds ordinary arrays (el.data[i].x.length works), where
    plotly would otherwise ship base64 typed-array blobs."""
    return column.tolist()


def _layout(fig: go.Figure, title: str, xaxis: str, yaxis: str) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, xanchor="left", font_size=15), height=HEIGHT,
                      margin=dict(l=10, r=10, t=36, b=10), xaxis_title=xaxis, yaxis_title=yaxis,
                      legend=dict(orientation="h", yanchor="top", y=-0.24, xanchor="left", x=0),
                      hovermode="x unified", uirevision="keep")  # zoom survives the redraws
    return fig


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the start is not pulled to 0."""
    out, last, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        n += 1
        last = last * weight + (1 - weight) * v
        out.append(last / (1 - weight ** n) if weight > 0 else v)
    return out


def spikes(values: list[float]) -> list[bool]:
    """True where a value is over SPIKE times the median of the (up to 8) points before it: a jump up, not
    the steep fall at the start of training (the first 3 points are never spikes)."""
    series = pd.Series(values, dtype=float)
    before = series.shift(1).rolling(8, min_periods=3).median()
    return [bool(v > SPIKE * m) if m > 0 else False for v, m in zip(series, before)]


def loss_figure(steps: pd.DataFrame, epochs: pd.DataFrame, smoothing: float = 0.0, log: bool = False) -> go.Figure:
    """Loss over training steps: every logged step (smoothed on request, the raw points faint behind),
    and per epoch train and validation (markers)."""
    fig = go.Figure()
    raw = _list(steps["loss"])
    if smoothing > 0:
        fig.add_scatter(x=_list(steps["step"]), y=raw, mode="lines", name="train, raw", showlegend=False,
                        line=dict(color=RAW, width=1), hoverinfo="skip")
    fig.add_scatter(x=_list(steps["step"]), y=smooth(raw, smoothing) if smoothing > 0 else raw, mode="lines",
                    name="train, per logged step" + (" (smoothed)" if smoothing > 0 else ""),
                    line=dict(color=STEP, width=1.5))
    for column, name, color in (("train_loss", "train, epoch mean", TRAIN), ("val_loss", "validation", VAL)):
        fig.add_scatter(x=_list(epochs["step"]), y=_list(epochs[column]), mode="lines+markers", name=name,
                        line=dict(color=color, width=2), customdata=_list(epochs["epoch"]),
                        hovertemplate="epoch %{customdata}: %{y:.4f}")
    _layout(fig, "Loss", "training step", "cross-entropy loss" + (" (log)" if log else ""))
    if log:
        fig.update_yaxes(type="log")
    else:
        _clip_spikes(fig, raw, _list(epochs["step"]), _list(epochs["train_loss"]) + _list(epochs["val_loss"]))
    return fig


def _clip_spikes(fig: go.Figure, raw: list[float], epoch_steps: list, epoch_values: list[float]) -> None:
    """Fit the y axis to everything but lone spikes, and say how many points it leaves above."""
    flags = spikes(raw)
    kept = [v for v, s in zip(raw, flags) if not s and math.isfinite(v)]
    kept += [v for v in epoch_values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not kept or not any(flags):
        return
    low, high = min(kept), max(kept)
    top = high + 0.08 * (high - low or high or 1)
    above = [v for v in raw + epoch_values if isinstance(v, (int, float)) and v > top]
    if not above:   # the flagged points lie below an epoch's loss (or are NaN): the full range shows them
        return
    fig.update_yaxes(range=[max(0.0, low - 0.05 * (high - low)), top])
    fig.add_annotation(text=f"{len(above)} point(s) above, up to {max(above):,.3g}: try the log scale",
                       xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom",
                       showarrow=False, font=dict(size=11, color="#b71c1c"))


def lr_figure(steps: pd.DataFrame, events: pd.DataFrame | None = None) -> go.Figure:
    """The learning rate at every logged step (after the schedule), with each change asked while the run
    trained marked where it took effect."""
    fig = go.Figure()
    fig.add_scatter(x=_list(steps["step"]), y=_list(steps["lr"]) if "lr" in steps else [], mode="lines",
                    name="learning rate", line=dict(color=STEP, width=1.5), hovertemplate="%{y:.3g}")
    steers = events[events["kind"] == "steer"] if events is not None and len(events) else None
    if steers is not None and len(steers):
        fig.add_scatter(x=_list(steers["step"]), y=_list(steers["rate"]), mode="markers+text", name="changed",
                        marker=dict(symbol="diamond", size=11, color=BEST),
                        text=[f"→ {lr:.3g}" for lr in _list(steers["lr"])], textposition="top center",
                        hovertemplate="base rate set to %{text} at step %{x}")
    _layout(fig, "Learning rate", "training step", "learning rate")
    fig.update_layout(height=240, showlegend=False)
    return fig


def accuracy_figure(epochs: pd.DataFrame, best: int | None, chance: float | None = None,
                    stopped: int | None = None) -> go.Figure:
    """Accuracy per epoch, train and validation, with the best validation epoch marked, the epoch early
    stopping ended it at, and, when the curves come near it, the accuracy of guessing."""
    fig = go.Figure()
    fig.add_scatter(x=_list(epochs["epoch"]), y=_list(epochs["train_acc"]), mode="lines+markers", name="train",
                    line=dict(color=TRAIN, width=2), hovertemplate="%{y:.2%}")
    fig.add_scatter(x=_list(epochs["epoch"]), y=_list(epochs["val_acc"]), mode="lines+markers", name="validation",
                    line=dict(color=VAL, width=2), hovertemplate="%{y:.2%}")
    last = int(epochs["epoch"].max()) if len(epochs) else 1
    first = int(epochs["epoch"].min()) if len(epochs) else 1
    if best is not None:
        row = epochs[epochs["epoch"] == best].iloc[0]
        right_half = best - first >= (last - first) / 2          # the label goes where there is room
        fig.add_scatter(x=[best], y=[row["val_acc"]], mode="markers+text", name="best epoch",
                        marker=dict(symbol="star", size=16, color=BEST), text=[f"best: epoch {best}"],
                        textposition="bottom left" if right_half else "bottom right", hovertemplate="%{y:.2%}")
    low, high = _acc_range(_list(epochs["train_acc"]) + _list(epochs["val_acc"]))
    if chance is not None and low - 0.1 < chance < high + 0.1:
        low, high = min(low, chance - 0.01), max(high, chance + 0.01)
        fig.add_hline(y=chance, line=dict(color="#9e9e9e", dash="dot", width=1.5),
                      annotation_text=f"chance {chance:.0%}", annotation_position="top left",
                      annotation_font=dict(size=11, color="#616161"))
    if stopped is not None:
        fig.add_vline(x=stopped, line=dict(color="#6d4c41", dash="dash", width=1.5),
                      annotation_text=f"stopped early (epoch {stopped})", annotation_position="top left",
                      annotation_font=dict(size=11, color="#6d4c41"))
    fig.update_yaxes(range=[low, high], tickformat=".1%" if high - low < 0.1 else ".0%")
    fig.update_xaxes(dtick=1 if last <= 20 else None, range=[first - 0.4, last + 0.4])
    return _layout(fig, "Accuracy per epoch", "epoch", "accuracy")


def waiting(fig: go.Figure, text: str) -> go.Figure:
    """A word in the middle of a chart that has no points yet."""
    fig.add_annotation(text=text, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                       font=dict(size=13, color="#757575"))
    return fig


def _acc_range(values: list[float]) -> tuple[float, float]:
    """The accuracy axis: the values with a margin, at least MIN_ACC_SPAN wide, room below the best star."""
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)] or [0.0, 1.0]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.12, (MIN_ACC_SPAN - (high - low)) / 2, 0.005)
    low, high = low - pad * 1.6, high + pad   # more room below: the star's label hangs under it
    return max(low, -0.01), min(high, 1.04) if high > 1 else high   # room above a star at 100%


# ---- many runs (Compare) --------------------------------------------------------------------------
_LOG_AXES = ("lr", "weight_decay")


def _colours(frame: pd.DataFrame) -> dict[str, str]:
    return {run: PALETTE[i % len(PALETTE)] for i, run in enumerate(dict.fromkeys(frame["run"]))}


def runs_curves_figure(curves: pd.DataFrame, metric: str, granularity: str, x: str) -> go.Figure:
    """One metric (of metrics_log.CURVES) of every run in a compare.curves_frame: train solid, validation dashed,
    one colour per run. granularity 'step' draws the logged training steps and the per-epoch
    validation points."""
    fig, colours = go.Figure(), _colours(curves)
    rows = curves[curves["metric"] == metric]
    parts = [("epoch", "train", "solid"), ("epoch", "val", "dash")] if granularity == "epoch" else \
        [("step", "train", "solid"), ("epoch", "val", "dash")]
    for run, colour in colours.items():
        for gran, split, dash in parts:
            pts = rows[(rows["run"] == run) & (rows["granularity"] == gran) & (rows["split"] == split)]
            if pts.empty:
                continue
            fig.add_trace(go.Scatter(x=pts[x], y=pts["value"], name=f"{plot_text(run)} · {split}",
                                     legendgroup=plot_text(run),
                                     mode="lines+markers" if gran == "epoch" else "lines",
                                     line={"color": colour, "dash": dash}))
    if x == "epoch" and rows["epoch"].max() <= 15:
        fig.update_xaxes(dtick=1)                   # whole epochs, not 1.2, 1.4, ...
    fig.update_layout(title=CURVES[metric].label, height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      xaxis_title="epoch" if x == "epoch" else "wall time (s)",
                      legend={"orientation": "h", "y": -0.25}, yaxis_tickformat=".0%" if CURVES[metric].percent else None)
    return fig


def metric_figure(epochs: pd.DataFrame, metric: str) -> go.Figure:
    """A metric of metrics_log.CURVES that has no chart of its own (loss and accuracy do), per epoch:
    train and validation."""
    fig = go.Figure()
    for split, name, color in (("train", "train", TRAIN), ("val", "validation", VAL)):
        if f"{split}_{metric}" in epochs:
            fig.add_scatter(x=_list(epochs["epoch"]), y=_list(epochs[f"{split}_{metric}"]), mode="lines+markers",
                            name=name, line={"color": color})
    _layout(fig, CURVES[metric].label, "epoch", CURVES[metric].label.lower())
    if CURVES[metric].percent:
        fig.update_yaxes(tickformat=".0%")
    return fig


def parcoords_figure(frame: pd.DataFrame) -> go.Figure:
    """Hyper-parameters against test accuracy (compare.hyperparam_frame), one line per run, coloured by
    test accuracy."""
    scale = [[0, "#d62728"], [0.5, "#ff9f1c"], [1, "#2ca02c"]]          # red (worst) to green (best)
    fig = go.Figure(go.Parcoords(line={"color": frame["test_acc"], "colorscale": scale, "showscale": True,
                                       "colorbar": {"title": {"text": "test acc"}, "tickformat": ".1%"}},
                                 dimensions=parcoords_dimensions(frame), labelfont={"size": 13},
                                 tickfont={"size": 11}))
    fig.update_layout(height=380, margin={"l": 60, "r": 60, "t": 50, "b": 20})
    return fig


def parcoords_dimensions(frame: pd.DataFrame) -> list[dict]:
    """Axes for a parallel-coordinates plot: numbers as they are (lr and weight decay on a log10 axis
    labelled in their own units), text and booleans as evenly spaced ticks; each range padded 15% so
    lines at the extremes stay visible. The last axis is test accuracy."""
    dims = []
    for column in [c for c in frame.columns if c != "run"]:
        values = frame[column].tolist()
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and column in _LOG_AXES and all(v > 0 for v in values):
            logs = [math.log10(v) for v in values]
            ticks = sorted(set(zip(logs, values)))
            dims.append({"label": f"{plot_text(column)} (log)", "values": logs, "tickvals": [t[0] for t in ticks],
                         "ticktext": [fmt_value(float(t[1])) for t in ticks], "range": _padded(logs)})
        elif numeric:
            values = [float(v) for v in values]
            dims.append({"label": plot_text(column), "values": values, "range": _padded(values),
                         **({"tickformat": ".1%"} if column == "test_acc" else {})})
        else:
            text = [fmt_value(v) for v in values]
            levels = sorted(set(text))
            codes = [levels.index(t) for t in text]
            dims.append({"label": plot_text(column), "values": codes, "tickvals": list(range(len(levels))),
                         "ticktext": levels, "range": _padded(codes)})
    return dims


def _padded(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    pad = (high - low) * 0.15 or abs(high) * 0.05 or 0.5
    return [low - pad, high + pad]
