"""The library stays free of Streamlit, and the pages stay free of tensor code; cnn_core's modules form
the layers docs/ARCHITECTURE.md draws, each importing only its own layer and those below."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnn_core"
# Every module and package by its dotted name ("cnn_core.train.engine"), but not __main__ (it runs the CLI).
MODULES = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                 for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")
# cnn_core's packages, lowest first (config.py, a top-level module, is a layer of its own). A module imports
# (at the top or inside a function) only from its own package and those below; the package's __init__ counts
# as the package.
LAYERS = ["core", "data", "nets", "config", "runs", "train", "analysis", "export", "sweeps", "cli"]
# Top-level modules in a layer: __init__ and recipe (the training recipe, which the data's split uses too)
# import nothing of cnn_core; __main__ is the CLI.
TOP_LEVEL = {"__init__": "core", "recipe": "core", "__main__": "cli"}
TENSOR_CODE = re.compile(r"\btorch\.|\bnn\.|\.backward\(")


def test_cnn_core_never_imports_streamlit_or_plotly():
    """Importing every cnn_core module in a fresh interpreter leaves streamlit and plotly unimported: the
    library computes numbers, the dashboard (ui/) draws them."""
    script = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "    for ui in ('streamlit', 'plotly'):\n"
        "        if ui in sys.modules:\n"
        "            sys.exit(name + ' imports ' + ui)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]


def test_pages_hold_no_tensor_code():
    """No page file touches torch directly (torch., nn., .backward(): that work belongs in cnn_core."""
    pages = sorted((ROOT / "ui").glob("*/page.py"))
    assert {p.parent.name for p in pages} == {"home", "learn", "train", "inspector", "compare", "draw", "classroom"}, pages
    offenders = []
    for page in pages + [ROOT / "dashboard.py"]:
        for n, line in enumerate(page.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if TENSOR_CODE.search(code):
                offenders.append(f"{page.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def _layer(module: str) -> str:
    """The layer of "train.engine" (its package) or of a top-level module ("config")."""
    head = module.split(".")[0]
    return TOP_LEVEL.get(head, head)


def _imports(path: Path) -> set[str]:
    """The layers whose cnn_core modules a file imports, anywhere in it (absolute imports only: cnn_core
    writes none relative)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: a relative import (cnn_core imports absolutely)"
            if (node.module or "").split(".")[0] == "cnn_core":
                below = (node.module or "").partition(".")[2]
                found |= {_layer(below)} if below else {_layer(a.name) for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {_layer(a.name.split(".")[1]) for a in node.names if a.name.startswith("cnn_core.")}
    return found


def test_cnn_core_modules_keep_to_their_layers():
    """Every cnn_core module is in a package that is a layer (or is config, __init__, __main__) and imports
    nothing from a layer above it; a new package gets its place here (and in docs/ARCHITECTURE.md)."""
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    files = sorted(PACKAGE.rglob("*.py"))
    own = {p: _layer(".".join(p.relative_to(PACKAGE).with_suffix("").parts)) for p in files}
    assert set(own.values()) == set(rank), "packages without a layer (or layers without a package)"
    upward = [f"{p.relative_to(PACKAGE)} ({own[p]}) imports from {m}"
              for p in files for m in sorted(_imports(p)) if rank[m] > rank[own[p]]]
    assert not upward, "\n".join(upward)


def test_cnn_core_top_level_holds_few_modules():
    """cnn_core's top level is its entry points, config (what a run is) and recipe (how it trains); the rest
    lives in a package named for what it holds."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "config.py", "recipe.py"], top


def test_the_recipe_imports_nothing_of_cnn_core():
    """cnn_core/recipe.py is copied whole into every exported script, which runs where cnn_core is not."""
    assert not _imports(PACKAGE / "recipe.py")


def test_each_package_says_what_its_modules_hold():
    """Each package's __init__ docstring names every module in it (a notebook user reads what it offers
    there), and cnn_core's names every package."""
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()), clean=False) or ""
        inside = [p.stem for p in init.parent.glob("*.py") if p.stem not in ("__init__", "__main__")]
        inside += [p.name for p in init.parent.iterdir() if (p / "__init__.py").is_file()]
        missing = [m for m in inside if not re.search(rf"^ +{m}\b", doc, re.M)]
        assert not missing, f"{init.relative_to(ROOT)} does not name {missing}"
