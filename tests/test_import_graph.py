"""The library stays free of Streamlit, and the pages stay free of tensor code; cnn_core's modules form
the layers docs/ARCHITECTURE.md draws, each importing only its own layer and those below."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = sorted(p.stem for p in (ROOT / "cnn_core").glob("*.py") if p.stem != "__main__")
# Lowest first. A module imports (at the top or inside a function) only from its layer and those below.
LAYERS = {
    "foundations": {"__init__", "settings", "faults", "files", "progress", "devices", "distributed", "blocks",
                    "data_sources"},
    "what a run is made of": {"config", "layers", "models", "slips", "data", "imagesets", "guards", "presets",
                              "optimizers", "evaluation", "augment"},
    "the run store": {"runs", "metrics_log", "checkpoints"},
    "the work": {"trainer", "engine", "jobs", "sweeps", "sweep_runner", "predict", "inspection", "snapshots", "compare", "transfer", "model_export", "script_export"},
    "the command line": {"flags", "cli_commands", "cli", "__main__"},
}
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


def _imports(path: Path) -> set[str]:
    """The cnn_core modules a file imports, anywhere in it (relative or absolute)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").split(".")[0] == "cnn_core"):
            module = node.module if node.level == 1 else (node.module or "").partition(".")[2]
            found |= {module.split(".")[0]} if module else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("cnn_core.")}
    return found


def test_cnn_core_modules_keep_to_their_layers():
    """Every cnn_core module is in one layer and imports nothing from a layer above it; a new module gets
    a layer here (and in docs/ARCHITECTURE.md) when it is added."""
    rank = {m: i for i, layer in enumerate(LAYERS.values()) for m in layer}
    files = sorted((ROOT / "cnn_core").glob("*.py"))
    assert {p.stem for p in files} == set(rank), "modules without a layer (or layers without a module)"
    upward = [f"{p.stem} ({list(LAYERS)[rank[p.stem]]}) imports {m} ({list(LAYERS)[rank[m]]})"
              for p in files for m in sorted(_imports(p)) if rank.get(m, -1) > rank[p.stem]]
    assert not upward, "\n".join(upward)
