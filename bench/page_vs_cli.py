"""Training speed of a run launched from the dashboard, with a tab watching it, vs the same run from the CLI.

The page way is the user's path: the server started by `make run`'s own command and config
(tests/browserkit.py reads it from the Makefile), a headless Chromium tab on Train that fills the form,
presses Launch and stays on the Live panel (redrawn every second) until the run completes. The CLI way
is `python -m cnn_core train ... --quiet` with no server running at all. Both train the same config;
the figure compared is the engine's own images/s (mean over epochs, in run.json's summary). Rounds
alternate which goes first, so a load that comes or goes hits both alike. Target: page / CLI >= 0.9.

Before the rounds it also measures the server's CPU use with one tab open on Home and nothing else
happening (goal: under 10 % of a core), and during the page runs the server's share of a core.

Data: the prepared fashion-mnist in the data folder when it is there (the full 60,000 images),
else small generated MNIST-format files (tests/datagen.py) in a temporary folder.

`--precision`: mixed precision from the dashboard instead (issue 31): fast-cnn width 32 on the prepared
CIFAR-10, one epoch, launched from the Train page with Mixed precision set to off and to auto (bfloat16
where the CPU computes it natively), rounds alternating which goes first, and the same two from the CLI;
it prints each way's bf16/fp32 ratio of the engine's images/s.

    .venv/bin/python bench/page_vs_cli.py [--rounds 2] [--epochs 1] [--small]
    .venv/bin/python bench/page_vs_cli.py --precision [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browserkit import chromium_page, cpu_seconds, dashboard_server, fill, select  # noqa: E402

from cnn_core.data import catalog
from cnn_core.runs import store  # noqa: E402

IDLE_S = 15


def _data_dir(small: bool, tmp: Path) -> tuple[Path, str]:
    """The data folder and dataset to train on."""
    real = catalog.default_data_dir()
    if not small and catalog.dataset_status("fashion-mnist", real).state != "missing":
        return real, "fashion-mnist"
    from datagen import write_idx_dataset

    write_idx_dataset(tmp / "data" / "mnist", n_train=6000, n_test=1000, seed=1)
    catalog.prepare("mnist", data_dir=tmp / "data")
    return tmp / "data", "mnist"


def _share(pid: int, seconds: float) -> float:
    """The share of one core process `pid` uses over the next `seconds`."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)


