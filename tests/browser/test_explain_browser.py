"""Inspect's explaining views in a real browser, driven as a person drives them: Fool it (a budget, Smallest
change, the robustness curve), Attribution (captum's four maps) and the confusion matrix whose cells open
their pictures on a mouse click.

A `make run` server over the small generated data and a runs folder holding a lenet run on mnist and a
cifar-net run on cifar2, both trained by the test; Debian's chromium through Playwright. Screenshots at 1440
and 400 px go to artifacts/screenshots/explain-*.png for a person to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from browserkit import SHOTS, chromium_page, idle, select

from cnn_core.analysis import attribution

VISUAL = ".js-plotly-plot, [data-testid='stImage'] img"
TOP1 = re.compile(r"(Before|After):\s*(\S+) ([\d.]+)%")
SIZE = re.compile(r"largest pixel change ([\d.]+) = ")


@pytest.fixture(scope="module")
def runs(inspect_runs) -> dict[str, Path]:
    """lenet on mnist (2 epochs) and cifar-net on cifar2 (1 epoch: colour pictures, 1/255 budgets)."""
    return inspect_runs


@pytest.fixture(scope="module")
def server(inspect_server):
    return inspect_server


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1200, timeout_ms=90_000) as pg:
        yield pg


def _open(page, base: str, run: Path, tab: str):
    """The run's Inspect page at tab `tab`, its first picture or chart drawn; the tab's panel."""
    page.set_viewport_size({"width": 1440, "height": 1200})
    page.goto(f"{base}/inspect?run={run.name}")
    page.get_by_role("tab", name=tab, exact=True).click()
    panel = page.get_by_role("tabpanel")
    panel.locator(VISUAL).first.wait_for(state="visible")
    idle(page)
    return panel


def _shots(page, name: str, height: int = 2400, phone_height: int = 4200) -> None:
    """The page at 1440 px and at 400 px; tall viewports, as Streamlit scrolls inside its own container."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, tall in ((1440, height), (400, phone_height)):
        page.set_viewport_size({"width": width, "height": tall})
        idle(page)
        page.screenshot(path=str(SHOTS / f"explain-{name}-{width}.png"))
    page.set_viewport_size({"width": 1440, "height": 1200})
    idle(page)


def _answers(panel) -> tuple[str, str, float]:
    """(top-1 before, top-1 after, largest pixel change shown) as the tab writes them."""
    text = panel.inner_text()
    top = {label: cls for label, cls, _ in TOP1.findall(text)}
    return top["Before"], top["After"], float(SIZE.search(text).group(1))


def _budget(panel) -> float:
    return float(panel.get_by_role("slider").first.get_attribute("aria-valuetext"))


def test_fool_it_changes_the_answer_within_the_budget(server, runs, page):
    """Fool it: the budget moved to its largest value makes the model give another answer, the change shown
    no larger than the budget; Smallest change finds a smaller budget that still fools it."""
    panel = _open(page, server, runs["inspect me"], "Fool it")
    panel.get_by_text("After:", exact=True).wait_for()
    slider = panel.get_by_role("slider").first
    slider.focus()
    started = time.monotonic()
    page.keyboard.press("End")                                   # 0.30, the largest budget on digits
    panel.get_by_text("became").first.wait_for()                     # "Fooled: 7 became 3; ..."
    idle(page)
    print(f"PGD at 0.30, budget moved to picture shown: {time.monotonic() - started:.2f} s (browser)")
    eps = _budget(panel)
    before, after, size = _answers(panel)
    assert eps == 0.3 and after != before and size <= eps + 1e-6, (eps, before, after, size)
    started = time.monotonic()
    panel.get_by_text("Smallest change", exact=True).click()
    panel.get_by_text("the smallest budget that works is").wait_for()
    idle(page)
    print(f"Smallest change (PGD, about 8 attacks): {time.monotonic() - started:.2f} s (browser)")
    before2, after2, size2 = _answers(panel)
    found = float(re.search(r"the smallest budget that works is ([\d.]+)", panel.inner_text()).group(1))
    assert before2 == before and after2 != before and size2 <= found + 1e-3 and found < eps, (found, size2)
    _shots(page, "fool-it")


def test_robustness_curve_starts_at_the_clean_accuracy(server, runs, page):
    """The robustness button shows a progress bar and a Cancel button, which stops it (the button is back,
    no chart); then, on 100 images, it draws accuracy against the budget; its value at budget 0 is the
    clean accuracy the sentence under it states, and the curve never rises."""
    panel = _open(page, server, runs["inspect me"], "Fool it")
    panel.get_by_role("button", name=re.compile("Robustness curve on 200 test images")).click()
    panel.get_by_role("progressbar").wait_for()
    panel.get_by_role("button", name="Cancel").click()
    panel.get_by_role("button", name=re.compile("Robustness curve on 200 test images")).wait_for()
    idle(page)
    assert not panel.get_by_text("median fooling budget").count() and not panel.get_by_role("progressbar").count()
    select(page, "Test images", "100")
    idle(page)
    started = time.monotonic()
    panel.get_by_role("button", name=re.compile("Robustness curve on 100 test images")).click()
    panel.get_by_text("median fooling budget").first.wait_for()
    idle(page)
    print(f"robustness curve, PGD on 100 images: {time.monotonic() - started:.2f} s (browser)")
    xs, ys = page.evaluate("""() => { const el = Array.from(document.querySelectorAll('.js-plotly-plot'))
        .find(e => (e.data || []).some(t => t.name === 'accuracy'));
      const t = el.data.find(t => t.name === 'accuracy'); return [Array.from(t.x), Array.from(t.y)]; }""")
    clean = re.search(r"With no change, ([\d.]+)% of these 100", panel.inner_text()).group(1)
    assert xs[0] == 0 and f"{ys[0]:.1%}" == f"{clean}%", (ys[0], clean)
    assert all(a >= b for a, b in zip(ys, ys[1:])) and len(xs) == 16 and xs[-1] == pytest.approx(0.3)
    _shots(page, "robustness", height=2600)


