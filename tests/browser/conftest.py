"""Every test in tests/browser/ is marked `browser` and skipped, with the reason, where Debian's
chromium is not installed. The server and page helpers live in tests/browserkit.py."""
from __future__ import annotations

from pathlib import Path

import pytest
from browserkit import CHROMIUM


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    skip = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                              reason=f"{CHROMIUM} is not installed (apt-get install chromium)")
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)
            item.add_marker(skip)


# ---- Inspect's runs and server, shared by its browser tests (inspect, explain, maps) ---------------------
# One training and one server per worker instead of one per file: the three files read the same two runs.
INSPECT_RUNS = {"inspect me": dict(dataset="mnist", arch="lenet", val_size=100, epochs=2, batch_size=32, lr=0.05),
                "colour": dict(dataset="cifar2", arch="cifar-net", val_size=20, epochs=1, batch_size=16, lr=0.05)}


@pytest.fixture(scope="session")
def inspect_runs(small_data_dir, tmp_path_factory) -> dict[str, Path]:
    """Runs trained by the real engine in one folder: lenet on mnist (2 epochs: snapshots 0, 1, 2) and
    cifar-net on cifar2 (colour input, 1 epoch)."""
    from browserkit import train_runs

    return train_runs(small_data_dir, tmp_path_factory.mktemp("inspect-browser-runs"), INSPECT_RUNS)


@pytest.fixture(scope="session")
def inspect_server(small_data_dir, inspect_runs, tmp_path_factory):
    """A dashboard server on a free port over those runs' folder, started as README says; its base url."""
    from browserkit import dashboard_server

    with dashboard_server(small_data_dir, inspect_runs["colour"].parent, tmp_path_factory.mktemp("inspect-log"),
                          CNN_MAX_JOBS="1") as base:
        yield base
