"""What every browser test and benchmark shares: the dashboard served by `make run`'s own command on a
free port, and a headless Debian chromium page driven by Playwright (tests/browser/ and bench/ use it)."""
from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "artifacts" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_command(port: int, address: str | None = "127.0.0.1") -> list[str]:
    """The command that serves the dashboard, exactly as a person starts it.

    address given: the line `make run PORT=<port> ADDRESS=<address>` runs, read from the Makefile
    itself (`make -n`), so a flag added there is tested here and no test can pass a flag a person does
    not. Only the interpreter is this one (pytest's; under `make test` the same .venv/bin/python).
    address None: README's other command, `streamlit run dashboard.py` with nothing but the port
    (.streamlit/config.toml decides the rest, the address included)."""
    if address is None:
        return [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.port", str(port)]
    out = subprocess.run(["make", "-s", "-n", "run", f"PORT={port}", f"ADDRESS={address}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    (line,) = [ln for ln in out.splitlines() if " -m ui.serve " in ln]   # it execs `streamlit run ui/gate.py`
    argv = shlex.split(line)
    return [sys.executable, *argv[1:]]


@contextlib.contextmanager
def dashboard_server(data_dir: Path, runs_dir: Path, log_dir: Path, *, address: str | None = "127.0.0.1",
                     port: int | None = None, **env: str):
    """Serve dashboard.py over these folders until the block ends; yields the base url. port: the PORT to serve
    on (`make run PORT=`), when the test must know it first (a sign-in's redirect_uri); else a free one.

    The server is started by serve_command: `make run`'s own command line and config, no extra flag.
    What differs from a person's start is the environment only: CNN_DATA_DIR and CNN_RUNS_DIR point
    at the test's folders, CNN_OFFLINE=1 (no download is tried here), plus `env` (CNN_MAX_JOBS ...),
    all settings README documents. Its log goes to log_dir/streamlit.log and is shown when the server
    fails to come up."""
    port = port or free_port()
    env = {**os.environ, "CNN_DATA_DIR": str(data_dir), "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1", **env}
    log_path = Path(log_dir) / "streamlit.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(serve_command(port, address), cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.3)
        base_url = Server(base, proc.pid, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def training_dashboard(data_dir: Path, runs_dir: Path, log_dir: Path, **env: str):
    """dashboard_server for tests that launch runs or sweeps: whatever still trains in `runs_dir` when the
    block ends (a failed test's) is cancelled and waited for, and its sweeps deleted."""
    try:
        with dashboard_server(data_dir, runs_dir, log_dir, **env) as base:
            yield base
    finally:
        from cnn_core.runs import store
        from cnn_core.sweeps import ledger
        from cnn_core.train import jobs
        for s in ledger.list_sweeps(runs_dir):
            ledger.delete(s.id, runs_dir)
        for r in store.list_runs(runs_dir):
            if getattr(r, "pid", None):
                try:
                    os.kill(r.pid, signal.SIGCONT)      # one a test left stopped (stopped_at_launch)
                except OSError:
                    pass
            if jobs.cancel(Path(r.path)) in store.ACTIVE:
                jobs.wait(Path(r.path), timeout=60)


def stopped_at_launch(runs_dir: Path, timeout: float = 30) -> int:
    """The launched run's process, stopped (SIGSTOP) as soon as run.json names it; its pid. A test then
    lets it run (SIGCONT) only while it watches, so that no machine is too fast for the test."""
    from cnn_core.runs import store

    deadline = time.monotonic() + timeout
    while True:
        pids = [r.pid for r in store.readable(store.list_runs(runs_dir)) if r.pid]
        if pids:
            os.kill(pids[0], signal.SIGSTOP)
            return pids[0]
        assert time.monotonic() < deadline, "no run was launched"
        time.sleep(0.05)


def run_until(pid: int, path: Path, done, timeout: float = 60) -> None:
    """Let a stopped run's process go (SIGCONT) until done(its record) holds, then stop it again."""
    from cnn_core.runs import store

    os.kill(pid, signal.SIGCONT)
    try:
        deadline = time.monotonic() + timeout
        while not done(store.read_run(path)):
            assert time.monotonic() < deadline, store.read_run(path)
            time.sleep(0.05)
    finally:
        os.kill(pid, signal.SIGSTOP)


class Server(str):
    """The base url (a str, as tests use it), with the server's pid and log file."""

    def __new__(cls, url: str, pid: int, log: Path):
        obj = super().__new__(cls, url)
        obj.pid, obj.log = pid, log
        return obj


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process `pid` has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def chromium_page(height: int = 1300, timeout_ms: int = 60_000):
    """A headless chromium page, 1440 px wide; closed when the block ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": height})
        page.set_default_timeout(timeout_ms)
        try:
            yield page
        finally:
            browser.close()


# ---- driving widgets ------------------------------------------------------------------------------
def select(page, label: str, option: str, settle_ms: int = 800) -> None:
    """Choose `option` in the selectbox labelled exactly `label`. A list opened while the page redraws can
    close under the pointer (its options were redrawn); a person opens it again, and so does this."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text(label, exact=True)).first
    item = page.get_by_role("option", name=option, exact=True)
    for attempt in range(5):
        box.click()
        try:
            item.click(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 4:
                raise
            page.keyboard.press("Escape")
    page.wait_for_timeout(settle_ms)


def fill(page, role: str, label: str, value: str) -> None:
    """Type into a text ('textbox') or number ('spinbutton') input and commit it with Enter (the label's
    help button shares its name, hence the role)."""
    box = page.get_by_role(role, name=label, exact=True)
    if not box.is_visible() and (more := page.get_by_text("More settings", exact=False)).count():
        more.first.click()                 # Train's other settings: opened as a person opens them
        box.wait_for()
    box.fill(value)
    box.press("Enter")
    page.wait_for_timeout(800)


def open_train_form(page, base: str, dataset: str, arch: str) -> None:
    """Train > New run as a person opens it (the page's first full draw, sidebar included), then the
    dataset and the architecture chosen."""
    page.goto(f"{base}/train")
    page.get_by_text("Layers of the model").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("Runs folder").wait_for()
    select(page, "Dataset", dataset)
    select(page, "Architecture", arch)


def idle(page, timeout_ms: int = 60_000) -> None:
    """Wait until the script run ends (the status widget's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=timeout_ms)
    page.wait_for_timeout(300)


# ---- runs to look at ------------------------------------------------------------------------------
def train_runs(data_dir: Path, folder: Path, configs: dict[str, dict]) -> dict[str, Path]:
    """Train each config (TrainConfig fields) with the real engine into `folder`, named by its key, over
    `data_dir`; name -> run folder. For a module's server to show finished runs."""
    from cnn_core.config import TrainConfig
    from cnn_core.runs import store
    from cnn_core.train import engine

    out = {}
    saved = {k: os.environ.get(k) for k in ("CNN_DATA_DIR", "CNN_OFFLINE")}
    os.environ.update(CNN_DATA_DIR=str(data_dir), CNN_OFFLINE="1")
    try:
        for name, config in configs.items():
            out[name] = store.create_run(TrainConfig(**config), name=name, runs_dir=folder)
            record = engine.run_training(out[name])
            assert record.status == "completed", (name, record.error)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return out
