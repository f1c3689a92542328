"""Concurrency, with the real code: detached training processes (cnn_core.train.jobs.launch), the flock slot
queue, deleting a run while it trains (the Compare page's library call and the CLI), two browsers
watching one run, and a dashboard server restarted while a run trains.

Runs are LeNet on the small generated MNIST (500 training images, batch 8: 63 steps an epoch). Training
speed on this 2-core machine swings tenfold and more within seconds (other work shares it), so no run
length suits every moment. Where a case needs a run caught in progress, the test freezes the training
process there (SIGSTOP) and lets it go on (SIGCONT) once checked. That changes nothing a reader sees but
time: a stopped process counts as alive, and a page shows exactly the step run.json holds. A run writes
its progress at every epoch end and at least once a second, so a run of a few more epochs than the moments
a case freezes at cannot end before the last of them, however fast it trains. Training processes also run
at the lowest CPU priority, so the test, the server and the browsers keep up with them.
Screenshots go to artifacts/screenshots/concurrency-*.png for a person to look at.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browserkit import ARGS, CHROMIUM, SHOTS, dashboard_server, fill, select

from cnn_core.config import TrainConfig
from cnn_core.core import files
from cnn_core.runs import store
from cnn_core.train import jobs
from ui import views

ROOT = Path(__file__).resolve().parents[2]
BASE = dict(dataset="mnist", val_size=100, batch_size=8, lr=0.01, arch="lenet", log_every=5)
STEPS_PER_EPOCH = 63
STEP_RE = re.compile(r"step (\d+)/(\d+)")
requires_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                       reason=f"{CHROMIUM} is not installed (apt-get install chromium)")


# ---- helpers ------------------------------------------------------------------------------------
def _until(predicate, timeout: float, what: str, every: float = 0.05):
    """Poll `predicate` until it returns something true, and return that; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(every)


def _status_of(path: Path) -> str:
    return store.effective_status(store.read_run(path))


def _step(path: Path) -> int:
    return int(store.read_run(path).progress.get("step", 0))


def _waiting_in_queue(path: Path) -> bool:
    """The run's own process sits in jobs.slot, waiting: its ticket is in the line and it has written its
    first heartbeat (launch writes heartbeat = queued_at, the waiting process a later one)."""
    r = store.read_run(path)
    return store.effective_status(r) == "queued" and bool(r.pid) and r.heartbeat > r.queued_at \
        and r.id in jobs.waiting_runs(path.parent)


def _yielding(pid: int) -> int:
    """Lower a training process to the least CPU priority (every thread, and those it starts later), so
    that on 2 cores the test, the server and the browsers keep up with it; returns the pid."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), 19)
    return pid


@contextlib.contextmanager
def _frozen(pid: int, path: Path):
    """Hold the training process still for the block; yields the step run.json shows meanwhile."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.2)                 # a write under way when it stopped is either done or not begun
        record = store.read_run(path)
        assert store.effective_status(record) == "running", f"the run already {record.status}"
        yield record.progress["step"]
    finally:
        with contextlib.suppress(ProcessLookupError):   # the block may have let it go on and finish
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def cleanup(runs_dir):
    """Teardown: resume and cancel whatever a failed test left training, so no process outlives it."""
    yield
    for r in store.list_runs(runs_dir):
        if r.pid:
            with contextlib.suppress(OSError):
                os.kill(int(r.pid), signal.SIGCONT)
        if jobs.cancel(Path(r.path)) in store.ACTIVE:
            with contextlib.suppress(TimeoutError):
                jobs.wait(Path(r.path), timeout=60)