def test_attribution_shows_four_maps_with_their_captions(server, runs, page):
    """Attribution: four maps over the picture (saliency, integrated gradients, occlusion, Grad-CAM), each
    with its one line; the two signed maps on a colour scale centred at 0."""
    panel = _open(page, server, runs["inspect me"], "Attribution")
    for line in attribution.METHODS.values():
        panel.get_by_text(line, exact=False).wait_for()
    maps = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .filter(e => e.checkVisibility() && (e.data || []).length === 2 && e.data[0].type === 'image')
        .map(e => [e.layout.title.text, e.data[1].zmin, e.data[1].zmax, e.data[1].zmid ?? null])""")
    titles = [re.sub(r"<[^>]+>", "", t) for t, *_ in maps]        # Streamlit's theme sets titles in <b>
    assert len(maps) == 4 and titles[:3] == ["Saliency", "Integrated gradients", "Occlusion"], maps
    assert titles[3].startswith("Grad-CAM · ")
    assert [m[1:] for m in maps] == [[0, 1, None], [-1, 1, 0], [-1, 1, 0], [0, 1, None]], maps
    _shots(page, "attribution", height=1400, phone_height=3000)


CELL_AT_JS = """([t, p, off]) => { const el = Array.from(document.querySelectorAll('.js-plotly-plot'))
    .find(e => e.checkVisibility() && (e.data || []).some(d => d.name === 'cells'));
  const d = el.data.find(d => d.name === 'cells'), L = el._fullLayout, r = el.getBoundingClientRect();
  const i = d.customdata.findIndex(c => c[0] === t && c[1] === p), k = Math.sqrt(d.x.length);
  return [r.left + L.xaxis._offset + L.xaxis.d2p(d.x[i]) + off * L.xaxis._length / k,
          r.top + L.yaxis._offset + L.yaxis.d2p(d.y[i]) + off * L.yaxis._length / k]; }"""


def _click_cell(page, panel, t: int, p: int, off: float = 0.0) -> None:
    """A mouse click on cell (t, p) of the confusion matrix, `off` of a cell right and down of its centre."""
    x, y = page.evaluate(CELL_AT_JS, [t, p, off])
    page.mouse.move(x, y)
    page.wait_for_timeout(200)
    page.mouse.click(x, y)
    panel.get_by_text(re.compile(rf"^True {t}, predicted {p}:")).first.wait_for()
    idle(page)


def test_a_click_on_a_confusion_cell_opens_its_pictures(server, runs, page):
    """Confusion: a mouse click on the cell (true 3, predicted 5) sets both boxes and the gallery header to
    that pair; a click near another cell's corner opens that one; a cell clicked before opens again; the
    same on a 400 px phone, where the cells are narrow."""
    panel = _open(page, server, runs["inspect me"], "Confusion")
    panel.get_by_text(re.compile(r"^True \d, predicted \d:")).first.wait_for()
    started = time.monotonic()
    _click_cell(page, panel, 3, 5)
    print(f"a cell clicked to its pictures shown: {time.monotonic() - started:.2f} s (browser)")
    boxes = panel.locator('[data-testid="stSelectbox"]')
    shown = [boxes.nth(i).inner_text() + boxes.nth(i).locator("input").first.input_value() for i in (0, 1)]
    assert shown[0].endswith("3") and shown[1].endswith("5"), shown
    _click_cell(page, panel, 7, 7, off=0.4)
    _click_cell(page, panel, 3, 5, off=-0.4)           # back to a cell clicked before: it opens again
    _click_cell(page, panel, 7, 7)
    assert panel.locator("[data-testid='stImage'] img").count() >= 1       # the cell's pictures
    _shots(page, "confusion-click", height=1800, phone_height=3600)
    page.set_viewport_size({"width": 400, "height": 3600})
    idle(page)
    _click_cell(page, panel, 2, 8, off=0.4)
    _click_cell(page, panel, 2, 7, off=-0.4)
    page.set_viewport_size({"width": 1440, "height": 1200})


def test_colour_pictures_get_budgets_in_255ths(server, runs, page):
    """A cifar2 run: the budget slider counts in 1/255 steps up to 16/255 and the change's size says so."""
    panel = _open(page, server, runs["colour"], "Fool it")
    panel.get_by_text("After:", exact=True).wait_for()
    assert panel.get_by_role("slider").first.get_attribute("aria-valuetext") == "8/255"
    assert re.search(r"largest pixel change [\d.]+ = [\d.]+% of black-to-white, [\d.]+/255", panel.inner_text())
    _shots(page, "fool-it-colour", height=1600, phone_height=3600)
