"""The library stays free of Streamlit, and the pages stay free of tensor code."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT / "cnn_core").glob("*.py") if p.stem != "__main__")
TENSOR_CODE = re.compile(r"\btorch\.|\bnn\.|\.backward\(")


def test_cnn_core_never_imports_streamlit_or_plotly():
    """Importing every cnn_core module in a fresh interpreter leaves streamlit and plotly unimported: the
    library computes numbers, the dashboard (ui/, pages/) draws them."""
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module('cnn_core.' + name)\n"
        "    for ui in ('streamlit', 'plotly'):\n"
        "        if ui in sys.modules:\n"
        "            sys.exit('cnn_core.' + name + ' imports ' + ui)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]


def test_pages_hold_no_tensor_code():
    """No page file touches torch directly (torch., nn., .backward(): that work belongs in cnn_core."""
    offenders = []
    for page in sorted((ROOT / "pages").glob("*.py")) + [ROOT / "dashboard.py"]:
        for n, line in enumerate(page.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if TENSOR_CODE.search(code):
                offenders.append(f"{page.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
