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
