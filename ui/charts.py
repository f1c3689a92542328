"""Plotly figures of a run's learning curves, at a fixed height so a live redraw never moves the page."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

HEIGHT = 300
TRAIN, VAL, STEP = "#1f77b4", "#ff7f0e", "rgba(31, 119, 180, 0.35)"


def _list(column: pd.Series) -> list:
    """Plain lists, not numpy: the browser then holds ordinary arrays (el.data[i].x.length works), where
    plotly would otherwise ship base64 typed-array blobs."""
    return column.tolist()


def _layout(fig: go.Figure, title: str, xaxis: str, yaxis: str) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0, font_size=15), height=HEIGHT,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_title=xaxis, yaxis_title=yaxis,
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1),
                      hovermode="x unified", uirevision="keep")  # zoom survives the redraws
    return fig


def loss_figure(steps: pd.DataFrame, epochs: pd.DataFrame) -> go.Figure:
    """Loss over training steps: every logged step (thin), and per epoch train and validation (markers)."""
    fig = go.Figure()
    fig.add_scatter(x=_list(steps["step"]), y=_list(steps["loss"]), mode="lines",
                    name="train, per logged step", line=dict(color=STEP, width=1.5))
    for column, name, color in (("train_loss", "train, epoch mean", TRAIN), ("val_loss", "validation", VAL)):
        fig.add_scatter(x=_list(epochs["step"]), y=_list(epochs[column]), mode="lines+markers", name=name,
                        line=dict(color=color, width=2), customdata=_list(epochs["epoch"]),
                        hovertemplate="epoch %{customdata}: %{y:.4f}")
    return _layout(fig, "Loss", "training step", "cross-entropy loss")


def accuracy_figure(epochs: pd.DataFrame, best: int | None) -> go.Figure:
    """Accuracy per epoch, train and validation, with the best validation epoch marked."""
    fig = go.Figure()
    fig.add_scatter(x=_list(epochs["epoch"]), y=_list(epochs["train_acc"]), mode="lines+markers", name="train",
                    line=dict(color=TRAIN, width=2), hovertemplate="%{y:.2%}")
    fig.add_scatter(x=_list(epochs["epoch"]), y=_list(epochs["val_acc"]), mode="lines+markers", name="validation",
                    line=dict(color=VAL, width=2), hovertemplate="%{y:.2%}")
    if best is not None:
        row = epochs[epochs["epoch"] == best].iloc[0]
        fig.add_scatter(x=[best], y=[row["val_acc"]], mode="markers+text", name="best epoch",
                        marker=dict(symbol="star", size=16, color="#2ca02c"),
                        text=[f"best: epoch {best}"], textposition="bottom right", hovertemplate="%{y:.2%}")
    fig.update_yaxes(tickformat=".0%")
    last = int(epochs["epoch"].max()) if len(epochs) else 1
    fig.update_xaxes(dtick=1 if last <= 20 else None, range=[0.6, last + 0.4])
    return _layout(fig, "Accuracy per epoch", "epoch", "accuracy")
