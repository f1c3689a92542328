"""The dashboard in a real browser: launch a run from Train, watch it grow, reload, stop, resume, finish.

A `streamlit run dashboard.py` server runs as a subprocess on a free port, over the small generated
datasets and its own runs folder; Debian's chromium is driven by Playwright. Screenshots go to
artifacts/screenshots/ for a person to look at.
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
    select,
    stopped_at_launch,
    training_dashboard,
)

STEP_RE = re.compile(r"step (\d+)/(\d+)")

@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    """A dashboard server on a free port; yields (base url, runs folder)."""
    runs_dir = tmp_path_factory.mktemp("browser-runs")
    with training_dashboard(small_data_dir, runs_dir, tmp_path_factory.mktemp("browser-log"), CNN_MAX_JOBS="2") as base:
        yield base, runs_dir


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1300) as pg:
        yield pg


# The run's length needs no guess at this machine's speed: its process is stopped (SIGSTOP) from the
# moment it is launched and runs only while the test watches it grow (two windows of a few seconds); 400
# epochs of 63 steps outlast them at any speed. Once stopped, its length is cut to the epoch it is in
# (jobs.more_epochs, what Train more does), so that Resume finishes it in seconds.
EPOCHS = 400


def _status(page, status: str):
    """The live panel's status word (bold, alone), not the same word in a tooltip."""
    return page.locator('[data-testid="stTabs"] strong').filter(has_text=re.compile(f"^{status}$")).first


def _reading(page) -> tuple[int, int]:
    """(training step shown in the progress bar, points in the loss chart's first trace)."""
    text = page.locator('[role="progressbar"]').first.inner_text()
    step = int(STEP_RE.search(text).group(1)) if STEP_RE.search(text) else 0
    points = page.evaluate("() => { const el = document.querySelector('.js-plotly-plot');"
                           " return el && el.data && el.data[0].x ? el.data[0].x.length : 0; }")
    return step, points


def _grows(page, pid: int, timeout: float = 30, chart: bool = True) -> tuple[tuple[int, int], tuple[int, int]]:
    """Let the stopped process run (SIGCONT) until two readings, the second with the step and (`chart`) the
    chart's point count larger (the charts redraw every 8 s, the progress every 2 s); stop it again."""
    os.kill(pid, signal.SIGCONT)
    try:
        deadline = time.monotonic() + timeout
        first = _reading(page)
        while first[0] == 0 or (chart and first[1] == 0):
            assert time.monotonic() < deadline, f"no progress or chart yet: {first}"
            page.wait_for_timeout(500)
            first = _reading(page)
        while True:
            page.wait_for_timeout(1000)
            second = _reading(page)
            if second[0] > first[0] and (second[1] > first[1] or not chart):
                return first, second
            assert time.monotonic() < deadline, f"the run did not grow: {first} then {second}"
    finally:
        os.kill(pid, signal.SIGSTOP)


