"""README's "From Python" example runs as written: the library used from a notebook, in a fresh process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_example_prepares_trains_reads_and_predicts(tmp_path, small_data_dir):
    """The ```python block under README's "From Python" runs in a fresh interpreter (on the tests' small
    generated MNIST) and prints a completed run, its test accuracy and a top-3."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    env = {**os.environ, "CNN_DATA_DIR": str(small_data_dir), "CNN_RUNS_DIR": str(tmp_path / "runs"),
           "CNN_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    status, acc, top = out.stdout.split(" ", 2)
    assert status == "completed" and 0.5 < float(acc) <= 1.0, out.stdout    # generated digits: learnable
    assert top.startswith("[('") and top.count("', ") == 3, out.stdout       # three (class, probability)
    assert len([p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]) == 1