# ---- 1. two train, the third waits --------------------------------------------------------------
def test_two_train_at_once_and_the_third_waits_its_turn(runs_dir, cleanup):
    """CNN_MAX_JOBS=2 and three runs launched: the two oldest train while the third waits `queued` (next
    in line); never three at once; the third starts only after one of the first two ended; all three
    complete with a test accuracy, each in the process launched for it."""
    assert os.environ["CNN_MAX_JOBS"] == "2"
    paths = [store.create_run(TrainConfig(**BASE, epochs=1), name=f"job {i}") for i in range(3)]
    pids = [_yielding(jobs.launch(p)) for p in paths]      # queued_at in this order: 0 is the oldest
    ids = [p.name for p in paths]
    samples: list[tuple[str, ...]] = []

    def sample() -> tuple[str, ...]:
        status = {r.id: r.effective_status for r in store.list_runs(runs_dir)}
        samples.append(tuple(status[i] for i in ids))
        return samples[-1]

    def left_queue(i: int) -> tuple[str, ...] | None:
        row = sample()
        return row if row[i] != "queued" else None

    held = []
    try:   # hold each of the two oldest once it trains, so the moment with both training cannot slip by
        for i in (0, 1):
            row = _until(lambda: left_queue(i), 120, f"{ids[i]} leaving the queue")
            assert row[i] == "running" and row[2] == "queued", f"the oldest two start first: {row}"
            os.kill(pids[i], signal.SIGSTOP)
            held.append(pids[i])
        time.sleep(1.5)                           # three polls of the third's process for a free slot
        assert sample() == ("running", "running", "queued")
        assert _waiting_in_queue(paths[2])
        active = jobs.active_runs(runs_dir)
        assert [r.id for r in active] == ids, "the queue lists the runs oldest first"
        assert views.queue_position(ids[2], active) == 1
    finally:
        for pid in held:
            os.kill(pid, signal.SIGCONT)
    _until(lambda: all(s in store.FINISHED for s in sample()), 240, "all three runs finishing")

    assert not [s for s in samples if s.count("running") > 2], "three runs trained at once"
    first_third = next(i for i, s in enumerate(samples) if s[2] == "running")
    assert all(s[2] == "queued" for s in samples[:first_third]), "the third was queued until it ran"
    assert any(s in store.FINISHED for s in samples[first_third][:2]), \
        f"the third started while both first runs still ran: {samples[first_third]}"
    records = [store.read_run(p) for p in paths]
    assert [r.status for r in records] == ["completed"] * 3, [r.error for r in records]
    assert [r.pid for r in records] == pids, "each run trained in the process launched for it"
    ended = min(r.heartbeat for r in records[:2])   # the last write, with status completed
    assert records[2].started >= ended, "the third started before a slot freed"
    for r in records:
        assert 0.5 < r.summary["test_acc"] <= 1.0 and r.summary["epochs_done"] == 1, r.summary
        assert r.progress["step"] == STEPS_PER_EPOCH


