"""A newcomer's first minutes in a real browser, at 1440x900 (a laptop's screen): from the first open,
through the navigation to Learn, lesson 1 answered, run, and its result read beside the answer; then the
New run tab's first screen (at most 8 fields before More settings), a preset applied at once and undone,
and after Launch the loss chart in view without scrolling. Clicks and seconds of the first part go to
artifacts/newcomer.json, screenshots to artifacts/screenshots/newcomer-*.png, for a person to look at.

The server is `make run`'s own command line (tests/browserkit.py), over the tests' small generated data
(the same lesson on the real digits is tests/test_lessons.py's)."""
from __future__ import annotations

import json
import os
import re
import signal
import time

import pytest
from browserkit import (
    SHOTS,
    chromium_page,
    dashboard_server,
    fill,
    idle,
    select,
    stopped_at_launch,
)

from cnn_core.train import lessons

ARTIFACTS = SHOTS.parent


@pytest.fixture
def server(small_data_dir, tmp_path):
    """A fresh install's server per test: an empty runs folder (a newcomer's), whose only run is the test's."""
    runs = tmp_path / "runs"
    with dashboard_server(small_data_dir, runs, tmp_path) as base:
        yield base, runs


@pytest.fixture
def page():
    with chromium_page(height=900) as pg:
        yield pg


def test_a_newcomer_answers_runs_and_reads_lesson_one(server, page):
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    base, _ = server
    lesson = lessons.LESSONS[0]
    clicks, start = 0, time.monotonic()
    page.goto(base)
    page.get_by_role("link", name="Learn").click()
    clicks += 1
    page.get_by_text(lesson.question).wait_for()                 # lesson 1 is open, its question on screen
    page.get_by_text(lesson.answer, exact=True).click()          # the learner's guess, before anything runs
    clicks += 1
    page.get_by_role("button", name="Run the experiments").click()
    clicks += 1
    expect(page.get_by_text(re.compile(r"^You answered over 90 %: (right|not this time)\."))).to_be_visible()
    seconds = round(time.monotonic() - start, 1)
    expect(page.get_by_text(lesson.tutorial)).to_be_visible()
    expect(page.get_by_text(f"1 of {len(lessons.LESSONS)} lessons done")).to_be_visible()   # counted at once
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "newcomer-lesson-1.png"), full_page=True)
    (ARTIFACTS / "newcomer.json").write_text(json.dumps({"lesson": lesson.id, "clicks": clicks, "seconds": seconds}))
    assert clicks == 3 and seconds < 120, (clicks, seconds)


def test_the_first_screen_of_new_run_a_preset_and_the_charts_after_launch(server, page):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    base, runs = server
    page.goto(f"{base}/train")
    page.get_by_text("Layers of the model").wait_for()
    idle(page)
    fields = page.evaluate("""() => {
        const more = [...document.querySelectorAll('[data-testid="stExpander"]')]
            .find(e => e.innerText.includes('More settings'));
        const top = more.getBoundingClientRect().top;
        return [...document.querySelectorAll('input, [role=combobox], textarea')]
            .filter(e => e.offsetParent && e.getBoundingClientRect().top < top).length }""")
    assert fields <= 8, fields
    lr = page.get_by_role("spinbutton", name="Learning rate", exact=True)
    before = lr.input_value()
    select(page, "Dataset", "Fashion-MNIST")
    select(page, "Preset", "fast")                                 # applied at once: no second button
    expect(page.get_by_role("spinbutton", name="Learning rate ✦", exact=True)).to_have_value("0.1")
    page.get_by_role("button", name="Undo").click()
    idle(page)
    expect(page.get_by_role("spinbutton", name="Learning rate", exact=True)).to_have_value(before)
    fill(page, "spinbutton", "Label smoothing", "0.1")          # opens More settings, as a person does
    idle(page)
    expect(page.get_by_text("More settings (1 changed)")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="Weight decay", exact=True)).to_be_visible()   # still open
    fill(page, "spinbutton", "Epochs", "1000")
    page.get_by_role("button", name="Launch").first.click()
    pid = stopped_at_launch(runs)            # held while the test looks: no machine finishes it first
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    box = chart.bounding_box()
    page.screenshot(path=str(SHOTS / "newcomer-live.png"))
    os.kill(pid, signal.SIGKILL)
    assert box["y"] + box["height"] / 2 < 900, box                 # the loss chart, in view without scrolling
