"""Your own pictures in a real browser: on Home, a zip of class folders uploaded through the file picker is
previewed (counts, samples, warnings) and added; on Inspect, a run trained on an added dataset classifies an
uploaded zip of labelled pictures (accuracy, the table, the confusion matrix). Screenshots go to
artifacts/screenshots/own-*.png at 1440 px and 400 px.

The server is `make run`'s own command over a data folder of this module's (added datasets would otherwise
show on every other test's Home) and a runs folder with one run trained on an added dataset.
"""
from __future__ import annotations

import io
import zipfile
import zlib

import numpy as np
import pytest
from browserkit import SHOTS, chromium_page, dashboard_server, idle, train_runs
from PIL import Image

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (230, 30, 30)}


def _zip(counts: dict[str, int], size=(30, 24), prefix: str = "") -> bytes:
    """A zip of class folders of noisy colour fields, as a person's phone pictures would be zipped."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for c, n in counts.items():
            for i in range(n):
                rng = np.random.default_rng(zlib.crc32(f"{prefix}{c}{i}".encode()))
                a = np.clip(np.array(COLOURS[c])[None, None] + rng.normal(0, 40, (size[1], size[0], 3)), 0, 255)
                png = io.BytesIO()
                Image.fromarray(a.astype(np.uint8)).save(png, "PNG")
                z.writestr(f"{prefix}{c}/{i:03d}.png", png.getvalue())
    return buf.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A data folder holding one added dataset ("colours") and a runs folder with a run trained on it."""
    from cnn_core.data import pictures

    data_dir = tmp_path_factory.mktemp("own-data")
    pictures.add("colours", _zip({"red": 30, "blue": 30, "green": 30}), pictures.Options(size=16),
                  data_dir=data_dir, upload_name="colours.zip")
    runs = train_runs(data_dir, tmp_path_factory.mktemp("own-runs"),
                      {"colours run": dict(dataset="colours", arch="simple-cnn", epochs=3, batch_size=16, lr=0.01)})
    return data_dir, runs["colours run"]


@pytest.fixture(scope="module")
def server(folders, tmp_path_factory):
    data_dir, run = folders
    with dashboard_server(data_dir, run.parent, tmp_path_factory.mktemp("own-log")) as base:
        yield base


@pytest.fixture(scope="module")
def page():
    with chromium_page(height=1400, timeout_ms=90_000) as pg:
        yield pg


def _shots(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-1440.png"), full_page=True)
    page.set_viewport_size({"width": 400, "height": 1400})
    idle(page)
    page.screenshot(path=str(SHOTS / f"{name}-400.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 1400})
    idle(page)


def test_upload_preview_and_add_a_dataset_on_home(server, folders, page):
    from playwright.sync_api import expect

    page.goto(server)
    page.get_by_text("Your own pictures").wait_for()
    expect(page.get_by_text("colours", exact=True).first).to_be_visible()     # the one added before
    page.get_by_text("Add a dataset from your pictures").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": "traffic.zip", "mimeType": "application/zip",
         "buffer": _zip({"red": 12, "green": 12, "blue": 4}, prefix="traffic/")})
    idle(page)
    name = page.get_by_role("textbox", name="Name", exact=True)
    name.fill("traffic")
    name.press("Enter")
    idle(page)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("3 classes, 25 training and 3 test images from zip traffic.zip")).to_be_visible()
    expect(page.get_by_text("fewer than 10 pictures in blue (4)")).to_be_visible()
    page.locator("[data-testid='stImage'] img").nth(2).wait_for()                 # a strip of samples per class
    _shots(page, "own-preview")
    page.get_by_role("button", name="Add dataset").click()
    expect(page.get_by_text("Added traffic")).to_be_visible()
    expect(page.get_by_text("traffic", exact=True).first).to_be_visible()
    from cnn_core.data import catalog

    info = catalog.get_info("traffic", data_dir=folders[0])
    assert info.classes == ("blue", "green", "red") and info.input_shape == (3, 32, 32)
    _shots(page, "own-added")


def test_classify_many_on_inspect_reads_a_labelled_zip(server, folders, page):
    from playwright.sync_api import expect

    _, run = folders
    page.goto(f"{server}/inspect?run={run.name}")
    page.get_by_role("tab", name="Classify many").click()
    panel = page.get_by_role("tabpanel")
    panel.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        {"name": "check.zip", "mimeType": "application/zip",
         "buffer": _zip({"red": 4, "green": 4, "blue": 4}, prefix="check/")})
    idle(page)
    panel.get_by_role("button", name="Classify").click()
    expect(panel.get_by_text("12 pictures read; accuracy 100.0% on the 12 in class folders")).to_be_visible()
    expect(panel.locator(".js-plotly-plot").first).to_be_visible()              # the confusion matrix
    expect(panel.get_by_text("Mistakes: 0")).to_be_visible()
    _shots(page, "own-classify-many")
