"""The Compare page in a real browser: two trained runs side by side, their diff, rename and delete.

A `streamlit run dashboard.py` server runs as a subprocess on a free port over the small generated
datasets and a runs folder holding two runs trained here; Debian's chromium is driven by Playwright.
The screenshot goes to artifacts/screenshots/compare.png for a person to look at.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from browserkit import SHOTS, chromium_page, dashboard_server, idle, select, train_runs

BASE = {"dataset": "mnist", "val_size": 100, "epochs": 3, "batch_size": 32, "lr": 0.05, "log_every": 4}
RUNS = {"lr 0.05, 10 filters": BASE, "lr 0.02, 4 filters": dict(BASE, lr=0.02, arch_params={"conv1_channels": 4})}
TRACES_JS = "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(e => (e.data || []).length)"
NAMES_JS = "() => (document.querySelector('.js-plotly-plot').data || []).map(t => t.name)"

@pytest.fixture(scope="module")
def trained(small_data_dir, tmp_path_factory) -> dict[str, Path]:
    """Two runs trained by the real engine, differing in lr and conv1_channels; name -> folder."""
    return train_runs(small_data_dir, tmp_path_factory.mktemp("compare-runs"), RUNS)


@pytest.fixture(scope="module")
def server(small_data_dir, trained, tmp_path_factory):
    """A dashboard server on a free port over the trained runs' folder; yields its base url."""
    runs_dir = next(iter(trained.values())).parent
    with dashboard_server(small_data_dir, runs_dir, tmp_path_factory.mktemp("compare-log")) as base:
        yield base


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1300) as pg:
        yield pg


def _pick(page, label: str) -> None:
    box = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to compare")
    box.click()
    page.get_by_role("option", name=label, exact=True).click()
    page.keyboard.press("Escape")
    idle(page)


ROBUST_JS = ("() => { const el = document.querySelector('.st-key-compare-robust_chart .js-plotly-plot');"
             " return el && el.data ? el.data.map(t => t.name) : null; }")      # ui/compare/state.py ROBUST_CHART


def test_robustness_curves_one_line_per_run(server, trained, page):
    """Both runs picked, Robustness curves pressed: a progress bar while the attacks run, then one chart of
    accuracy against the budget with one line per run (named by it), and a sentence naming the hardest to fool.
    Screenshot: compare-robustness.png."""
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    page.goto(f"{server}/compare")
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    idle(page)
    for name in RUNS:
        _pick(page, name)
    start = time.monotonic()
    page.get_by_role("button", name="Robustness curves").click()
    page.wait_for_function(f"() => {{ const n = ({ROBUST_JS})(); return n !== null && n.length === {len(RUNS)}; }}",
                           timeout=180_000)
    took = time.monotonic() - start
    names = page.evaluate(ROBUST_JS)
    assert sorted(n.split(" · ")[0] for n in names) == sorted(RUNS), names
    expect(page.get_by_text("Hardest to fool").or_(page.get_by_text("holds out a little longer"))).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    idle(page)
    (SHOTS.parent / "compare-robustness.json").write_text(json.dumps({"runs": len(RUNS), "click_to_chart_s": round(took, 1)}))
    page.mouse.move(0, 0)                                   # no tooltip over the section
    section = page.locator(".st-key-compare-robust_chart")
    section.scroll_into_view_if_needed()
    page.wait_for_timeout(800)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "compare-robustness.png"))


