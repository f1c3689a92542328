"""Inspect's Class map and Dreams in a real browser, as a person uses them: on a lenet run the test trains over
two epochs (snapshots 0, 1, 2), the map shows every class and its 5-NN agreement, the epoch slider redraws it,
a click on a dot opens that picture in Feature maps, and Dreams shows a picture per class with its confidence.
Screenshots at 1440 and 400 px go to artifacts/screenshots/maps-*.png for a person to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browserkit import SHOTS, chromium_page, idle

CLASSES = [str(d) for d in range(10)]
KNN = re.compile(r"5 nearest neighbours agree \d+%")
# The class map's scatter (found by its title): its title, class traces and their first x values.
FIND = """Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(e => ((e.layout || {}).title || {}).text?.includes('of the last hidden features'))"""
MAP_JS = """() => { const el = """ + FIND + """;
  if (!el) return null;
  const traces = el._fullData.filter(t => t.customdata && t.customdata.length);   // decoded arrays
  return {title: el.layout.title.text, names: traces.map(t => t.name),
          xs: traces.map(t => Array.from(t.x).slice(0, 5))}; }"""
# Where on screen the most isolated dot is (a click there can hit no neighbour), its test index and class.
DOT_JS = """() => { const el = """ + FIND + """;
  const L = el._fullLayout, r = el.getBoundingClientRect(), dots = [];
  for (const t of el._fullData.filter(t => t.customdata && t.customdata.length))
    for (let i = 0; i < t.x.length; i++)
      dots.push([r.left + L.xaxis._offset + L.xaxis.l2p(t.x[i]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[i]),
                 t.customdata[i][0], t.name]);
  const gap = d => Math.min(...dots.filter(o => o !== d).map(o => Math.hypot(o[0] - d[0], o[1] - d[1])));
  return dots.reduce((best, d) => gap(d) > gap(best) ? d : best); }"""


@pytest.fixture(scope="module")
def trained_run(inspect_runs) -> Path:
    """lenet on the small mnist, 2 epochs: snapshots at epochs 0, 1 and 2."""
    return inspect_runs["inspect me"]


@pytest.fixture(scope="module")
def server(inspect_server):
    return inspect_server


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1200) as pg:
        yield pg


def _open(page, server, run: Path, tab: str):
    """Inspect on `run`, tab `tab` open and its page settled; the tab's panel."""
    page.goto(f"{server}/inspect?run={run.name}")
    page.get_by_role("tab", name="Filters").wait_for()
    idle(page)
    page.get_by_role("tab", name=tab, exact=True).click()
    panel = page.get_by_role("tabpanel")
    panel.locator(".js-plotly-plot, [data-testid='stImage'] img").first.wait_for(state="visible")
    idle(page)
    return panel


def _shot(page, name: str, width: int = 1440) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"maps-{name}-{width}.png"))


def _wait_map(page, title_part: str, timeout: float = 60) -> dict:
    """The scatter's data once its title holds `title_part` (the page redraws it element by element)."""
    deadline = time.monotonic() + timeout
    while True:
        got = page.evaluate(MAP_JS)
        if got and title_part in got["title"]:
            return got
        assert time.monotonic() < deadline, got and got["title"]
        page.wait_for_timeout(200)


def test_class_map_shows_every_class_and_changes_with_the_epoch(server, trained_run, page):
    """The map draws dots of all ten classes and says its 5-NN agreement; epoch 0 on the tab's slider redraws
    it (other dots, a title naming epoch 0)."""
    panel = _open(page, server, trained_run, "Class map")
    last = _wait_map(page, "epoch 2")                   # the run's best weights are its last epoch here
    assert last["names"] == CLASSES, last["names"]
    assert KNN.search(panel.inner_text())
    _shot(page, "class-map")
    panel.get_by_role("slider").first.focus()          # the tab's own epoch slider (the page's is above)
    started = time.monotonic()
    page.keyboard.press("Home")
    first = _wait_map(page, "epoch 0")
    idle(page)
    print(f"epoch slider to a redrawn map: {time.monotonic() - started:.2f} s (browser, incl. 0.6 s of waits)")
    assert first["names"] == CLASSES and first["xs"] != last["xs"]
    assert KNN.search(panel.inner_text())


