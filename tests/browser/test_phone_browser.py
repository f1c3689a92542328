"""The dashboard on a phone (400x800) in a real browser: on Draw, a digit written with a real stroke on the
canvas is answered in the first screen, right under the canvas; at 1440 px the answer stays beside it.
Screenshots go to artifacts/screenshots/phone-*.png for a person to look at.

The server is `make run`'s own command line (tests/browserkit.py) over an empty runs folder, so the bundled
model is the only one (a fresh install).
"""
from __future__ import annotations

import contextlib

import pytest
from browserkit import ARGS, CHROMIUM, ROOT, SHOTS, dashboard_server
from test_draw_browser import _draw, _prediction, one

BUNDLED = ROOT / "models" / "mnist-bundled" / "best.pt"

pytestmark = [
    pytest.mark.skipif(not BUNDLED.exists(), reason="models/mnist-bundled is not made yet: scripts/make_bundled_model.py"),
]


@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    """A dashboard server on a free port over an empty runs folder; yields its base url."""
    with dashboard_server(small_data_dir, tmp_path_factory.mktemp("phone-runs"),
                          tmp_path_factory.mktemp("phone-log")) as base:
        yield base


@contextlib.contextmanager
def _page(width: int, height: int):
    """A headless chromium page of this viewport (browserkit's chromium_page is 1440 px wide)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(90_000)
        try:
            yield page
        finally:
            browser.close()


def _drawn(page, base: str, name: str):
    """Open Draw, write a '1' with the mouse on the real canvas; the canvas's and the answer's boxes."""
    from playwright.sync_api import expect

    page.goto(f"{base}/draw")
    canvas = page.locator("canvas.upper-canvas")
    canvas.wait_for(state="visible")
    page.get_by_text("Draw a digit with the mouse").wait_for()
    page.wait_for_timeout(800)                               # fabric.js attaches its mouse handlers
    _draw(page, one())
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        expect(_prediction(page)).to_have_text("Prediction: 1", timeout=60_000)
    except AssertionError:
        page.screenshot(path=str(SHOTS / f"{name}-FAILED.png"), full_page=True)
        raise
    page.wait_for_timeout(800)                               # the page settles (charts drawn)
    page.screenshot(path=str(SHOTS / f"{name}.png"))         # the first screen, as seen
    return canvas.bounding_box(), _prediction(page).bounding_box()


def test_phone_draw_answer_in_first_screen(server):
    """At 400x800 the prediction sits right under the canvas and within the first screen (it was at y=1084)."""
    with _page(400, 800) as page:
        canvas, answer = _drawn(page, server, "phone-draw-400")
    assert answer["y"] >= canvas["y"] + canvas["height"], (canvas, answer)
    assert answer["y"] + answer["height"] <= 800, (canvas, answer)


def test_wide_draw_answer_beside_canvas(server):
    """At 1440x900 the layout is unchanged: the prediction stands right of the canvas, level with its top half."""
    with _page(1440, 900) as page:
        canvas, answer = _drawn(page, server, "phone-draw-1440")
    assert answer["x"] > canvas["x"] + canvas["width"], (canvas, answer)
    assert canvas["y"] - 50 <= answer["y"] <= canvas["y"] + canvas["height"] / 2, (canvas, answer)