def test_launch_watch_reload_stop_resume(server, page):
    """Launch from Train, see steps and chart points grow, reload and see the same run still growing,
    Stop (cancelled, checkpoint on disk), Resume until completed with a test accuracy."""
    base, runs_dir = server
    # the server's very first request is a deep link to a page
    open_train_form(page, base, "Fashion-MNIST", "LeNet-style CNN (PyTorch MNIST example)")
    fill(page, "spinbutton", "Batch size", "8")
    fill(page, "spinbutton", "Learning rate", "0.005")     # 0.03 with batch 8 diverges on these images
    fill(page, "spinbutton", "Epochs", str(EPOCHS))
    fill(page, "spinbutton", "Validation images", "100")
    fill(page, "textbox", "Run name (optional)", "browser run")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-form.png"), full_page=True)
    page.get_by_role("button", name="Launch").first.click()
    pid = stopped_at_launch(runs_dir)

    page.get_by_role("tab", name="Live", selected=True).wait_for()   # Launch opens the Live tab
    first, second = _grows(page, pid, timeout=60)
    (run_id,) = [p.name for p in runs_dir.iterdir() if (p / "run.json").exists()]
    assert f"run={run_id}" in page.url
    from cnn_core.runs import store

    held_at = store.read_run(runs_dir / run_id).progress["step"]
    page.reload()                         # the URL names the run: the page opens on its Live tab
    _status(page, "running").wait_for()
    page.locator('[role="progressbar"]').filter(has_text=f"step {held_at}/").first.wait_for()
    after_reload, later = _grows(page, pid, chart=False)        # the chart was seen to grow above
    assert after_reload[0] >= second[0], "after a reload the page shows the same run, further on"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-live.png"))
    assert "browser run" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    page.get_by_role("button", name="Stop").click()      # still stopped: the request waits for its next step
    deadline = time.monotonic() + 30
    while not (runs_dir / run_id / store.CANCEL).exists():
        assert time.monotonic() < deadline, "Stop made no cancel request"
        time.sleep(0.1)
    os.kill(pid, signal.SIGCONT)
    _status(page, "cancelled").wait_for(timeout=60_000)
    assert (runs_dir / run_id / "checkpoint.pt").stat().st_size > 0
    stopped_at = _reading(page)[0]
    from cnn_core.train import jobs

    jobs.more_epochs(runs_dir / run_id, 1)       # the rest: the epoch it stopped in (see EPOCHS)

    page.get_by_role("button", name="Resume").click()
    page.get_by_text(re.compile(r"Test accuracy \d")).wait_for(timeout=300_000)
    _status(page, "completed").wait_for()
    page.get_by_role("link", name=re.compile("Inspect this run")).wait_for()
    page.mouse.move(5, 5)             # no tooltip over the screenshot
    page.wait_for_timeout(1000)
    final_step, _ = _reading(page)
    assert final_step > stopped_at
    page.screenshot(path=str(SHOTS / "train-completed.png"))


def test_home_lists_the_run(server, page):
    """Home shows the datasets and the run just trained."""
    base, _ = server
    page.goto(base)
    page.get_by_text("Recent runs").wait_for()
    page.get_by_text("browser run").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "home.png"))
    text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
    for words in ("Datasets", "Fashion-MNIST", "Recent runs"):
        assert words in text


def test_launch_is_a_few_tab_presses_away(server, page):
    """From the top of a fresh Train page, the keyboard reaches Launch in a few Tab presses (the form's
    help icons once made it 52)."""
    base, _ = server
    page.goto(f"{base}/train")                  # a new session, no run in progress: it opens on New run
    page.get_by_text("Layers of the model").wait_for()
    idle(page)
    for presses in range(1, 41):                # from the top: the sidebar's links come first
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.innerText || ''").strip().endswith("Launch"):
            break
    else:
        raise AssertionError("40 Tab presses did not reach Launch")
    assert presses <= 15, f"{presses} Tab presses to reach Launch"


def _overflows(page, label: str) -> bool:
    """True when the selectbox labelled `label` cuts the text of its chosen option."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).first
    return box.locator("input").first.evaluate("el => el.scrollWidth > el.clientWidth + 1")


@pytest.mark.stress   # 17 s of opening every dropdown: in `make test-stress`, to keep the suite within 10 minutes
def test_dropdowns_show_their_whole_choice(server, page):
    """At 1440 px, every architecture's and dataset's name fits its dropdown, and so does a run with a long
    default name in the Live tab's run picker."""
    from cnn_core.config import TrainConfig
    from cnn_core.data import catalog
    from cnn_core.nets import architectures
    from cnn_core.runs import store
    from ui import views

    base, runs_dir = server
    page.goto(f"{base}/train")
    page.get_by_role("tab", name="New run").click()
    page.get_by_text("Layers of the model").wait_for()
    cut = []
    for arch in architectures.ARCHITECTURES.values():
        select(page, "Architecture", arch.title)
        cut += [arch.title] if _overflows(page, "Architecture") else []
    for info in catalog.DATASETS.values():
        select(page, "Dataset", info.title)
        cut += [info.title] if _overflows(page, "Dataset") else []
    config = TrainConfig(dataset="fashion-mnist", arch="res-net-deep", optimizer="adamw", lr=0.0003, epochs=100)
    path = store.create_run(config, views.default_name(config), runs_dir=runs_dir)
    store.update_run(path, status="cancelled")
    page.goto(f"{base}/train?run={path.name}")
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    idle(page)
    cut += ["run picker"] if _overflows(page, "Run") else []
    assert not cut, f"cut at 1440 px: {cut}"