def test_tsne_on_request(server, trained_run, page):
    """Choosing t-SNE redraws the map with t-SNE axes and still says the 5-NN agreement."""
    panel = _open(page, server, trained_run, "Class map")
    started = time.monotonic()
    panel.get_by_text("t-SNE", exact=True).click()
    got = _wait_map(page, "t-SNE of the last hidden features")
    idle(page)
    print(f"t-SNE chosen to a drawn map: {time.monotonic() - started:.2f} s (200 test pictures here)")
    assert got["names"] == CLASSES and KNN.search(panel.inner_text())


def test_a_click_on_a_dot_opens_that_picture_in_feature_maps(server, trained_run, page):
    """Click a dot: its picture shows beside the map, and Feature maps then shows that test image."""
    panel = _open(page, server, trained_run, "Class map")
    _wait_map(page, "epoch")
    x, y, index, name = page.evaluate(DOT_JS)
    page.mouse.click(x, y)
    panel.get_by_text(f"now show test image #{index}.", exact=False).wait_for()
    idle(page)
    assert panel.locator("[data-testid='stImage'] img").first.get_attribute("alt") == f"Test image {index}, a {name}"
    _shot(page, "class-map-clicked")
    maps = page.get_by_role("tab", name="Feature maps", exact=True)
    maps.click()
    fm = page.get_by_role("tabpanel")
    fm.get_by_text(f"test image #{index} · true class {name}").wait_for()
    assert fm.get_by_label(re.compile(r"^Index \(0 to \d+\)$")).input_value() == str(index)


def test_dreams_show_a_picture_per_class_with_its_confidence(server, trained_run, page):
    """Dreams: ten pictures, each captioned with its class and the model's confidence; Filters: a conv layer's."""
    panel = _open(page, server, trained_run, "Dreams")
    pictures = panel.locator("[data-testid='stImageContainer']")      # st.image of a list: one each
    assert pictures.count() == 10
    captions = [c for c in panel.inner_text().splitlines() if re.fullmatch(r"\d · <?\d+%", c.strip())]
    assert [c.split(" · ")[0] for c in captions] == CLASSES, captions
    alts = panel.locator("[data-testid='stImage'] img").evaluate_all("els => els.map(e => e.alt)")
    assert all(a.startswith("What the model sees as a ") for a in alts), alts
    _shot(page, "dreams")
    panel.get_by_text("Filters", exact=True).click()
    panel.get_by_text("conv1[0] ·").wait_for()
    idle(page)
    tiles = [c for c in panel.inner_text().splitlines() if re.fullmatch(r"conv1\[\d+\] · -?\d+\.\d\d", c.strip())]
    assert len(tiles) == 10, tiles                                          # lenet's conv1: 10 filters
    _shot(page, "dreams-filters")


@pytest.mark.parametrize("tab", ["Class map", "Dreams"])
def test_phone_width(server, trained_run, page, tab):
    """At 400 px each tab draws without sideways scrolling: its chart or pictures fit the screen."""
    page.set_viewport_size({"width": 400, "height": 2400})     # tall: the whole tab in the screenshot
    try:
        panel = _open(page, server, trained_run, tab)
        if tab == "Class map":
            _wait_map(page, "epoch")
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        box = panel.locator(".js-plotly-plot, [data-testid='stImage'] img").first.bounding_box()
        assert wide <= 400 and box["x"] >= 0 and box["x"] + box["width"] <= 400, (wide, box)
        _shot(page, tab.lower().replace(" ", "-"), width=400)
    finally:
        page.set_viewport_size({"width": 1440, "height": 1200})
