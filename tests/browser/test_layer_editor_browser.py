"""The layer editor in a real browser (Train > New run, "Your own layers"): start from LeNet, see every
layer's shape and parameters, add a layer where it does not fit and read why, remove it, edit a conv,
move a layer, and launch the network as a run whose run.json holds the list; then steer it from the live
panel: pause, a new learning rate, continue (the change drawn on the learning-rate chart), stop.

A `streamlit run dashboard.py` server runs as a subprocess on a free port over the small generated
datasets and its own runs folder. Screenshots (1440 and 400 px) go to artifacts/screenshots/.
"""
from __future__ import annotations

import os
import re
import signal
import time

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


def _caption(page, text: str):
    return page.locator('[data-testid="stCaptionContainer"]').filter(has_text=text).first


def test_build_a_network_layer_by_layer_and_launch_it(server, page):
    from playwright.sync_api import expect

    from cnn_core.nets import architectures, layers
    from cnn_core.runs import metrics_log, store
    from cnn_core.train import jobs

    expect.set_options(timeout=60_000)
    base, runs_dir = server
    open_train_form(page, base, "MNIST", "Your own layers (layer editor)")
    page.get_by_role("heading", name="Your layers").wait_for()
    expect(_caption(page, "→ 16 × 28 × 28 · 160 parameters (total 160) · out = floor((28 + 2*1 - 3) / 1) + 1 = 28 "
                          "· one value sees 3×3 px")).to_be_visible()

    select(page, "Start from", "LeNet-style CNN (PyTorch MNIST example)")    # its layers come at once
    idle(page)
    lenet = sum(p.numel() for p in architectures.build_model("lenet", (1, 28, 28), 10).parameters())
    expect(page.get_by_text(re.compile(rf"^{lenet:,} parameters in all\. Activations kept"))).to_be_visible()
    expect(_caption(page, "→ 20 × 4 × 4")).to_be_visible()

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Add a layer")
    box.click()
    page.keyboard.type("maxpool")                 # the list filters as one types
    page.keyboard.press("Enter")
    expect(page.get_by_role("combobox", name="Add a layer")).to_have_value(re.compile("^maxpool: keeps"))
    page.get_by_role("button", name="Add", exact=True).click()
    idle(page)
    expect(_caption(page, "→ 20 × 2 × 2")).to_be_visible()   # in before the flatten, where feature maps are
    expect(page.get_by_text(re.compile(r"comes after the image was flattened"))).to_have_count(0)
    page.screenshot(path=str(SHOTS / "layer-editor-added.png"))
    row = page.locator('[class*="st-key-le-row-"]').filter(has_text="pool3")
    row.locator('[class*="st-key-le-del-"] button:visible').click()
    idle(page)
    expect(page.get_by_text(re.compile(rf"^{lenet:,} parameters in all\. Activations kept"))).to_be_visible()

    conv1 = page.get_by_role("spinbutton", name="out", exact=True).first       # conv1: 4 filters instead of 10
    conv1.fill("4")
    conv1.press("Enter")
    idle(page)
    expect(_caption(page, "→ 4 × 24 × 24 · 104 parameters (total 104)")).to_be_visible()
    page.locator('[class*="st-key-le-down-"] button:visible').first.click()   # conv1 below pool1: pool first
    idle(page)
    expect(_caption(page, "→ 1 × 14 × 14")).to_be_visible()
    page.locator('[class*="st-key-le-up-"] button:visible').nth(1).click()     # the conv (row 2) back on top
    idle(page)
    expect(_caption(page, "→ 4 × 24 × 24")).to_be_visible()
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
