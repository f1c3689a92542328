"""The Train page's charts as a learner first reads them, measured in a real browser at 1440 and 400 px:
the legend covers no point and no title, the best-epoch label stays inside the plot, and a chance-level
run's accuracy axis has distinct tick labels (it once read "10% 10% 10% 10%").

The runs are trained here by the real engine on the small generated data: one epoch, two epochs, and
two epochs at a learning rate so small the model stays at chance. Screenshots: artifacts/screenshots/.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from browserkit import SHOTS, chromium_page, dashboard_server, idle, train_runs

RUNS = {"one epoch": dict(epochs=1), "two epochs": dict(epochs=2),
        "at chance": dict(epochs=2, lr=1e-6, momentum=0.0, schedule="none")}
GEOMETRY_JS = """(el) => {
  const box = e => { const b = e.getBoundingClientRect(); return {l: b.left, r: b.right, t: b.top, b: b.bottom}; };
  const all = sel => Array.from(el.querySelectorAll(sel)).map(box);
  const one = sel => { const e = el.querySelector(sel); return e ? box(e) : null; };
  return {legend: one('.legend'), title: one('.gtitle'), plot: one('.nsewdrag'),
          points: all('.scatterlayer .point'), labels: all('.scatterlayer .textpoint text'),
          ticks: Array.from(el.querySelectorAll('.ytick text')).map(t => t.textContent)};
}"""


def _overlap(a: dict, b: dict) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


@pytest.fixture(scope="module")
def trained(small_data_dir, tmp_path_factory) -> dict[str, Path]:
    base = dict(dataset="mnist", val_size=100, batch_size=32, lr=0.05, log_every=4)
    configs = {name: {**base, **extra} for name, extra in RUNS.items()}
    return train_runs(small_data_dir, tmp_path_factory.mktemp("chart-runs"), configs)


@pytest.fixture(scope="module")
def server(small_data_dir, trained, tmp_path_factory):
    with dashboard_server(small_data_dir, next(iter(trained.values())).parent,
                          tmp_path_factory.mktemp("chart-log")) as base:
        yield base


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1400) as pg:
        yield pg


def _charts(page, base: str, run: Path, width: int, shot: str) -> dict[str, dict]:
    page.set_viewport_size({"width": width, "height": 1400})
    page.goto(f"{base}/train?run={run.name}")
    for title in ("Loss", "Accuracy per epoch"):
        page.locator(".js-plotly-plot").filter(has_text=title).first.wait_for()
    idle(page)
    page.wait_for_timeout(800)
    out = {}
    for title in ("Loss", "Accuracy per epoch"):
        chart = page.locator(".js-plotly-plot").filter(has_text=title).first
        chart.scroll_into_view_if_needed()
        out[title] = chart.evaluate(GEOMETRY_JS)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".js-plotly-plot").filter(has_text="Accuracy per epoch").first.screenshot(
        path=str(SHOTS / f"charts-{shot}-{width}.png"))
    return out


@pytest.mark.parametrize("width", [1440, 400])
@pytest.mark.parametrize("name", ["one epoch", "two epochs"])
def test_legend_covers_no_point_and_the_best_label_stays_inside(server, trained, page, name, width):
    """Short runs: every marker and the title are clear of the legend, and 'best: epoch N' lies within
    the figure (it was cut at the right edge when the last epoch was best)."""
    charts = _charts(page, server, trained[name], width, name.replace(" ", "-"))
    for title, g in charts.items():
        assert g["legend"] and g["points"], (title, g)
        covered = [p for p in g["points"] if _overlap(p, g["legend"])]
        assert not covered, f"{title} at {width} px: the legend covers {len(covered)} point(s)"
        assert not _overlap(g["title"], g["legend"]), f"{title} at {width} px: the legend covers the title"
    acc = charts["Accuracy per epoch"]
    (label,) = acc["labels"]          # within the plot area: text beyond it is clipped away
    assert acc["plot"]["l"] <= label["l"] and label["r"] <= acc["plot"]["r"], (label, acc["plot"])
    assert acc["plot"]["t"] <= label["t"] and label["b"] <= acc["plot"]["b"], (label, acc["plot"])


@pytest.mark.parametrize("width", [1440, 400])
def test_chance_level_run_reads_distinct_accuracy_ticks(server, trained, page, width):
    """All accuracies near 10%: the axis still reads distinct values, and the page says it is chance."""
    charts = _charts(page, server, trained["at chance"], width, "chance")
    ticks = charts["Accuracy per epoch"]["ticks"]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    assert page.get_by_text("is chance level").first.is_visible()
