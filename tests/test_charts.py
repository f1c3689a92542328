"""The Train page's chart figures (ui/figures/curves.py, plotly, no Streamlit): smoothing, spikes, axes."""
from __future__ import annotations

import pandas as pd
import pytest

from ui.figures import curves as charts


def _steps(losses: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": [20 * (i + 1) for i in range(len(losses))], "loss": losses})


EPOCHS = pd.DataFrame({"epoch": [1, 2], "step": [100, 200], "train_loss": [0.9, 0.45], "val_loss": [0.6, 0.4],
                       "train_acc": [0.7, 0.85], "val_acc": [0.8, 0.86]})


def test_smoothing_is_tensorboards_debiased_average():
    """Weight 0 keeps the points; otherwise the first point is kept (debiased) and the rest follow it."""
    assert charts.smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    assert charts.smooth([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])
    assert charts.smooth([1.0, 0.0], 0.5) == pytest.approx([1.0, 1 / 3])


def test_a_spike_does_not_flatten_the_loss_chart():
    """One logged loss of 50 among values under 2.4: the linear axis fits the others and the chart says a
    point lies above; the log axis shows everything; the steep start of training is no spike."""
    losses = [2.3, 1.6, 1.0, 0.7, 0.55, 0.5, 0.47, 50.0, 0.45, 0.44, 0.42, 0.41]
    fig = charts.loss_figure(_steps(losses), EPOCHS, smoothing=0.0)
    low, high = fig.layout.yaxis.range
    assert 2.3 < high < 5 and low <= 0.4
    assert "1 point(s) above, up to 50" in fig.layout.annotations[0].text
    assert fig.layout.yaxis.range == charts.loss_figure(_steps(losses), EPOCHS, smoothing=0.6).layout.yaxis.range
    log = charts.loss_figure(_steps(losses), EPOCHS, log=True)
    assert log.layout.yaxis.type == "log" and log.layout.yaxis.range is None
    calm = charts.loss_figure(_steps([2.3, 1.2, 0.6, 0.4, 0.35, 0.3]), EPOCHS)
    assert calm.layout.yaxis.range is None and not calm.layout.annotations
    assert charts.spikes([2.3, 0.9, 0.5, 0.3, 0.25, 0.2, 5.0, 0.2]) == [False] * 6 + [True, False]


def test_a_jump_below_an_epoch_loss_is_drawn_whole():
    """A logged loss that jumps (a spike by the rule) yet stays under an epoch's validation loss needs no
    clipping: the chart draws, whole, with no note. (It once raised max() of nothing on the live panel.)"""
    losses = [0.05, 0.04, 0.03, 0.03, 0.2, 0.03]
    epochs = EPOCHS.assign(val_loss=[0.6, 0.5])
    fig = charts.loss_figure(_steps(losses), epochs)
    assert charts.spikes(losses)[4] and fig.layout.yaxis.range is None and not fig.layout.annotations


def test_accuracy_axis_keeps_a_readable_span_and_marks_chance():
    """Accuracies all near 10 %: the axis spans at least 4 points with one-decimal ticks, and draws the
    chance line; a run far above chance has no chance line."""
    flat = EPOCHS.assign(train_acc=[0.099, 0.1], val_acc=[0.101, 0.1015])
    fig = charts.accuracy_figure(flat, best=2, chance=0.1127)
    low, high = fig.layout.yaxis.range
    assert high - low >= charts.MIN_ACC_SPAN and fig.layout.yaxis.tickformat == ".1%"
    assert low < 0.099 and high > 0.1127 and fig.layout.shapes and "chance 11%" in fig.layout.annotations[0].text
    good = charts.accuracy_figure(EPOCHS, best=2, chance=0.1)
    assert not good.layout.shapes and good.layout.yaxis.tickformat == ".0%"
    labels = [t.textposition for t in good.data if t.name == "best epoch"]
    assert labels == ["bottom left"]            # the last epoch is best: its label goes left, inside
    assert good.layout.legend.y < 0             # under the plot, where it covers no point
