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
from browserkit import SHOTS, chromium_page, idle

from ui.inspector import tabs

TABS = tuple(name for name in tabs.TABS if name not in tabs.ASKS_FIRST)   # every view that draws from the run
VISUAL = ".js-plotly-plot, [data-testid='stImage'] img"

@pytest.fixture(scope="module")
def trained_runs(inspect_runs) -> dict[str, Path]:
    return inspect_runs


@pytest.fixture(scope="module")
def trained_run(trained_runs) -> Path:
    return trained_runs["inspect me"]


@pytest.fixture(scope="module")
def server(inspect_server):
    return inspect_server


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1200) as pg:
        yield pg


def _open_tab(page, name: str):
    """Open tab `name` and wait for its figure (Mistakes of a perfect model has none: its note instead)."""
    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.get_by_role("tabpanel")          # hidden panels are not in the accessibility tree
    shown = panel.locator(VISUAL)
    if name == "Mistakes":
        shown = shown.or_(panel.get_by_text(re.compile(r"^0 mistakes")))
    shown.first.wait_for(state="visible")
    idle(page)
    return panel


def _shot(page, name: str, tall: bool = False) -> None:
    """A screenshot; tall ones use a 2400 px viewport, as Streamlit scrolls inside its own container."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    if tall:
        page.set_viewport_size({"width": 1440, "height": 2400})
        idle(page)
    page.screenshot(path=str(SHOTS / name))
    if tall:
        page.set_viewport_size({"width": 1440, "height": 1200})


def test_every_tab_shows_its_plot(server, trained_run, page):
    """?run=<id> opens the run; every view in TABS (Filters, Feature maps, Confusion, Mistakes, Attribution,
    Fool it, ...) shows a plot or a picture."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    page.get_by_role("tab", name="Filters").wait_for()
    idle(page)
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


def test_new_image_choice_updates_maps_attribution_and_fool_it(server, trained_run, page):
    """Typing another test index redraws the feature maps for that image; Attribution and Fool it follow it."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    panel = _open_tab(page, "Feature maps")
    box = panel.get_by_label(re.compile(r"^Index \(0 to \d+\)$"))
    box.fill("17")
    started = time.monotonic()
    box.press("Enter")
    panel.get_by_text("test image #17", exact=False).wait_for()
    idle(page)
    print(f"new image choice to settled page: {time.monotonic() - started:.2f} s (browser, incl. 0.6 s of waits)")
    _shot(page, "inspect-feature-maps-image-17.png", tall=True)
    for name in ("Attribution", "Fool it"):
        assert "Test image #17" in _open_tab(page, name).inner_text(), name


KERNEL_AT_JS = """k => { const el = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(e => (e.data || []).some(t => t.name === 'kernels'));
  const t = el.data.find(t => t.name === 'kernels'), i = t.customdata.indexOf(k), L = el._fullLayout;
  const r = el.getBoundingClientRect();
  return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[i]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[i])]; }"""


def test_a_click_on_a_kernel_shows_the_map_it_makes(server, trained_run, page):
    """Feature maps: click kernel 3 of conv1 (CNN Explainer's link): the kernel and its map for the chosen
    image appear beside the kernels, the map equal to conv1's channel 3."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    panel = _open_tab(page, "Feature maps")
    panel.get_by_text("features.conv1 filter 0").wait_for()               # the first kernel until one is clicked
    x, y = page.evaluate(KERNEL_AT_JS, 3)
    page.mouse.click(x, y)
    panel.get_by_text("features.conv1 filter 3").wait_for()
    panel.get_by_text("its map: features.conv1 channel 3").wait_for()
    idle(page)
    _shot(page, "inspect-kernel-map.png", tall=True)


def test_colour_first_layer_filters(server, trained_runs, page):
    """A CIFAR run's first conv layer draws its 3-channel kernels as colour tiles (a plotly image trace)."""
    page.goto(f"{server}/inspect?run={trained_runs['colour'].name}")
    panel = _open_tab(page, "Filters")
    panel.get_by_text("colour (grey = 0), shared range").wait_for()
    assert page.evaluate("() => document.querySelector('.js-plotly-plot').data[0].type") == "image"
    _shot(page, "inspect-filters-rgb.png")


def test_feature_maps_keep_network_order_on_a_phone(server, trained_run, page):
    """At 400 px the feature-map charts stack top to bottom in the network's own order (two columns once
    stacked as conv1, pool1, act2, act1, ...)."""
    from cnn_core.analysis import inspection
    from cnn_core.runs import checkpoints, store

    model = checkpoints.model_from_checkpoint(checkpoints.load_checkpoint(trained_run / store.BEST))
    order = [name for name, _ in inspection.feature_layers(model)]
    page.set_viewport_size({"width": 400, "height": 1200})
    try:
        page.goto(f"{server}/inspect?run={trained_run.name}")
        panel = _open_tab(page, "Feature maps")
        panel.locator(".js-plotly-plot").nth(len(order) + 3).wait_for()   # probabilities, kernel + its map, layers
        tops = panel.locator(".js-plotly-plot .gtitle").evaluate_all(
            "els => els.map(e => [e.getBoundingClientRect().top, e.textContent])")
        shown = [text.split(" · ")[0] for _, text in sorted(tops) if " · output " in text]
        assert shown == order, shown
    finally:
        page.set_viewport_size({"width": 1440, "height": 1200})


def test_untrained_weights_read_dashes_not_none_and_images_have_alt_text(server, trained_run, page):
    """Epoch 0 (untrained): the class report shows '–' where precision or F1 is undefined, never 'None';
    every gallery image has alt text that says what it shows."""
    page.goto(f"{server}/inspect?run={trained_run.name}")
    page.get_by_role("tab", name="Filters").wait_for()
    idle(page)
    page.get_by_role("slider").first.focus()
    page.keyboard.press("Home")                                         # epoch 0
    page.get_by_text("Epoch 0 is the untrained network").wait_for()
    idle(page)
    panel = _open_tab(page, "Confusion")
    report = panel.locator("[data-testid='stTable']").first
    report.wait_for()
    cells = report.inner_text()
    assert "None" not in cells and "nan" not in cells.lower() and "–" in cells, cells
    panel = _open_tab(page, "Mistakes")
    alts = panel.locator("[data-testid='stImage'] img").evaluate_all("els => els.map(e => e.alt)")
    assert alts and all(a.startswith("Test image ") and " read as " in a for a in alts), alts[:3]
