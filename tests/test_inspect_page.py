"""The Inspect page under AppTest: a clear message, never a traceback, for every state a run can be in."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from pagekit import shown
from streamlit.testing.v1 import AppTest

from cnn_core.config import TrainConfig
from cnn_core.runs import store
from cnn_core.train import engine, trainer
from ui.inspector import state, tabs

PAGE = str(Path(__file__).resolve().parent.parent / "ui" / "inspector" / "page.py")
FAST = dict(dataset="mnist", arch="lenet", val_size=100, epochs=1, batch_size=32, lr=0.05)


@pytest.fixture(scope="module")
def template_run(small_data_dir, tmp_path_factory):
    """One lenet run trained once for the module; each test works on its own copy."""
    root = tmp_path_factory.mktemp("page-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_DATA_DIR", str(small_data_dir))
        mp.setenv("CNN_OFFLINE", "1")
        path = store.create_run(TrainConfig(**FAST), runs_dir=root)
        assert engine.run_training(path).status == "completed"
    return path


@pytest.fixture
def run_copy(template_run, runs_dir):
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / template_run.name
    shutil.copytree(template_run, path)
    return path


def _open(run_id: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=120)
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest, kind: str) -> str:
    return "\n".join(shown(e.value) for e in at.get(kind))     # as read: views.md escapes names


def test_no_runs_says_where_to_start():
    """An empty runs folder: a pointer to Train, no tabs."""
    at = _open()
    assert "No runs yet" in _texts(at, "info") and not at.tabs


def test_completed_run_shows_every_tab(run_copy):
    """?run=<id> opens that run: a tab per view of Inspect's registry (tabs.TABS), in its order, figures in
    them, the top-3 line, no error."""
    at = _open(run_copy.name)
    assert at.selectbox(key="inspect.run").value == run_copy.name
    assert [t.label for t in at.tabs] == list(tabs.TABS) and {"Filters", "Confusion"} <= set(tabs.TABS)
    assert len(at.get("plotly_chart")) >= 8 and not at.error
    assert "Top 3:" in _texts(at, "markdown")
    assert at.select_slider(key=f"inspect.weights.{run_copy.name}").value == "best"


def test_new_image_and_epoch_choices_rerun_cleanly(run_copy):
    """Another test index, a mistake, and epoch 0 each rerun the page without an error."""
    at = _open(run_copy.name)
    at.number_input(key="inspect.img_n").set_value(7).run()
    assert "Test image #7" in _texts(at, "caption")
    at.select_slider(key=f"inspect.weights.{run_copy.name}").set_value("epoch-000").run()
    at.button_group(key="inspect.img_mode").set_value("misclassified").run()
    assert not at.exception and not at.error
    assert "mistakes" in _texts(at, "markdown")


def test_run_without_snapshots_explains_the_cap(monkeypatch, runs_dir):
    """A run over the snapshot size cap shows why there is no epoch slider, and still inspects best."""
    monkeypatch.setattr(trainer, "SNAPSHOT_CAP_BYTES", 1000)
    path = store.create_run(TrainConfig(**FAST))
    engine.run_training(path)
    at = _open(path.name)
    assert "no per-epoch snapshots" in _texts(at, "info") and "cap" in _texts(at, "info")
    assert len(at.tabs) == len(tabs.TABS) and not at.error


def test_run_still_training_says_so_and_shows_epoch_0(run_copy):
    """A running run with only its epoch-0 snapshot: a note that it trains, and the untrained weights."""
    for name in (store.BEST, store.CHECKPOINT, "snapshots/epoch-001.pt"):
        (run_copy / name).unlink()
    store.update_run(run_copy, status="running", pid=os.getpid(), progress={"epoch": 1, "epochs": 1})
    at = _open(run_copy.name)
    assert "still running" in _texts(at, "info")
    assert "epoch 0" in _texts(at, "caption")
    assert len(at.tabs) == len(tabs.TABS) and not at.error


def test_failed_run_shows_its_error_and_its_weights(run_copy):
    """A failed run that saved weights: its error as a warning, and the tabs still work."""
    store.update_run(run_copy, status="failed", error="the training loss became nan at step 9")
    at = _open(run_copy.name)
    assert "loss became nan" in _texts(at, "warning")
    assert len(at.tabs) == len(tabs.TABS) and not at.error


def test_run_with_missing_checkpoints_says_so(run_copy):
    """A completed run whose weight files are gone: a warning naming the missing files, no tabs."""
    for name in (store.BEST, store.CHECKPOINT):
        (run_copy / name).unlink()
    shutil.rmtree(run_copy / "snapshots")
    at = _open(run_copy.name)
    assert "no saved weights" in _texts(at, "warning") and "missing" in _texts(at, "warning")
    assert not at.tabs


def test_queued_run_says_it_has_not_started(runs_dir):
    """A run that never started: it is waiting, nothing to inspect yet."""
    path = store.create_run(TrainConfig(**FAST))
    at = _open(path.name)
    assert "waiting to start" in _texts(at, "warning")


def test_corrupt_weights_file_is_an_error_message(run_copy):
    """An empty best.pt: st.error with the checkpoint's own message, not a traceback."""
    (run_copy / store.BEST).write_bytes(b"")
    at = _open(run_copy.name)
    assert "cannot be loaded" in _texts(at, "error") and "empty" in _texts(at, "error")


