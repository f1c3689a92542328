"""The figures a lesson's answer rests on besides test accuracy (lessons.Measure, its kinds in
lessons.MEASURE_KINDS), measured on its run for the Learn page: the library measures, this caches each
result by the run's weights (their mtime) and says it in words."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_core.runs import store
from cnn_core.train import lessons
from ui import compute

TAB = {"fooled": "Fool it", "separate": "Class map"}      # the Inspect tab that shows each figure at work


SPINNER = {"fooled": "Attacking the run on test digits: how small a change fools it…",
           "separate": "Measuring how far apart the classes lie, before and after training…"}


@st.cache_data(max_entries=32, show_spinner=False)
def _measure(kind: str, path: str, mtime: float, n: int) -> float:
    """explain.MEASURES[kind] on the run at `path`, on one thread; cached by best.pt's mtime."""
    from cnn_core.analysis import explain

    with compute.one_thread():
        return explain.MEASURES[kind](Path(path), n)


def measured(lesson: lessons.Lesson, runs: dict[str, store.Run | None]) -> tuple[float | None, str | None]:
    """(the lesson's measured figure or None, a problem in words or None): None, None when the lesson has no
    measure or its run did not complete."""
    if lesson.measure is None:
        return None, None
    (run,) = runs.values()                      # a lesson with a measure has one experiment
    if run is None or run.effective_status != "completed":
        return None, None
    try:
        best = Path(run.path) / store.BEST
        with st.spinner(SPINNER[lesson.measure.kind]):
            return _measure(lesson.measure.kind, str(run.path), best.stat().st_mtime, lesson.measure.n), None
    except (ValueError, OSError) as exc:        # no best.pt, the test set gone, a checkpoint that does not load
        return None, str(exc)


def figure_text(lesson: lessons.Lesson, value: float) -> str:
    """The figure in words, for beside the learner's guess."""
    m = lesson.measure
    if m.kind == "separate":
        return (f"training added {value * 100:.0f} points: that many more of {m.n} test digits have their 5 nearest "
                "neighbours in its last hidden features mostly of their own class")
    if value == float("inf"):
        return f"no budget tried made it misread most of the first {m.n} test digits"
    return (f"letting every pixel move by at most {value:.2f} of black-to-white ({value:.0%}) made it misread most "
            f"of the first {m.n} test digits")
