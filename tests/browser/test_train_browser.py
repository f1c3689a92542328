"""The dashboard in a real browser: launch a run from Train, watch it grow, reload, stop, resume, finish.

A `streamlit run dashboard.py` server runs as a subprocess on a free port, over the small generated
datasets and its own runs folder; Debian's chromium is driven by Playwright. Screenshots go to
artifacts/screenshots/ for a person to look at.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from browserkit import SHOTS, chromium_page, dashboard_server


STEP_RE = re.compile(r"step (\d+)/(\d+)")

@pytest.fixture(scope="module")
def server(small_data_dir, tmp_path_factory):
    """A dashboard server on a free port; yields (base url, runs folder)."""
    runs_dir = tmp_path_factory.mktemp("browser-runs")
    try:
        with dashboard_server(small_data_dir, runs_dir, tmp_path_factory.mktemp("browser-log"),
                              CNN_MAX_JOBS="2") as base:
            yield base, runs_dir
    finally:
        from cnn_core import jobs, runs  # stop whatever a failed test left training
        for r in runs.list_runs(runs_dir):
            if jobs.cancel(Path(r["path"])) in runs.ACTIVE:
                jobs.wait(Path(r["path"]), timeout=60)


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1300) as pg:
        yield pg


def _epochs_lasting(seconds: float, steps_per_epoch: int = 63) -> int:
    """Epochs of the browser run (LeNet, batch 8, 500 training images: 63 steps each) that take about
    `seconds` on this machine as loaded right now: long enough to reload and stop it mid-run, short
    enough to watch it finish. A CPU here trains 10 to 300 such steps a second depending on load."""
    import torch
    import torch.nn.functional as F

    from cnn_core.models import build_model

    model = build_model("lenet", (1, 28, 28), 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < 0.5:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
    steps_per_s = n / (time.perf_counter() - t0) / 2   # the run also evaluates, checkpoints, and shares the CPU
    return max(8, min(100, round(seconds * steps_per_s / steps_per_epoch)))


def _select(page, label: str, option: str) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(800)


def _text(page, label: str, value: str) -> None:
    """Type into a text or number input (the label's help button shares its name) and commit it."""
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(800)


def _number(page, label: str, value: str) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(800)


def _status(page, status: str):
    """The live panel's status word (bold, alone), not the same word in a tooltip."""
    return page.locator('[data-testid="stTabs"] strong').filter(has_text=re.compile(f"^{status}$")).first


def _reading(page) -> tuple[int, int]:
    """(training step shown in the progress bar, points in the loss chart's first trace)."""
    text = page.locator('[data-testid="stProgress"]').first.inner_text()
    step = int(STEP_RE.search(text).group(1)) if STEP_RE.search(text) else 0
    points = page.evaluate("() => { const el = document.querySelector('.js-plotly-plot');"
                           " return el && el.data && el.data[0].x ? el.data[0].x.length : 0; }")
    return step, points


def _grows(page, timeout: float = 30) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two readings, the second with both the step and the chart's point count larger."""
    deadline = time.monotonic() + timeout
    first = _reading(page)
    while first[0] == 0 or first[1] == 0:
        assert time.monotonic() < deadline, f"no progress or chart yet: {first}"
        page.wait_for_timeout(500)
        first = _reading(page)
    while True:
        page.wait_for_timeout(1000)
        second = _reading(page)
        if second[0] > first[0] and second[1] > first[1]:
            return first, second
        assert time.monotonic() < deadline, f"the run did not grow: {first} then {second}"


def test_launch_watch_reload_stop_resume(server, page):
    """Launch from Train, see steps and chart points grow, reload and see the same run still growing,
    Stop (cancelled, checkpoint on disk), Resume until completed with a test accuracy."""
    base, runs_dir = server
    page.goto(f"{base}/train")        # the server's very first request is a deep link to a page
    page.get_by_text("Data and model").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs folder").wait_for()  # the frame ran

    _select(page, "Dataset", "Fashion-MNIST")
    _select(page, "Architecture", "LeNet-style CNN (PyTorch MNIST example)")
    _number(page, "Batch size", "8")
    _number(page, "Epochs", str(_epochs_lasting(22)))
    _number(page, "Validation images (empty = default)", "100")
    _text(page, "Run name (optional)", "browser run")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-form.png"), full_page=True)
    page.get_by_role("button", name="Launch").click()

    page.get_by_role("tab", name="Live", selected=True).wait_for()   # Launch opens the Live tab
    first, second = _grows(page, timeout=60)
    (run_id,) = [p.name for p in runs_dir.iterdir() if (p / "run.json").exists()]
    assert f"run={run_id}" in page.url

    page.reload()                     # the URL names the run: the page opens on its Live tab
    page.locator('[data-testid="stProgress"]').first.wait_for()
    after_reload, later = _grows(page)
    assert after_reload[0] >= second[0], "after a reload the page shows the same run, further on"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-live.png"))
    assert "browser run" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()

    page.get_by_role("button", name="Stop").click()
    _status(page, "cancelled").wait_for(timeout=60_000)
    assert (runs_dir / run_id / "checkpoint.pt").stat().st_size > 0
    stopped_at = _reading(page)[0]

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