# ---- 2. delete a run while it trains ------------------------------------------------------------
def _delete(path: Path, how: str) -> str:
    """Delete through the Compare page's library call or the CLI; returns what it reported."""
    if how == "library":
        return jobs.delete_run(path)
    out = subprocess.run([sys.executable, "-m", "cnn_core", "runs", "delete", path.name], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _ended_with(log, line: str) -> None:
    """The process's last words in its train.log (read through a handle opened before the delete)
    are `line`, with no traceback: it stopped on request, not on a folder pulled from under it."""
    text = log.read()
    assert line in text and "Traceback" not in text, text[-2000:]


@pytest.mark.parametrize("how", ["library", pytest.param("cli", marks=pytest.mark.stress)])  # the suite's 10 min
def test_delete_while_training_stops_the_process_and_frees_the_slot(runs_dir, monkeypatch, cleanup, how):
    """One slot, a run training and two queued behind it. Deleting a queued run (Compare's delete_run, or
    `runs delete ID`) ends its waiting process and leaves the training run alone; deleting the training run
    stops its process and removes its folder for good; the next queued run gets the slot and completes."""
    monkeypatch.setenv("CNN_MAX_JOBS", "1")      # the launched processes inherit it
    victim = store.create_run(TrainConfig(**BASE, epochs=500), name="victim")   # deleted long before its end
    dropped = store.create_run(TrainConfig(**BASE, epochs=1), name="dropped while queued")
    behind = store.create_run(TrainConfig(**{**BASE, "arch": "mlp"}, epochs=1), name="behind")
    victim_pid, dropped_pid, _ = jobs.launch(victim), jobs.launch(dropped), jobs.launch(behind)  # oldest first
    _until(lambda: _step(victim) >= 10, 90, "the first run training")
    _until(lambda: _waiting_in_queue(dropped) and _waiting_in_queue(behind), 60, "both runs waiting for the slot")

    # Their own logs, held open, outlive the folders and tell how each process ended.
    with open(victim / store.LOG) as victim_log, open(dropped / store.LOG) as dropped_log:
        said = _delete(dropped, how)
        assert said == ("queued" if how == "library" else f"deleted run {dropped.name}")
        assert not dropped.exists()
        _until(lambda: not files.pid_alive(dropped_pid), 10, f"the deleted run's waiting process {dropped_pid} exiting")
        _ended_with(dropped_log, f"run {dropped.name} cancelled while queued")
        step = _step(victim)
        _until(lambda: _step(victim) > step, 20, "the training run advancing after the queued one was deleted")
        assert _status_of(victim) == "running" and _status_of(behind) == "queued"

        deleted_at = time.time()
        said = _delete(victim, how)
        assert said == ("running" if how == "library" else f"deleted run {victim.name}")
        assert not victim.exists(), "the folder is still there after delete returned"
        _until(lambda: not files.pid_alive(victim_pid), 10, f"training process {victim_pid} exiting")
        _ended_with(victim_log, f"run {victim.name} cancelled")   # stopped between steps, not crashed
    assert jobs.wait(behind, timeout=120) == "completed", store.read_run(behind).error
    assert store.read_run(behind).started >= deleted_at, "the queued run started before the delete"
    time.sleep(max(0.0, deleted_at + 3 - time.time()))   # what a deleted run still had to write has landed
    assert not victim.exists() and not dropped.exists(), "a deleted run's folder came back"
    assert sorted(p.name for p in runs_dir.iterdir()) == sorted([".queue", ".slots", behind.name])
    assert jobs.waiting_runs(runs_dir) == [], "a ticket outlived its run's wait"


# ---- browsers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _chromium():
    """A headless Debian chromium; each page from _page() lives in its own context (its own session)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser, url: str):
    page = browser.new_context(viewport={"width": 1440, "height": 1100}).new_page()
    page.set_default_timeout(90_000)
    page.goto(url)
    return page


def _status(page, status: str):
    """The live panel's status word (bold, alone), not the same word in a tooltip."""
    return page.locator('[data-testid="stTabs"] strong').filter(has_text=re.compile(f"^{status}$")).first


def _shows_step(page, step: int, total: int) -> None:
    """Wait until the progress bar reads 'step <step>/<total>'."""
    page.locator('[role="progressbar"]').filter(has_text=f"step {step}/{total}").first.wait_for()


def _shown_step(page) -> tuple[int, int]:
    """(step, total steps) in the live panel's progress bar; (0, 0) before it shows any."""
    bar = page.locator('[role="progressbar"]')
    found = STEP_RE.search(bar.first.inner_text()) if bar.count() else None
    return (int(found.group(1)), int(found.group(2))) if found else (0, 0)


def _shot(page, name: str) -> None:
    page.mouse.move(5, 5)             # no tooltip over the screenshot
    page.wait_for_timeout(600)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"concurrency-{name}.png"))


def _two_moments(pages, pid: int, path: Path, total: int, shot: str | None = None) -> tuple[int, int]:
    """Freeze the run after each of its next two progress writes and wait, each time, until every page
    shows it `running` at the step run.json holds; returns the two steps. With `shot`, screenshot each
    page at the second moment."""
    seen = [_step(path)]
    for moment in (1, 2):
        _until(lambda: _step(path) > seen[-1], 90, f"run.json progress past step {seen[-1]}")
        with _frozen(pid, path) as step:
            for n, page in enumerate(pages, 1):
                _shows_step(page, step, total)
                assert _status(page, "running").is_visible()
                if shot and moment == 2:
                    _shot(page, f"{shot}-{n}" if len(pages) > 1 else shot)
        seen.append(step)
    assert 0 < seen[1] < seen[2] < total, seen
    return seen[1], seen[2]


def _outcome(page) -> str:
    """The completed panel's 'Test accuracy 97.12%', once shown with the status `completed`."""
    page.get_by_text(re.compile(r"Test accuracy \d")).first.wait_for(timeout=240_000)
    _status(page, "completed").wait_for()
    text = page.locator('[data-testid="stAlert"]').filter(has_text="Test accuracy").first.inner_text()
    return re.search(r"Test accuracy [\d.]+%", text).group(0)


