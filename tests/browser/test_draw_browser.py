"""The Draw page in a real browser: digits written with mouse strokes on the real canvas are read by the
bundled model; Clear empties the canvas; an uploaded photo of a digit is read and a decompression bomb
is refused; on a phone (400x800) the answer is in the first screen, right under the canvas, and at 1440 px
beside it. Screenshots go to artifacts/screenshots/draw-*.png and phone-*.png for a person to look at.

A `streamlit run dashboard.py` server runs as a subprocess on a free port with an empty runs folder, so
the bundled model is the only one (a fresh install); Debian's chromium is driven by Playwright.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import re
import time

import pytest
from browserkit import ROOT, SHOTS, chromium_page, dashboard_server
from PIL import Image, ImageDraw

BUNDLED = ROOT / "models" / "mnist-bundled" / "best.pt"

pytestmark = [
    pytest.mark.skipif(not BUNDLED.exists(), reason="models/mnist-bundled is not made yet: scripts/make_bundled_model.py"),
]


@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    """A dashboard server on a free port over an empty runs folder; yields its base url."""
    with dashboard_server(small_data_dir, tmp_path_factory.mktemp("draw-runs"),
                          tmp_path_factory.mktemp("draw-log")) as base:
        yield base


@pytest.fixture(scope="module")
def page(server):
    with chromium_page(height=1250, timeout_ms=90_000) as pg:
        pg.goto(f"{server}/draw")                           # st.Page url_path "draw" (ui/nav.py)
        pg.locator("canvas.upper-canvas").wait_for(state="visible")
        pg.get_by_text("Draw a digit with the mouse").wait_for()
        yield pg


# ---- strokes as a person writes them, in canvas pixels (0..280) --------------------------------------------
def _line(a, b, n):
    """n small moves from a to b, with a hand's slight wobble (deterministic)."""
    return [(a[0] + (b[0] - a[0]) * i / n + 1.5 * math.sin(1.7 * i),
             a[1] + (b[1] - a[1]) * i / n + 1.5 * math.cos(2.3 * i)) for i in range(n + 1)]


def one(x=80, top=45, height=185):
    """A '1' left of centre: a short lead-in flick, then one long, slightly slanted downstroke."""
    return [_line((x - 14, top + 18), (x + 4, top), 4) + _line((x + 4, top), (x - 8, top + height), 24)]


def zero(cx=175, cy=150, rx=42, ry=62):
    """A '0' right of centre: one closed loop of many small moves, from the top, anticlockwise, a bit past the start."""
    n = 48
    return [[(cx + rx * math.sin(-2 * math.pi * i / n), cy - ry * math.cos(2 * math.pi * i / n))
             for i in range(n + 4)]]


def seven(left=160, top=30, width=80, height=110):
    """A small '7' in the top-right: the top bar left to right, then the diagonal down to the left, one stroke."""
    corner = (left + width, top + 2)
    return [_line((left, top), corner, 12) + _line(corner, (left + width * 0.35, top + height), 18)]


def _draw(page, strokes) -> None:
    canvas = page.locator("canvas.upper-canvas")
    box = canvas.bounding_box()
    sx, sy = box["width"] / 280, box["height"] / 280
    for stroke in strokes:
        x0, y0 = stroke[0]
        page.mouse.move(box["x"] + x0 * sx, box["y"] + y0 * sy)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * sx, box["y"] + y * sy, steps=2)
        page.mouse.up()


def _prediction(page):
    return page.locator("h2").filter(has_text="Prediction:")


def _clear(page) -> None:
    """Press Clear and wait for the fresh canvas (a new component instance) to be ready for strokes."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit with the mouse").wait_for()
    expect(_prediction(page)).to_have_count(0)
    expect(page.locator("canvas.upper-canvas")).to_have_count(1)
    page.locator("canvas.upper-canvas").wait_for(state="visible")
    page.wait_for_timeout(800)                               # fabric.js attaches its mouse handlers


def test_fresh_page_asks_for_a_digit(page):
    """On a fresh install the bundled model is preselected and the page asks for a drawing, no error."""
    from playwright.sync_api import expect

    expect(page.get_by_role("combobox", name="Model")).to_have_value(re.compile("bundled", re.IGNORECASE))
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "draw-empty.png"), full_page=True)


@pytest.mark.parametrize("digit, strokes", [("1", one()), ("0", zero()), ("7", seven())], ids=["one", "zero", "seven"])
def test_drawn_digit_is_read(page, digit, strokes):
    """Mouse strokes on the real canvas give 'Prediction: <digit>' with the bundled model; Clear empties it."""
    from playwright.sync_api import expect

    _draw(page, strokes)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        expect(_prediction(page)).to_have_text(f"Prediction: {digit}", timeout=60_000)
    except AssertionError:
        page.screenshot(path=str(SHOTS / f"draw-{digit}-FAILED.png"), full_page=True)
        raise
    page.get_by_text("What the first conv layer sees").wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()
    page.wait_for_timeout(600)                               # let the charts finish drawing
    page.screenshot(path=str(SHOTS / f"draw-{digit}.png"), full_page=True)
    _clear(page)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_upload_is_read_and_a_bomb_refused(page):
    """A photo-like dark-on-light '7' upload is read as 7; a 64-megapixel PNG is refused with st.error."""
    from playwright.sync_api import expect

    paper = Image.new("L", (400, 300), 235)
    ImageDraw.Draw(paper).line([(150, 60), (260, 60), (185, 250)], fill=20, width=16, joint="curve")
    page.get_by_role("radio", name="Upload").or_(page.get_by_role("button", name="Upload")).first.click()
    chooser = page.locator('[data-testid="stFileUploader"]').filter(has_text="A picture of one digit").locator(
        '[data-testid="stFileUploaderDropzoneInput"]')             # Classify many, below, has an uploader too
    chooser.set_input_files({"name": "seven.png", "mimeType": "image/png", "buffer": _png(paper)})
    expect(_prediction(page)).to_have_text("Prediction: 7", timeout=60_000)
    page.wait_for_timeout(600)
    page.screenshot(path=str(SHOTS / "draw-upload.png"), full_page=True)
    chooser.set_input_files({"name": "bomb.png", "mimeType": "image/png", "buffer": _png(Image.new("1", (8000, 8000)))})
    expect(page.locator('[data-testid="stAlertContentError"]')).to_contain_text("limit", timeout=60_000)
    expect(_prediction(page)).to_have_count(0)
    page.screenshot(path=str(SHOTS / "draw-upload-refused.png"), full_page=True)
    chooser.set_input_files({"name": "junk.png", "mimeType": "image/png", "buffer": b"\x89PNG but not really"})
    error = page.locator('[data-testid="stAlertContentError"]')
    expect(error).to_contain_text("not an image that can be read", timeout=60_000)
    assert "BytesIO" not in error.inner_text() and " at 0x" not in error.inner_text()


# ---- on a phone (400x800) the answer is in the first screen, right under the canvas; at 1440 px beside it ----
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


@contextlib.contextmanager
def _viewport(page, width: int, height: int):
    """Another page of the module's browser at this viewport (one Playwright per thread)."""
    other = page.context.browser.new_page(viewport={"width": width, "height": height})
    other.set_default_timeout(90_000)
    try:
        yield other
    finally:
        other.close()