def test_missing_test_set_keeps_filters(run_copy, monkeypatch, tmp_path):
    """A run opened where its dataset is not prepared: filters still show, the other tabs say why not."""
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "no-data"))
    at = _open(run_copy.name)
    assert "test set cannot be used" in _texts(at, "error") and "prepare" in _texts(at, "error")
    assert len(at.get("plotly_chart")) >= 1


def test_unknown_run_in_url_warns_and_falls_back(run_copy):
    """?run=<unknown> warns and opens an existing run instead."""
    at = _open("no-such-run")
    assert "no run 'no-such-run'" in _texts(at, "warning")
    assert at.selectbox(key="inspect.run").value == run_copy.name


def test_switching_to_a_colour_mlp_run_keeps_working(run_copy):
    """From a lenet/mnist run to an MLP on cifar2 and back: widget picks that no longer fit are reset,
    the MLP gets its no-conv explanations and its three attributions (no Grad-CAM)."""
    mlp = store.create_run(TrainConfig(**{**FAST, "dataset": "cifar2", "arch": "mlp", "val_size": 20,
                                         "batch_size": 16}))
    assert engine.run_training(mlp).status == "completed"
    at = _open(run_copy.name)
    at.selectbox(key="inspect.filter_layer").set_value("features.conv2").run()
    at.number_input(key="inspect.img_n").set_value(150).run()
    at.selectbox(key="inspect.run").set_value(mlp.name).run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    assert "no conv layers" in _texts(at, "info")
    attribution = _texts(at, "caption")
    assert "**Saliency:**" in attribution and "**Occlusion:**" in attribution and "Grad-CAM" not in attribution
    assert state.ATTR_LAYER not in [s.key for s in at.selectbox]     # no conv layer: no Grad-CAM, no layer
    at.selectbox(key="inspect.run").set_value(run_copy.name).run()
    assert not at.exception and at.selectbox(key="inspect.filter_layer").value == "features.conv1"


def test_fool_it_attacks_the_chosen_image_and_draws_the_robustness_curve(run_copy):
    """Fool it: the chosen test image attacked at the default budget (its change no larger than the budget,
    the top-3 before and after); Smallest change and FGSM rerun cleanly; the robustness button draws the
    curve from budget 0 with its reading in words, and the curve stays for these weights on the next run."""
    import re

    at = _open(run_copy.name)
    eps = at.select_slider(key=state.FOOL_EPS).value
    assert eps == pytest.approx(0.15)
    size = float(re.search(r"largest pixel change ([\d.]+) =", _texts(at, "caption")).group(1))
    assert size <= eps + 1e-6 and "**Before:**" in _texts(at, "markdown") and "**After:**" in _texts(at, "markdown")
    at.toggle(key=state.FOOL_SMALLEST).set_value(True).run()
    at.radio(key=state.FOOL_METHOD).set_value("fgsm").run()
    assert not at.exception and not at.error
    at.selectbox(key=state.FOOL_N).set_value(100).run()
    at.button(key=state.FOOL_GO).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "With no change" in _texts(at, "markdown") and "FGSM on 100 test images" in _texts(at, "caption")
    at.run()                                                   # cached: drawn without the button
    assert "With no change" in _texts(at, "markdown") and not [b for b in at.button if b.key == state.FOOL_GO]


def test_attribution_draws_four_maps_and_follows_the_class(run_copy):
    """Attribution: a caption per captum method (four on a conv net); another class and an earlier
    Grad-CAM layer rerun cleanly."""
    from cnn_core.analysis import attribution

    at = _open(run_copy.name)
    captions = _texts(at, "caption")
    assert all(line in captions for line in attribution.METHODS.values())
    at.selectbox(key=state.ATTR_CLASS).set_value(3).run()
    at.selectbox(key=state.ATTR_LAYER).set_value("conv1").run()
    assert not at.exception and not at.error


def test_clickable_confusion_matrix_has_a_point_on_every_cell():
    """The confusion figure's click points: one per cell, at (predicted, true), customdata (true, predicted);
    the axes fixed to the cells so that the points do not pad them."""
    import numpy as np

    from ui.figures import images

    fig = images.confusion_figure(np.array([[3, 1, 0], [0, 4, 2], [1, 0, 5]]), ("cat", "dog", "emu"), clickable=True)
    cells = next(t for t in fig.data if t.name == "cells")
    assert len(cells.customdata) == 9 and list(cells.customdata[5]) == [1, 2]
    assert (cells.x[5], cells.y[5], cells.text[5]) == ("emu", "dog", "2")
    assert list(fig.layout.xaxis.range) == [-0.5, 2.5] and list(fig.layout.yaxis.range) == [2.5, -0.5]
