"""Inspect in a real browser: open a run trained by the test through ?run=<id>, visit every tab, see its plot.

A `streamlit run dashboard.py` server runs as a subprocess on a free port over the small generated data
and a runs folder holding one lenet run; Debian's chromium is driven by Playwright. Screenshots go to
artifacts/screenshots/inspect-*.png for a person to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browserkit import SHOTS, chromium_page, dashboard_server


TABS = ("Filters", "Feature maps", "Confusion", "Mistakes", "Saliency")
VISUAL = ".js-plotly-plot, [data-testid='stImage'] img"

@pytest.fixture(scope="module")
def trained_runs(small_data_dir, tmp_path_factory) -> dict[str, Path]:
    """Runs trained by the real engine in one folder: lenet on mnist (2 epochs: snapshots 0, 1, 2) and
    cifar-net on cifar2 (colour input, 1 epoch)."""
    from cnn_core import engine, runs
    from cnn_core.config import TrainConfig

    runs_dir = tmp_path_factory.mktemp("inspect-browser-runs")
    configs = {"inspect me": dict(dataset="mnist", arch="lenet", val_size=100, epochs=2, batch_size=32),
               "colour": dict(dataset="cifar2", arch="cifar-net", val_size=20, epochs=1, batch_size=16)}
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_DATA_DIR", str(small_data_dir))
        mp.setenv("CNN_OFFLINE", "1")
        for name, cfg in configs.items():
            path = runs.create_run(TrainConfig(lr=0.05, **cfg), name=name, runs_dir=runs_dir)
            assert engine.run_training(path)["status"] == "completed"
            out[name] = path
    return out


@pytest.fixture(scope="module")
def trained_run(trained_runs) -> Path:
    return trained_runs["inspect me"]


@pytest.fixture(scope="module")
def server(small_data_dir, trained_runs, tmp_path_factory):
    """A dashboard server on a free port over the trained runs' folder; yields its base url."""
    with dashboard_server(small_data_dir, trained_runs["colour"].parent, tmp_path_factory.mktemp("inspect-log"),
                          CNN_MAX_JOBS="1") as base:
        yield base


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1200) as pg:
        yield pg


def _idle(page) -> None:
    """Wait until the script has finished its rerun (the status widget's running state is gone)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=60_000)
    page.wait_for_timeout(300)


def _open_tab(page, name: str):
    """Open tab `name` and wait for its figure (Mistakes of a perfect model has none: its note instead)."""
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.get_by_role("tabpanel")          # hidden panels are not in the accessibility tree
    shown = panel.locator(VISUAL)
    if name == "Mistakes":
        shown = shown.or_(panel.get_by_text(re.compile(r"^0 mistakes")))
    shown.first.wait_for(state="visible")
    _idle(page)
    return panel


def _shot(page, name: str, tall: bool = False) -> None:
    """A screenshot; tall ones use a 2400 px viewport, as Streamlit scrolls inside its own container."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if tall:
        page.set_viewport_size({"width": 1440, "height": 2400})
        _idle(page)
    page.screenshot(path=str(SHOTS / name))
    if tall:
        page.set_viewport_size({"width": 1440, "height": 1200})


def test_every_tab_shows_its_plot(server, trained_run, page):
    """?run=<id> opens the run; Filters, Feature maps, Confusion, Mistakes and Saliency each show a plot."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    page.get_by_role("tab", name="Filters").wait_for()
    _idle(page)
    picker = page.locator("[data-testid='stSelectbox']").filter(has_text="Run").first
    assert "inspect me" in picker.inner_text() + picker.locator("input").first.input_value()
    for name in TABS:
        panel = _open_tab(page, name)
        if name == "Mistakes" and "0 mistakes" in panel.inner_text():
            page.get_by_role("slider").first.focus()     # scrub back to epoch 0: untrained, many mistakes
            page.keyboard.press("Home")
            page.get_by_text(re.compile(r"[1-9][\d,]* mistakes")).wait_for()
            panel = _open_tab(page, name)
        assert panel.locator(VISUAL).first.is_visible(), name
        if name == "Feature maps":
            assert "Top 3:" in panel.inner_text() and len(panel.locator(".js-plotly-plot").all()) >= 6
        _shot(page, f"inspect-{name.lower().replace(' ', '-')}.png", tall=name in ("Feature maps", "Confusion"))


def test_new_image_choice_updates_maps_and_saliency(server, trained_run, page):
    """Typing another test index redraws the feature maps for that image; Saliency follows it."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    panel = _open_tab(page, "Feature maps")
    box = panel.get_by_label(re.compile(r"^Index \(0 to \d+\)$"))
    box.fill("17")
    started = time.monotonic()
    box.press("Enter")
    panel.get_by_text("test image #17", exact=False).wait_for()
    _idle(page)
    print(f"new image choice to settled page: {time.monotonic() - started:.2f} s (browser, incl. 0.6 s of waits)")
    _shot(page, "inspect-feature-maps-image-17.png", tall=True)
    sal = _open_tab(page, "Saliency")
    assert "Test image #17" in sal.inner_text()


def test_colour_first_layer_filters(server, trained_runs, page):
    """A CIFAR run's first conv layer draws its 3-channel kernels as colour tiles (a plotly image trace)."""
    page.goto(f"{server}/inspect?run={trained_runs['colour'].name}")
    panel = _open_tab(page, "Filters")
    panel.get_by_text("colour (grey = 0), shared range").wait_for()
    assert page.evaluate("() => document.querySelector('.js-plotly-plot').data[0].type") == "image"
    _shot(page, "inspect-filters-rgb.png")