def test_phone_draw_answer_in_first_screen(server, page):
    """At 400x800 the prediction sits right under the canvas and within the first screen (it was at y=1084)."""
    with _viewport(page, 400, 800) as phone:
        canvas, answer = _drawn(phone, server, "phone-draw-400")
    assert answer["y"] >= canvas["y"] + canvas["height"], (canvas, answer)
    assert answer["y"] + answer["height"] <= 800, (canvas, answer)


def test_wide_draw_answer_beside_canvas(server, page):
    """At 1440x900 the layout is unchanged: the prediction stands right of the canvas, level with its top half."""
    with _viewport(page, 1440, 900) as laptop:
        canvas, answer = _drawn(laptop, server, "phone-draw-1440")
    assert answer["x"] > canvas["x"] + canvas["width"], (canvas, answer)
    assert canvas["y"] - 50 <= answer["y"] <= canvas["y"] + canvas["height"] / 2, (canvas, answer)


# ---- Fool the model: the smallest change to the drawn digit that makes the model read another ----------------
FOOL_RESULT = ".st-key-draw-fool_result"                 # ui/draw/state.py FOOL_RESULT, as Streamlit names its box
FOOL_BUDGET_S = 2.0                                      # the search answers within this


def _fool(page, name: str) -> dict:
    """Open Fool the model under the answer to the drawn '1', press Find the smallest change; what it shows."""
    from playwright.sync_api import expect

    page.get_by_text("Fool the model", exact=True).click()
    button = page.get_by_role("button", name="Find the smallest change")
    button.wait_for()
    page.wait_for_timeout(300)
    start = time.monotonic()
    button.click()
    result = page.locator(FOOL_RESULT)
    try:
        expect(result).to_contain_text("Now it reads", timeout=60_000)
        expect(result.locator("img")).to_have_count(3)
    except AssertionError:
        page.screenshot(path=str(SHOTS / f"{name}-FAILED.png"), full_page=True)
        raise
    shown = time.monotonic() - start
    text = result.inner_text()
    new = re.search(r"Now it reads (\S+)", text)
    size = re.search(r"No pixel changed by more than (\d+)% of black-to-white \((\d\.\d+)\)", text)
    took = re.search(r"Found in ([\d.]+) s", text)
    assert new and size and took, text
    result.scroll_into_view_if_needed()
    page.wait_for_timeout(600)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    return {"new": new.group(1), "size": float(size.group(2)), "percent": int(size.group(1)),
            "search_s": float(took.group(1)), "click_to_shown_s": round(shown, 2)}


@pytest.mark.parametrize("width, height", [(1440, 900), (400, 800)], ids=["1440", "400"])
def test_fool_the_drawn_digit(server, page, width, height):
    """A '1' drawn on the real canvas, Find the smallest change pressed: the changed picture's top-1 is no longer
    the drawing's, the change stated is at most the 0.3 budget, the answer shows under 2 s after the click, and the three
    pictures stand side by side (at 400 px too). Screenshots: draw-fool-1440.png, draw-fool-400.png."""
    with _viewport(page, width, height) as view:
        _drawn(view, server, f"draw-fool-{width}-drawn")
        found = _fool(view, f"draw-fool-{width}")
        boxes = [view.locator(FOOL_RESULT).locator("img").nth(i).bounding_box() for i in range(3)]
    (SHOTS.parent / f"draw-fool-{width}.json").write_text(json.dumps(found))
    assert found["new"] != "1", found                                       # _drawn read it as 1
    assert 0 < found["size"] <= 0.3, found
    assert found["search_s"] < FOOL_BUDGET_S and found["click_to_shown_s"] < FOOL_BUDGET_S, found
    assert len({round(b["y"]) for b in boxes}) == 1, boxes                  # one row, even on a phone
    assert boxes[2]["x"] + boxes[2]["width"] <= width, boxes
