"""The server as a person runs it (`make run`'s command and config) stays idle with a tab open, so a run
launched meanwhile gets the CPU. It once watched the whole checkout (.venv included), overflowed inotify
about 18 times a second and used a full core, which made training 4-5x slower."""
from __future__ import annotations

import time

from browserkit import SHOTS, chromium_page, cpu_seconds, dashboard_server

IDLE_SHARE = 0.10    # of one core, over the window below
WINDOW_S = 10


def test_server_is_idle_with_a_tab_open(small_data_dir, runs_dir, tmp_path):
    """One tab on Home: the server uses under 10 % of a core over 15 s and logs no watcher overflow."""
    with dashboard_server(small_data_dir, runs_dir, tmp_path) as base, chromium_page() as page:
        page.goto(base)
        page.get_by_text("Recent runs").wait_for()
        page.wait_for_timeout(3000)                 # the first render and the sidebar are done
        cpu0, t0 = cpu_seconds(base.pid), time.monotonic()
        time.sleep(WINDOW_S)
        share = (cpu_seconds(base.pid) - cpu0) / (time.monotonic() - t0)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "home-idle.png"))
        log = base.log.read_text()
    assert share < IDLE_SHARE, f"the server used {share:.0%} of a core with one idle tab"
    assert "Inotify" not in log and "Traceback" not in log, log[-2000:]