@pytest.mark.browser
@pytest.mark.stress   # 23 s: in the stress tier (`make test-stress`) to keep the suite within 10 minutes
@requires_chromium
def test_two_browsers_watch_one_run(small_data_dir, runs_dir, tmp_path, cleanup):
    """Two browser sessions on the Train page's live view of one run (?run=ID), launched from the library:
    both go from waiting to training on their own, both show the step run.json holds at two moments (the
    second further on), both end `completed` with run.json's test accuracy."""
    epochs = 4                                   # two moments, and room to spare
    path = store.create_run(TrainConfig(**BASE, epochs=epochs), name="watched twice")
    total = epochs * STEPS_PER_EPOCH
    with dashboard_server(small_data_dir, runs_dir, tmp_path, CNN_MAX_JOBS="2") as base, _chromium() as browser:
        pages = [_page(browser, f"{base}/train?run={path.name}") for _ in range(2)]
        for page in pages:
            _status(page, "queued").wait_for()   # created, not launched yet: waiting
        pid = _yielding(jobs.launch(path))       # the pages notice it on their own
        _two_moments(pages, pid, path, total, shot="two-browsers-live")
        outcomes = [_outcome(page) for page in pages]
        for n, page in enumerate(pages, 1):
            _shot(page, f"two-browsers-completed-{n}")
        final = [_shown_step(page) for page in pages]
        assert all(page.url.endswith(f"run={path.name}") for page in pages)
    record = store.read_run(path)
    assert record.status == "completed"
    assert outcomes == [f"Test accuracy {views.fmt_acc(record.summary['test_acc'])}"] * 2, outcomes
    assert final == [(total, total)] * 2


def _server_up(base: str) -> bool:
    try:
        return urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


@pytest.mark.browser
@pytest.mark.stress   # 41 s: in the stress tier (`make test-stress`) to keep the suite within 10 minutes
@requires_chromium
def test_dashboard_restarted_mid_run_picks_the_run_back_up(small_data_dir, runs_dir, tmp_path, cleanup):
    """A run launched from the Train page keeps training while the dashboard server is down (the same
    process, its step still climbing); a new server on a new port shows it running, live, then completed."""
    epochs = 8                                   # five moments (two, one with no server, two), and room
    total = epochs * STEPS_PER_EPOCH
    logs = [tmp_path / "server-1", tmp_path / "server-2"]
    for folder in logs:
        folder.mkdir()
    with _chromium() as browser:
        with dashboard_server(small_data_dir, runs_dir, logs[0], CNN_MAX_JOBS="2") as first_base:
            page = _page(browser, f"{first_base}/train")
            page.get_by_text("Layers of the model").wait_for()
            select(page, "Dataset", "MNIST")
            select(page, "Architecture", "LeNet-style CNN (PyTorch MNIST example)")
            fill(page, "spinbutton", "Batch size", "8")
            fill(page, "spinbutton", "Learning rate", "0.01")
            fill(page, "spinbutton", "Epochs", str(epochs))
            fill(page, "spinbutton", "Validation images", "100")
            fill(page, "textbox", "Run name (optional)", "survives a restart")
            page.get_by_role("button", name="Launch").first.click()
            (path,) = _until(lambda: [Path(r.path) for r in store.list_runs(runs_dir) if r.pid], 60,
                             "the launched run in the runs folder")
            pid = _yielding(store.read_run(path).pid)
            _two_moments([page], pid, path, total)
            os.kill(pid, signal.SIGSTOP)         # held while the server shuts down (cleanup resumes it on failure)
            page.context.close()
        assert not _server_up(first_base), "the first server still answers"
        os.kill(pid, signal.SIGCONT)
        assert files.pid_alive(pid), "the training process died with the server that launched it"
        before = _step(path)
        _until(lambda: _step(path) > before, 30, "the run advancing with no server")
        with _frozen(pid, path) as step:         # held while the new server starts and the page loads
            with dashboard_server(small_data_dir, runs_dir, logs[1], CNN_MAX_JOBS="2") as base:
                assert base != first_base
                page = _page(browser, f"{base}/train?run={path.name}")
                _status(page, "running").wait_for()
                _shows_step(page, step, total)
                assert "survives a restart" in page.locator('[data-testid="stMainBlockContainer"]').inner_text()
                os.kill(pid, signal.SIGCONT)
                first, _ = _two_moments([page], pid, path, total, shot="restart-running")
                assert first > step > before, "the new server shows the run moving on from where it was"
                outcome = _outcome(page)
                _shot(page, "restart-completed")
                final = _shown_step(page)
    record = store.read_run(path)
    assert record.status == "completed" and record.pid == pid, "not the same process that finished it"
    assert outcome == f"Test accuracy {views.fmt_acc(record.summary['test_acc'])}"
    assert final == (total, total)