def test_two_runs_side_by_side_rename_and_delete(server, trained, page):
    """Both runs overlaid (two traces each per chart), the differing fields listed, renamed, exported
    (the check's result shown), deleted."""
    from playwright.sync_api import expect

    from cnn_core.runs import store

    expect.set_options(timeout=60_000)
    page.goto(f"{server}/compare")
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    idle(page)
    for name in RUNS:
        _pick(page, name)
    # loss and accuracy with train + val of each run (4 traces), then the parallel coordinates (1)
    page.wait_for_function(f"() => JSON.stringify(({TRACES_JS})()) === '[4,4,1]'")
    assert {n.split(" · ")[0] for n in page.evaluate(NAMES_JS)} == set(RUNS)
    diff = page.locator('[data-testid="stTable"]')
    expect(diff).to_contain_text("arch_params.conv1_channels")
    expect(diff).to_contain_text("lr")
    expect(diff).not_to_contain_text("batch_size")

    page.get_by_role("textbox", name="Name", exact=True).fill("lr 0.05, renamed")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_text("Renamed to 'lr 0.05, renamed'.")).to_be_visible()
    idle(page)
    first = trained["lr 0.05, 10 filters"]
    assert store.read_run(first).name == "lr 0.05, renamed"
    picker = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to compare")
    expect(picker).to_contain_text("lr 0.05, renamed")
    _screenshot(page, SHOTS / "compare.png")

    page.get_by_role("tab", name="Download and export").click()
    idle(page)                                              # switching tabs reruns the page
    page.get_by_role("button", name="Export ONNX, .pt2, TorchScript").click()
    for kind in ("ONNX", "torch.export (.pt2)", "TorchScript (old format)"):     # each check's result is shown
        expect(page.get_by_text(f"{kind} export matches PyTorch on 64 test images of mnist")).to_be_visible()
    expect(page.get_by_role("button", name=f"Download {first.name}.onnx")).to_be_visible()
    idle(page)
    page.locator('[data-testid="stTabs"]').last.screenshot(path=str(SHOTS / "compare-export.png"))
    page.get_by_role("tab", name="Rename, note, delete").click()
    idle(page)

    page.get_by_role("button", name="Delete run…").click()
    expect(page.get_by_text("every file in its folder")).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Yes, delete").click()
    expect(page.get_by_text("Deleted run 'lr 0.05, renamed'.")).to_be_visible()
    idle(page)
    assert not first.exists() and trained["lr 0.02, 4 filters"].exists()
    page.wait_for_function(f"() => JSON.stringify(({TRACES_JS})()) === '[2,2]'")   # one run left


def _screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so the viewport grows to fit it first."""
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": height + 40})
    page.wait_for_timeout(1500)                  # plotly redraws at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def _copy(path: Path, name: str) -> Path:
    """A copy of a run folder under a new id and name, as a person copying runs between machines makes."""
    from cnn_core.runs import store

    new = path.parent / f"{path.name}-copy-{len(list(path.parent.iterdir()))}"
    shutil.copytree(path, new)
    store.update_run(new, id=new.name, name=name)
    return new


def test_actions_right_after_the_page_opens_act_on_the_run_picked(server, trained, page):
    """A scripted pass at machine speed, no waiting for the page to settle: pick a run in Run actions the
    moment it shows, rename it, then pick the other and ask to delete it. Each action is on the run picked
    (a pick made during the page's first seconds was once lost, and Rename renamed the other run)."""
    from playwright.sync_api import expect

    from cnn_core.runs import store

    expect.set_options(timeout=60_000)
    source = next(p for p in trained.values() if p.exists())
    a, b = _copy(source, "copy a"), _copy(source, "copy b")
    page.goto(f"{server}/compare")
    select(page, "Run", "copy a", settle_ms=0)
    name_box = page.get_by_role("textbox", name="Name", exact=True)
    expect(name_box).to_have_value("copy a")
    name_box.fill("copy a, renamed at once")
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_text("Renamed to 'copy a, renamed at once'.")).to_be_visible()
    assert store.read_run(a).name == "copy a, renamed at once"
    assert store.read_run(b).name == "copy b" and store.read_run(source).name != "copy a, renamed at once"
    select(page, "Run", "copy b", settle_ms=0)
    page.get_by_role("button", name="Delete run…").click()
    expect(page.get_by_text("Delete 'copy b' and every file in its folder?")).to_be_visible()
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.get_by_role("button", name="Delete run…")).to_be_visible()
    assert a.exists() and b.exists()
