"""A deep link as the first thing a freshly started server is asked for (a bookmark, a link sent to someone,
the tab a browser restores) still opens that page in dashboard.py's frame: its navigation and its sidebar.

With a folder named pages beside dashboard.py, Streamlit (1.67) ran such a first request's page file alone,
in its legacy pages-folder mode: no page config, no navigation of ours, no sidebar, and the server stayed in
that mode until someone opened '/'. The pages now live under ui/ and st.navigation alone names them. Each
test starts its own server (`make run`'s command, as every browser test) and asks it for one page first;
only the health check comes before it. Home is '/', dashboard.py itself, so it is no deep link.
"""
from __future__ import annotations

import pytest
from browserkit import SHOTS, chromium_page, dashboard_server

NAVIGATION = ["Home", "Learn", "Train", "Inspect", "Compare", "Draw"]     # dashboard.py's st.navigation, in order
LINKS = {  # page: (the address asked for first, the page's own title)
    "train": ("/train?run={run}", "Train"),
    "inspect": ("/inspect?run={run}", "Inspect"),
    "compare": ("/compare", "Compare runs"),
    "draw": ("/draw", "Draw"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder holding one finished run record (nothing trained: the frame is what is looked at)."""
    from cnn_core.config import TrainConfig
    from cnn_core.runs import store

    folder = tmp_path_factory.mktemp("deep-link-runs")
    path = store.create_run(TrainConfig(epochs=1, val_size=100), "linked to", runs_dir=folder)
    store.update_run(path, status="completed")
    return folder, path.name


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1000) as pg:
        yield pg


@pytest.mark.parametrize("name", list(LINKS))
def test_a_deep_link_first_on_a_fresh_server_gets_the_frame(name, runs, page, small_data_dir, tmp_path):
    """The page asked for shows its title inside the frame: the sidebar lists dashboard.py's navigation
    (Home, Train, Inspect, Compare, Draw) and its own lines (Runs folder), and the address keeps its query."""
    folder, run = runs
    path, title = LINKS[name]
    with dashboard_server(small_data_dir, folder, tmp_path) as base:
        page.goto(base + path.format(run=run))
        page.get_by_role("heading", name=title, level=1).wait_for()
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("Runs folder").wait_for()
        links = sidebar.locator('[data-testid="stSidebarNav"] a').all_inner_texts()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"deep-link-{name}.png"))
        assert [text.split()[-1] for text in links] == NAVIGATION    # each: its icon's name, then its title
        assert page.url == base + path.format(run=run)
