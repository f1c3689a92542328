"""The layer editor in a real browser (Train > New run, "Your own layers"): start from LeNet, see every
layer's shape and parameters, add a layer where it does not fit and read why, remove it, edit a conv,
move a layer, and launch the network as a run whose run.json holds the list; then steer it from the live
panel: pause, a new learning rate, continue (the change drawn on the learning-rate chart), stop. On a
phone (400 px) every layer is one line; "Move to position" moves a layer several places in one go.

A `streamlit run dashboard.py` server runs as a subprocess on a free port over the small generated
datasets and its own runs folder. Screenshots (1440 and 400 px) go to artifacts/screenshots/.
"""
from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from browserkit import (
    SHOTS,
    chromium_page,
    fill,
    idle,
    open_train_form,
    run_until,
    select,
    stopped_at_launch,
    training_dashboard,
)


@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("editor-runs")
    with training_dashboard(small_data_dir, runs_dir, tmp_path_factory.mktemp("editor-log")) as base:
        yield base, runs_dir


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1300) as pg:
        yield pg


@pytest.fixture
def fresh(page):
    """A page of its own (a new browser context: a new Streamlit session, the editor's example list), in the
    module's browser; 1440 px wide."""
    context = page.context.browser.new_context(viewport={"width": 1440, "height": 1300})
    try:
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
    finally:
        context.close()


def _shown(page, text: str):
    """A layer's line (or its open editor's figures, or an added layer's caption) holding `text`."""
    return page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=text).first


ROWS = '[class*="st-key-le-row-"]'


def _row(page, name: str):
    """The row whose line starts with the layer's name (conv1, pool2, ...)."""
    line = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=re.compile(rf"^{name} · "))
    return page.locator(ROWS).filter(has=line)


def _names(page) -> list[str]:
    """The layers' names, line by line, top to bottom."""
    return [row.locator('[data-testid="stMarkdownContainer"]').first.inner_text().split(" · ")[0]
            for row in page.locator(ROWS).all()]


EDITOR = '[class*="st-key-le-pos-"]'       # the open editor's "Move to position"


def _edit(page, name: str) -> None:
    """Open the editor of layer `name` (under its line) and wait for its widgets."""
    _row(page, name).locator('[class*="st-key-le-edit-"] button:visible').click()
    _row(page, name).locator(EDITOR).wait_for()
    idle(page)


def _close(page) -> None:
    """Close the open editor with its row's edit button."""
    page.locator(ROWS).filter(has=page.locator(EDITOR)).locator('[class*="st-key-le-edit-"] button:visible').click()
    page.locator(EDITOR).wait_for(state="detached")
    idle(page)


def _open_editor(page, base: str) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    open_train_form(page, base, "MNIST", "Your own layers (layer editor)")
    page.get_by_role("heading", name="Your layers").wait_for()
    idle(page)
    expect(page.locator(ROWS)).to_have_count(9)                        # the editor's example


def test_at_400_px_every_layer_is_one_line(server, fresh):
    """On a phone the editor is one line per layer (its name, kind and settings, cut with an ellipsis; up,
    down and an edit button), not a stack of widgets per layer: 9 layers were 161-385 px each, 3,094 px in
    all; a layer's editor opens under its line, within the screen, and edits it."""
    from playwright.sync_api import expect

    base, _ = server
    page = fresh
    page.set_viewport_size({"width": 400, "height": 1300})
    _open_editor(page, base)
    rows = page.locator(ROWS)
    for k in range(rows.count()):
        row, line = rows.nth(k), rows.nth(k).locator('[data-testid="stMarkdownContainer"]').first
        assert row.bounding_box()["height"] < 90, (k, row.bounding_box(), line.inner_text())
        assert line.bounding_box()["height"] < 40, (k, line.bounding_box())     # one line of text
        buttons = row.locator("button:visible")
        assert {round(buttons.nth(b).bounding_box()["y"]) for b in range(buttons.count())} == \
            {round(buttons.first.bounding_box()["y"])}                              # on the same line
    top = page.get_by_role("heading", name="Your layers").bounding_box()["y"]
    add = page.locator('[data-testid="stSelectbox"]').filter(has_text="Add a layer").bounding_box()
    height = add["y"] + add["height"] - top
    assert height < 1500, f"the editor is {height:.0f} px long at 400 px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "layer-editor-400-lines.png"))
    _edit(page, "fc1")                          # a lower line: its editor opens in the page, not off screen
    for box in page.locator(f'{ROWS} input:visible, {ROWS} button:visible').all():
        assert 0 <= box.bounding_box()["x"] and box.bounding_box()["x"] + box.bounding_box()["width"] <= 400
    _close(page)
    _edit(page, "conv1")
    out = page.get_by_role("spinbutton", name="out", exact=True)
    expect(out).to_have_value("16")
    out.fill("8")
    out.press("Enter")
    idle(page)
    expect(_shown(page, "conv1 · conv 3x3, 8 filters, stride 1, pad 1 → 8 × 28 × 28")).to_be_visible()
    page.screenshot(path=str(SHOTS / "layer-editor-400-edit.png"))
    _close(page)


