"""Sweeps in a real browser: Train's Sweep tab (the New run form as the base, a swept field edited in the
table, Launch, the trials listed as they go) and Compare's Sweeps section (trials by score with the best
marked, overlaid curves, parallel coordinates, what mattered, Delete).

A `streamlit run dashboard.py` server runs as a subprocess on a free port over the small generated
datasets and its own runs folder; the sweep's trials are real runs in detached processes. Screenshots go
to artifacts/screenshots/ for a person to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from browserkit import (
    SHOTS,
    chromium_page,
    fill,
    idle,
    open_train_form,
    training_dashboard,
)


@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("sweep-runs")
    with training_dashboard(small_data_dir, runs_dir, tmp_path_factory.mktemp("sweep-log"), CNN_MAX_JOBS="2") as base:
        yield base, runs_dir


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1300) as pg:
        yield pg


def _edit_values(page, row: int, text: str) -> None:
    """Type into the data editor's "values" cell of `row`. The grid is a canvas: a click selects the
    cell, Enter opens its editor (typing at once loses the first keys while the editor opens), select
    all, type, Enter commits; the table glide keeps inside the canvas (for screen readers) shows the new
    text. Tried again if a rerun redrew the grid under the click."""
    from playwright.sync_api import expect

    grid = page.locator('[data-testid="stDataFrame"]').first
    cell, tried = grid.locator("td", has_text=text), []
    for _ in range(3):
        expect(grid.locator("td").first).to_be_attached()
        idle(page)
        box = grid.bounding_box()
        header, height = 35, 35                   # Streamlit's data editor: header and row heights in px
        page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + header + height * row + height / 2)
        page.wait_for_timeout(400)
        page.keyboard.press("Enter")
        editor = page.locator("textarea.gdg-input")          # glide's cell editor, over the canvas
        try:
            expect(editor).to_be_focused(timeout=3_000)
        except AssertionError:
            tried.append(grid.locator("td").all_inner_texts())
            continue
        editor.fill(text)
        page.keyboard.press("Enter")
        try:
            expect(cell).to_be_attached(timeout=5_000)
            idle(page)
            return
        except AssertionError:
            tried.append(grid.locator("td").all_inner_texts())
            page.keyboard.press("Escape")
    raise AssertionError(f"the cell did not take {text!r}: the grid read {tried}")


def test_launch_a_sweep_watch_its_trials_compare_and_delete_them(server, page):
    from playwright.sync_api import expect

    from cnn_core.runs import store
    from cnn_core.sweeps import ledger

    expect.set_options(timeout=90_000)
    base, runs_dir = server
    open_train_form(page, base, "MNIST", "LeNet-style CNN (PyTorch MNIST example)")
    fill(page, "spinbutton", "Batch size", "32")
    fill(page, "spinbutton", "Epochs", "2")
    fill(page, "spinbutton", "Validation images", "100")
    page.get_by_role("tab", name="Sweep").click()
    idle(page)
    _edit_values(page, 0, "0.003,0.05")
    page.get_by_role("button", name="Launch sweep").click()
    expect(page.get_by_text(re.compile(r"Launched sweep \S+: 2 trials"))).to_be_visible()
    (sweep,) = ledger.list_sweeps(runs_dir)
    assert sweep.grid == {"lr": [0.003, 0.05]} and sweep.base["epochs"] == 2 and sweep.base["arch"] == "lenet"
    expect(page.get_by_text(re.compile(r"^completed · 2 of 2 trials started"))).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-sweep.png"), full_page=True)
    trials = sorted(store.readable(store.list_runs(runs_dir)), key=lambda r: r.trial)
    assert [(r.sweep, r.trial, r.config["lr"], r.status) for r in trials] == [
        (sweep.id, 1, 0.003, "completed"), (sweep.id, 2, 0.05, "completed")]
    best = ledger.read(sweep.id, runs_dir).best()

    page.goto(f"{base}/compare")
    page.get_by_role("heading", name="Sweeps").wait_for()
    idle(page)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(e => (e.data || []).some(t => t.type === 'parcoords'))")
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(e => (e.data || []).some(t => String(t.name).startsWith('#2')))")
    kinds = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                          ".map(e => (e.data || []).map(t => t.type).join(','))")
    assert any("parcoords" in k for k in kinds) and any(k.startswith("bar") for k in kinds), kinds
    curves = page.evaluate("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".map(e => (e.data || []).map(t => t.name))")
    assert any({"#1", "#2"} <= {re.sub(r" .*", "", str(n)) for n in names} for names in curves), curves
    table = page.locator('[data-testid="stDataFrame"]').filter(has_text="why").first
    expect(table).to_be_visible()
    assert f"best: trial #{best['number']}, {best['score']:.4f}" in page.locator("body").inner_text()
    page.screenshot(path=str(SHOTS / "compare-sweep.png"), full_page=True)

    page.get_by_role("button", name="Delete this sweep").click()
    page.get_by_role("button", name="Delete sweep and its runs").click()
    expect(page.get_by_text(f"Deleted sweep {sweep.id} and its 2 runs.")).to_be_visible()
    assert not ledger.list_sweeps(runs_dir) and not store.list_runs(runs_dir)
    assert not any(Path(runs_dir, r.id).exists() for r in trials)
