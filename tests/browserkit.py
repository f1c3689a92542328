"""What every browser test shares: a real `streamlit run dashboard.py` server on a free port and a
headless Debian chromium page driven by Playwright (tests/browser/ uses it)."""
from __future__ import annotations

import contextlib
import os
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dashboard_server(data_dir: Path, runs_dir: Path, log_dir: Path, *, address: str | None = "127.0.0.1",
                     **env: str):
    """Serve dashboard.py over these folders (offline) until the block ends; yields the base url.
    address None leaves --server.address out, as `make run` does (.streamlit/config.toml decides).
    Its log goes to log_dir/streamlit.log and is shown when the server fails to come up."""
    port = _free_port()
    env = {**os.environ, "CNN_DATA_DIR": str(data_dir), "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1", **env}
    log_path = Path(log_dir) / "streamlit.log"
    bind = [f"--server.address={address}"] if address else []
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard.py", "--server.headless=true", *bind,
             f"--server.port={port}", "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
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
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


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