def test_move_to_position_moves_a_layer_several_places_in_one_go(server, fresh):
    """pool2 (6th) to position 2 in one choice: the lines, the shapes and the downloaded list follow, its
    editor stays open with it; the flatten moved to the top makes the convs below it not fit, in words."""
    from playwright.sync_api import expect

    base, _ = server
    page = fresh
    _open_editor(page, base)
    _edit(page, "pool2")
    expect(page.get_by_role("combobox", name="Move to position")).to_have_value("6")
    select(page, "Move to position", "2")
    idle(page)
    assert _names(page) == ["conv1", "pool1", "act1", "pool2", "conv2", "act2", "flatten", "fc1", "act3"]
    expect(_row(page, "pool1").get_by_role("combobox", name="Move to position")).to_have_value("2")
    expect(_shown(page, "pool1 · max pool 2x2, stride 2 → 16 × 14 × 14")).to_be_visible()
    expect(_shown(page, "conv2 · conv 3x3, 32 filters, stride 1, pad 1 → 32 × 7 × 7")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^105,866 parameters in all\."))).to_be_visible()    # as before
    _close(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Layers as JSON").click()
    stack = json.loads(Path(download.value.path()).read_text())
    assert [(l["type"], l.get("fn")) for l in stack] == [
        ("conv", None), ("maxpool", None), ("activation", "relu"), ("maxpool", None), ("conv", None),
        ("activation", "relu"), ("flatten", None), ("linear", None), ("activation", "relu")]

    _edit(page, "flatten")                      # 7th to the top: the convs now come after it
    select(page, "Move to position", "1")
    idle(page)
    assert _names(page)[:2] == ["flatten", "conv1"]
    expect(page.get_by_text("conv1 comes after the image was flattened").first).to_be_visible()
    _close(page)
    expect(page.get_by_role("button", name="Launch").first).to_be_disabled()


def test_build_a_network_layer_by_layer_and_launch_it(server, page):
    from playwright.sync_api import expect

    from cnn_core.nets import architectures, layers
    from cnn_core.runs import metrics_log, store
    from cnn_core.train import jobs

    expect.set_options(timeout=60_000)
    base, runs_dir = server
    open_train_form(page, base, "MNIST", "Your own layers (layer editor)")
    page.get_by_role("heading", name="Your layers").wait_for()
    expect(_shown(page, "conv1 · conv 3x3, 16 filters, stride 1, pad 1 → 16 × 28 × 28 · 160 parameters (total 160) "
                        "· out = floor((28 + 2*1 - 3) / 1) + 1 = 28 · one value sees 3×3 px")).to_be_visible()

    select(page, "Start from", "LeNet-style CNN (PyTorch MNIST example)")    # its layers come at once
    idle(page)
    lenet = sum(p.numel() for p in architectures.build_model("lenet", (1, 28, 28), 10).parameters())
    expect(page.get_by_text(re.compile(rf"^{lenet:,} parameters in all\. Activations kept"))).to_be_visible()
    expect(_shown(page, "→ 20 × 4 × 4")).to_be_visible()

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Add a layer")
    box.click()
    page.keyboard.type("maxpool")                 # the list filters as one types
    page.keyboard.press("Enter")
    expect(page.get_by_role("combobox", name="Add a layer")).to_have_value(re.compile("^maxpool: keeps"))
    page.get_by_role("button", name="Add", exact=True).click()
    idle(page)
    expect(_shown(page, "→ 20 × 2 × 2")).to_be_visible()   # in before the flatten, where feature maps are
    expect(page.get_by_text(re.compile(r"comes after the image was flattened"))).to_have_count(0)
    page.screenshot(path=str(SHOTS / "layer-editor-added.png"))
    _edit(page, "pool3")
    page.locator('[class*="st-key-le-del-"] button:visible').click()
    idle(page)
    expect(page.get_by_text(re.compile(rf"^{lenet:,} parameters in all\. Activations kept"))).to_be_visible()

    _edit(page, "conv1")                                                    # conv1: 4 filters instead of 10
    conv1 = page.get_by_role("spinbutton", name="out", exact=True)
    conv1.fill("4")
    conv1.press("Enter")
    idle(page)
    expect(_shown(page, "→ 4 × 24 × 24 · 104 parameters (total 104)")).to_be_visible()
    _close(page)
    page.locator('[class*="st-key-le-down-"] button:visible').first.click()   # conv1 below pool1: pool first
    idle(page)
    expect(_shown(page, "→ 1 × 14 × 14")).to_be_visible()
    page.locator('[class*="st-key-le-up-"] button:visible').nth(1).click()     # the conv (row 2) back on top
    idle(page)
    expect(_shown(page, "→ 4 × 24 × 24")).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "layer-editor.png"), full_page=True)
    page.set_viewport_size({"width": 400, "height": 1300})
    idle(page)
    page.screenshot(path=str(SHOTS / "layer-editor-400.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1300})
    idle(page)

    fill(page, "spinbutton", "Epochs", "1000")
    page.get_by_role("button", name="Launch").first.click()
    pid = stopped_at_launch(runs_dir)        # runs only while the test watches: no machine finishes it first
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    (record,) = store.readable(store.list_runs(runs_dir))
    stack = record.config["arch_params"]["layers"]
    assert record.arch == "custom" and stack[0] == {"type": "conv", "out": 4, "kernel": 5, "stride": 1,
                                                     "padding": 0, "bias": True}
    assert [l["type"] for l in stack] == [l["type"] for l in layers.from_model(architectures.build_model(
        "lenet", (1, 28, 28), 10))]
    assert record.n_params == layers.plan(stack, (1, 28, 28), 10)[-1].total == lenet - 6 * 26 - 6 * 20 * 25

    run_until(pid, record.path, lambda r: r.status == "running" and r.progress.get("step"))
    page.get_by_role("button", name="Pause").click()
    os.kill(pid, signal.SIGCONT)             # it takes the pause at its next step
    page.locator('[data-testid="stTabs"] strong').filter(has_text=re.compile("^paused$")).first.wait_for()
    assert store.read_run(record.path).effective_status == "paused"
    fill(page, "spinbutton", "New learning rate", "0.004")
    page.get_by_role("button", name="Set rate").click()
    idle(page)
    page.get_by_role("button", name="Continue").click()
    deadline = time.monotonic() + 60
    while not [m for m in metrics_log.read_metrics(record.path) if m["kind"] == "steer"]:
        assert time.monotonic() < deadline, "the rate change was not taken"
        time.sleep(0.1)
    os.kill(pid, signal.SIGSTOP)             # held again while the chart shows the change
    (steer,) = [m for m in metrics_log.read_metrics(record.path) if m["kind"] == "steer"]
    assert steer["lr"] == 0.004 and steer["was"] == record.config["lr"]
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(e => (e.data || []).some(t => t.name === 'changed'))", timeout=60_000)
    page.screenshot(path=str(SHOTS / "train-steered.png"))
    in_progress = page.locator('[data-testid="stMarkdownContainer"]').filter(   # redrawn with the panel,
        has_text=re.compile(r"^In progress:")).first                                # not left at "waiting"
    expect(in_progress).to_contain_text(f"{record.name} — training")
    expect(in_progress).not_to_contain_text("waiting")
    expect(page.get_by_role("combobox", name="Run")).not_to_have_value(re.compile("queued"))
    deadline = time.monotonic() + 30
    while not (record.path / store.CANCEL).exists():     # the request is written before the process goes on
        assert time.monotonic() < deadline, "Stop made no cancel request"
        if page.get_by_role("button", name="Stop").is_visible():
            page.get_by_role("button", name="Stop").click()    # again, if a panel redraw took the first click
        page.wait_for_timeout(500)
    os.kill(pid, signal.SIGCONT)
    assert jobs.wait(record.path, timeout=60) == "cancelled"