def _new_run(runs_dir: Path, before: set[str], timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while True:
        new = [p for p in runs_dir.iterdir() if p.name not in before and (p / store.RUN_JSON).is_file()]
        if new:
            return new[0]
        assert time.monotonic() < deadline, "Launch made no run"
        time.sleep(0.2)


def _page_way(data_dir: Path, runs_dir: Path, logs: Path, dataset: str, epochs: int) -> dict:
    """One run launched from the Train page and watched on its Live panel; plus the idle CPU of the server."""
    from cnn_core.data.catalog import get_info

    with dashboard_server(data_dir, runs_dir, logs) as base, chromium_page() as page:
        page.goto(base)
        page.get_by_text("Recent runs").wait_for()
        page.wait_for_timeout(3000)
        idle = _share(base.pid, IDLE_S)
        page.goto(f"{base}/train")
        page.get_by_role("tab", name="New run").click()
        page.get_by_text("Layers of the model").wait_for()
        select(page, "Dataset", get_info(dataset).title)
        fill(page, "spinbutton", "Epochs", str(epochs))
        fill(page, "textbox", "Run name (optional)", "bench: page")
        before = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
        page.get_by_role("button", name="Launch").first.click()
        page.get_by_role("tab", name="Live", selected=True).wait_for()
        path = _new_run(runs_dir, before)
        t0, cpu0 = time.monotonic(), cpu_seconds(base.pid)
        page.locator('[role="progressbar"]').first.wait_for()
        while store.effective_status(record := store.read_run(path)) in store.ACTIVE:
            time.sleep(0.5)
        busy = (cpu_seconds(base.pid) - cpu0) / (time.monotonic() - t0)
        page.get_by_text("Test accuracy").first.wait_for(timeout=60_000)   # the tab saw the end
    assert record.status == "completed", record.error
    return {"ips": record.summary["images_per_sec"], "wall": record.summary["wall_time"],
            "idle": idle, "busy": busy}


def _page_precision(base, page, runs_dir: Path, amp: str) -> float:
    """fast-cnn width 32 on CIFAR-10, one epoch, launched from the Train form with Mixed precision `amp`;
    the engine's images/s."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(f"{base}/train")
    page.get_by_role("tab", name="New run").click()
    page.get_by_text("Layers of the model").wait_for()
    select(page, "Dataset", "CIFAR-10")
    select(page, "Architecture", "Fast CNN (after cifar10-airbench)")
    fill(page, "spinbutton", "Epochs", "1")
    fill(page, "spinbutton", "Batch size", "128")
    fill(page, "spinbutton", "Width", "32")              # opens More settings, which stays open
    page.get_by_text("Precision and device", exact=True).wait_for()
    box = page.locator('[data-testid="stSelectbox"]').filter(has=page.get_by_text("Mixed precision (bfloat16)",
                                                                                exact=True)).first
    for _ in range(5):          # its label takes two lines (the box's middle is the label): open it by its input
        box.locator("input").first.click()
        try:
            page.get_by_role("option", name=amp, exact=True).click(timeout=3000)
            break
        except PlaywrightTimeout:   # a list opened while the page redraws can close again: a person reopens it
            page.keyboard.press("Escape")
    page.wait_for_timeout(800)
    fill(page, "textbox", "Run name (optional)", f"bench: page amp {amp}")
    before = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    page.get_by_role("button", name="Launch").first.click()
    page.get_by_role("tab", name="Live", selected=True).wait_for()
    path = _new_run(runs_dir, before)
    while store.effective_status(record := store.read_run(path)) in store.ACTIVE:
        time.sleep(0.5)
    assert record.status == "completed", record.error
    assert record.precision["amp"] is (amp != "off"), record.precision
    return record.summary["images_per_sec"]


def _precision(rounds: int, tmp: Path) -> None:
    """Mixed precision against float32, from the dashboard and from the CLI (fast-cnn width 32, CIFAR-10)."""
    import os

    data_dir, runs_dir = catalog.default_data_dir(), tmp / "runs"
    assert catalog.dataset_status("cifar10", data_dir).state != "missing", "prepare cifar10 first"
    catalog.load_raw("cifar10", data_dir)
    env = {**os.environ, "CNN_DATA_DIR": str(data_dir), "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1"}
    got = {("page", "off"): [], ("page", "auto"): [], ("cli", "off"): [], ("cli", "auto"): []}
    with dashboard_server(data_dir, runs_dir, tmp) as base, chromium_page() as page:
        for i in range(rounds):
            for amp in (("off", "auto") if i % 2 == 0 else ("auto", "off")):
                got["page", amp].append(_page_precision(base, page, runs_dir, amp))
                before = {p.name for p in runs_dir.iterdir()}
                out = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--dataset", "cifar10", "--arch",
                                      "fast-cnn", "--param", "width=32", "--batch-size", "128", "--epochs", "1",
                                      "--amp", amp, "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
                assert out.returncode == 0, out.stderr[-2000:]
                got["cli", amp].append(store.read_run(_new_run(runs_dir, before)).summary["images_per_sec"])
            print(f"round {i + 1}: " + ", ".join(f"{way} {amp} {v[-1]:,.0f}" for (way, amp), v in got.items()),
                  flush=True)
    for way in ("page", "cli"):
        fp32, bf16 = (statistics.median(got[way, amp]) for amp in ("off", "auto"))
        print(f"{way}: float32 {fp32:,.0f} images/s, bfloat16 (auto) {bf16:,.0f}: {bf16 / fp32:.2f}x (target >= 1.4)")


def _cli_way(data_dir: Path, runs_dir: Path, dataset: str, epochs: int) -> dict:
    import os

    env = {**os.environ, "CNN_DATA_DIR": str(data_dir), "CNN_RUNS_DIR": str(runs_dir), "CNN_OFFLINE": "1"}
    before = {p.name for p in runs_dir.iterdir()} if runs_dir.is_dir() else set()
    out = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--dataset", dataset, "--arch", "lenet",
                          "--epochs", str(epochs), "--name", "bench: cli", "--quiet"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-2000:]
    record = store.read_run(_new_run(runs_dir, before))
    return {"ips": record.summary["images_per_sec"], "wall": record.summary["wall_time"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--small", action="store_true", help="generated data even when real data is prepared")
    parser.add_argument("--precision", action="store_true", help="bfloat16 against float32, page and CLI")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.precision:
            return _precision(args.rounds, tmp)
        data_dir, dataset = _data_dir(args.small, tmp)
        runs_dir, logs = tmp / "runs", tmp
        catalog.load_raw(dataset, data_dir)   # decode and cache once, outside the timings
        n = catalog.dataset_status(dataset, data_dir).n_train
        print(f"{dataset} ({n:,} training images, {data_dir}), lenet, the Train form's defaults, "
              f"{args.epochs} epoch(s), {args.rounds} round(s)", flush=True)
        page, cli = [], []
        for i in range(args.rounds):
            ways = [lambda: page.append(_page_way(data_dir, runs_dir, logs, dataset, args.epochs)),
                    lambda: cli.append(_cli_way(data_dir, runs_dir, dataset, args.epochs))]
            for way in (ways if i % 2 == 0 else ways[::-1]):   # alternate which goes first
                way()
            print(f"round {i + 1}: page {page[-1]['ips']:7.0f} img/s ({page[-1]['wall']:5.1f} s)   "
                  f"cli {cli[-1]['ips']:7.0f} img/s ({cli[-1]['wall']:5.1f} s)   server: "
                  f"{page[-1]['idle']:.1%} of a core idle with a tab on Home, {page[-1]['busy']:.1%} while "
                  f"its tab watched the run", flush=True)
        med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
        p, c = med(page, "ips"), med(cli, "ips")
        print(f"median: page {p:.0f} img/s, cli {c:.0f} img/s, ratio page/cli {p / c:.3f} (target >= 0.9)")
        print(f"server CPU with one idle tab: {med(page, 'idle'):.1%} of a core (goal < 10%); while a tab "
              f"watches the Live panel: {med(page, 'busy'):.1%}")
        print(json.dumps({"ratio": round(p / c, 3), "idle_share": round(med(page, "idle"), 4)}))


if __name__ == "__main__":
    main()
