"""The dashboard in a real browser: launch a run from Train, watch it grow, reload, stop, resume, finish.

A `streamlit run dashboard.py` server runs as a subprocess on a free port, over the small generated
datasets and its own runs folder; Debian's chromium is driven by Playwright. Screenshots go to
artifacts/screenshots/ for a person to look at.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import time

import pytest

from browserkit import SHOTS, chromium_page, training_dashboard, fill, idle, select


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


def _epochs_lasting(seconds: float, steps_per_epoch: int = 63) -> int:
    """Epochs of the browser run (LeNet, batch 8, 500 training images: 63 steps each) that take at least
    `seconds` on this machine as loaded right now: long enough to reload and stop it mid-run, short
    enough to watch it finish. Timed with the job's own thread count (the server runs with
    CNN_MAX_JOBS=2: one thread each on 2 cores); a CPU here trains 10 to 400 such steps a second."""
    import torch
    import torch.nn.functional as F

    from cnn_core.models import build_model

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
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
        steps_per_s = n / (time.perf_counter() - t0)   # an upper bound: the run also evaluates and checkpoints
    finally:
        torch.set_num_threads(threads)
    # At least 60 epochs (9 s at the fastest 400 steps/s): the speed above is measured in this process,
    # which a busy machine slows more than the run (the suite once saw such a run end before Stop).
    return max(60, min(400, round(seconds * steps_per_s / steps_per_epoch)))


@contextlib.contextmanager
def _held(pid: int):
    """The process stopped (SIGSTOP) for the block, continued after it whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


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
    page.get_by_text("Layers of the model").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs folder").wait_for()  # the frame ran

    select(page, "Dataset", "Fashion-MNIST")
    select(page, "Architecture", "LeNet-style CNN (PyTorch MNIST example)")
    fill(page, "spinbutton", "Batch size", "8")
    fill(page, "spinbutton", "Learning rate", "0.005")     # 0.03 with batch 8 diverges on these images
    fill(page, "spinbutton", "Epochs", str(_epochs_lasting(30)))
    fill(page, "spinbutton", "Validation images", "100")
    fill(page, "textbox", "Run name (optional)", "browser run")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "train-form.png"), full_page=True)
    page.get_by_role("button", name="Launch").first.click()

    page.get_by_role("tab", name="Live", selected=True).wait_for()   # Launch opens the Live tab
    first, second = _grows(page, timeout=60)
    (run_id,) = [p.name for p in runs_dir.iterdir() if (p / "run.json").exists()]
    assert f"run={run_id}" in page.url

    # Between the moments the test watches it grow, the training process is held (SIGSTOP), so however
    # fast this machine trains right now, the run is still going when the test reloads and presses Stop.
    from cnn_core import runs

    pid = runs.read_run(runs_dir / run_id).pid
    with _held(pid):
        held_at = runs.read_run(runs_dir / run_id).progress["step"]
        page.reload()                     # the URL names the run: the page opens on its Live tab
        _status(page, "running").wait_for()
        page.locator('[role="progressbar"]').filter(has_text=f"step {held_at}/").first.wait_for()
    after_reload, later = _grows(page)
    # Held from here to the Stop: the epochs above were sized by a speed measured while this machine may
    # have been busy (the suite ran one such run to its end before Stop once); held, it cannot finish.
    with _held(pid):                      # the cancel request waits for the next step, as for a slow one
        assert after_reload[0] >= second[0], "after a reload the page shows the same run, further on"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "train-live.png"))
        assert "browser run" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()
        page.get_by_role("button", name="Stop").click()
        deadline = time.monotonic() + 30
        while not (runs_dir / run_id / runs.CANCEL).exists():
            assert time.monotonic() < deadline, "Stop made no cancel request"
            time.sleep(0.1)
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


def test_dropdowns_show_their_whole_choice(server, page):
    """At 1440 px, every architecture's and dataset's name fits its dropdown, and so does a run with a long
    default name in the Live tab's run picker."""
    from cnn_core import data, models, runs
    from ui import views
    from cnn_core.config import TrainConfig

    base, runs_dir = server
    page.goto(f"{base}/train")
    page.get_by_role("tab", name="New run").click()
    page.get_by_text("Layers of the model").wait_for()
    cut = []
    for arch in models.ARCHITECTURES.values():
        select(page, "Architecture", arch.title)
        cut += [arch.title] if _overflows(page, "Architecture") else []
    for info in data.DATASETS.values():
        select(page, "Dataset", info.title)
        cut += [info.title] if _overflows(page, "Dataset") else []
    config = TrainConfig(dataset="fashion-mnist", arch="res-net-deep", optimizer="adamw", lr=0.0003, epochs=100)
    path = runs.create_run(config, views.default_name(config), runs_dir=runs_dir)
    runs.update_run(path, status="cancelled")
    page.goto(f"{base}/train?run={path.name}")
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    idle(page)
    cut += ["run picker"] if _overflows(page, "Run") else []
    assert not cut, f"cut at 1440 px: {cut}"
