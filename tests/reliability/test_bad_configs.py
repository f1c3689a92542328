"""Bad training inputs, one table: each is refused with a message naming its field by the CLI (in-process,
and as a real `python -m cnn_core` for two of them) and by the Train page (AppTest); no run folder is left."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from pagekit import page_file, shown
from streamlit.testing.v1 import AppTest

from cnn_core.cli import entry
from cnn_core.config import TrainConfig
from cnn_core.data import catalog
from cnn_core.nets import architectures
from cnn_core.runs import store
from cnn_core.train import engine, jobs
from ui import views

ROOT = Path(__file__).resolve().parents[2]
TRAIN = page_file("train")
TIMEOUT = 90          # the first AppTest run in a process imports torch
# No shipped dataset is too small for any architecture (the smallest input lenet takes is 16x16, every dataset
# is 28x28 or 32x32), so the "architecture does not fit the input" case registers a 1x8x8 dataset for itself.
TINY = catalog.DatasetInfo("tiny8", "Tiny 8x8", tuple("0123456789"), (1, 8, 8), "digits", 10)
NAN = float("nan")


@dataclass(frozen=True)
class Bad:
    """One bad input: how the CLI gets it, how a person enters it on the Train page, what must be said."""

    id: str
    field: str                   # the field the message must name (as TrainConfig.validate() keys it)
    words: str                   # part of the CLI message: what is wrong or what is allowed
    flags: tuple = ()            # `train` flags; empty when the case is a --config file
    config: object = None        # the --config JSON file's content (types only JSON carries)
    how: str = "widget"          # widget | clone-form | clone-note | none (see test_train_page_refuses)
    page: tuple = ()             # widget: (kind, key, value) set in order
    clone: dict | None = None    # clone-*: fields written into a saved run's config, then cloned
    page_words: str | None = None  # the page's message when it differs from `words`


CASES = [
    Bad("lr-zero", "lr", "learning rate must be in (0, 10], got 0", ("--lr", "0"),
        page=(("number_input", "train.lr", 0.0),)),
    Bad("lr-negative", "lr", "learning rate must be in (0, 10], got -0.1", ("--lr=-0.1",),
        page=(("number_input", "train.lr", -0.1),)),
    # A number widget turns a typed NaN into 0 (test_number_widget_turns_nan_into_a_refused_zero); a real NaN
    # reaches the form only from a saved run, through Clone.
    Bad("lr-nan", "lr", "learning rate must be a finite number, got nan", ("--lr", "NaN"),
        how="clone-form", clone={"lr": NAN}),
    Bad("lr-huge", "lr", "learning rate must be in (0, 10], got 1e+09", ("--lr", "1e9"),
        page=(("number_input", "train.lr", 1e9),)),
    Bad("batch-zero", "batch_size", "batch size must be between 1 and 8,192, got 0", ("--batch-size", "0"),
        page=(("number_input", "train.batch_size", 0),)),
    Bad("batch-over-dataset", "batch_size", "batch size 4,096 is larger than the 500 training images",
        ("--batch-size", "4096", "--val-size", "100"),
        page=(("number_input", "train.val_size", 100), ("number_input", "train.batch_size", 4096))),
    Bad("epochs-zero", "epochs", "epochs must be between 1 and 1,000, got 0", ("--epochs", "0"),
        page=(("number_input", "train.epochs", 0),)),
    Bad("epochs-million", "epochs", "epochs must be between 1 and 1,000, got 1,000,000", ("--epochs", "1000000"),
        page=(("number_input", "train.epochs", 10**6),)),
    # The optimizer, dataset, architecture and augmentation are selectboxes: no unknown value can be picked.
    # A saved run can hold one; Clone refuses it, names the field and keeps the form's own value.
    Bad("optimizer-unknown", "optimizer", "optimizer must be one of sgd, adam, adamw; got 'rmsprop'",
        ("--optimizer", "rmsprop"), how="clone-note", clone={"optimizer": "rmsprop"}),
    Bad("dropout-1.5", "arch_params.dropout", "dropout must be between 0 and 0.9, got 1.5",
        ("--arch", "lenet", "--param", "dropout=1.5"), page=(("number_input", "train.p.lenet.dropout", 1.5),)),
    Bad("width-0", "arch_params.width", "width must be between 1 and 128, got 0",
        ("--arch", "simple-cnn", "--param", "width=0"),
        page=(("selectbox", "train.arch", "simple-cnn"), ("number_input", "train.p.simple-cnn.width", 0))),
    Bad("n-blocks-1000", "arch_params.n_blocks", "n_blocks must be between 1 and 100, got 1,000",
        ("--arch", "res-net-deep", "--param", "n_blocks=1000"),
        page=(("selectbox", "train.arch", "res-net-deep"), ("number_input", "train.p.res-net-deep.n_blocks", 1000))),
    Bad("arch-unfit-input", "arch", "lenet cannot take input 1x8x8", ("--dataset", "tiny8", "--arch", "lenet"),
        page=(("selectbox", "train.dataset", "tiny8"),)),
    # Both knobs at their top: over the size limits (cnn_core/nets/layers.py); counted on meta, never allocated.
    Bad("model-too-large", "arch", "this network has 59,437,930 parameters (about 238 MB of weights); the limit is "
        "50,000,000 (CNN_MAX_PARAMS): use fewer or narrower layers",
        ("--arch", "res-net-deep", "--param", "n_chans1=256", "--param", "n_blocks=100"),
        page=(("selectbox", "train.arch", "res-net-deep"), ("number_input", "train.p.res-net-deep.n_chans1", 256),
              ("number_input", "train.p.res-net-deep.n_blocks", 100))),
    Bad("dataset-unknown", "dataset", "unknown dataset 'imagenet'", ("--dataset", "imagenet"),
        how="clone-note", clone={"dataset": "imagenet"}),
    Bad("arch-unknown", "arch", "unknown architecture 'vgg'", ("--arch", "vgg"),
        how="clone-note", clone={"arch": "vgg"}),
    Bad("weight-decay-negative", "weight_decay", "weight decay must be between 0 and 1, got -0.1", ("--weight-decay=-0.1",),
        page=(("number_input", "train.weight_decay", -0.1),)),
    Bad("label-smoothing-1", "label_smoothing", "label smoothing must be in [0, 1), got 1", ("--label-smoothing", "1"),
        page=(("number_input", "train.label_smoothing", 1.0),)),
    Bad("momentum-1", "momentum", "momentum must be in [0, 1), got 1", ("--momentum", "1"),
        page=(("number_input", "train.momentum", 1.0),)),
    Bad("nesterov-without-momentum", "nesterov", "Nesterov momentum needs momentum > 0",
        ("--nesterov", "true", "--momentum", "0"),
        page=(("number_input", "train.momentum", 0.0), ("checkbox", "train.nesterov", True))),
    Bad("step-size-zero", "step_size", "step_size must be between 1 and 1,000, got 0",
        ("--schedule", "step", "--step-size", "0"),
        page=(("selectbox", "train.schedule", "step"), ("number_input", "train.step_size", 0))),
    Bad("seed-negative", "seed", "seed must be between 0 and 4,294,967,295, got -1", ("--seed=-1",),
        page=(("number_input", "train.seed", -1),)),
    # The device list offers this machine's devices plus the one a cloned run names: the form flags it.
    Bad("device-unknown", "device", "device must be one of auto, cpu, cuda, cuda:N, mps; got 'tpu'",
        ("--device", "tpu"), how="clone-form", clone={"device": "tpu"}),
    Bad("val-size-over-train", "val_size", "validation size must be below the 600 training images of mnist",
        ("--val-size", "100000"), page=(("number_input", "train.val_size", 100000),)),
    # The name box (max_chars=120) cuts a typed name to 120 characters server-side: test_name_box_cuts_at_120.
    Bad("name-300-chars", "name", "a run name has at most 120 characters, got 300", ("--name", "x" * 300),
        how="none"),
    Bad("name-empty", "name", "a run name cannot be empty", ("--name", " \x00 "), how="none"),
    Bad("json-lr-text", "lr", "learning rate must be a number in (0, 10], got 'fast'", config={"lr": "fast"},
        how="clone-note", clone={"lr": "fast"}),
    Bad("json-epochs-fraction", "epochs", "epochs must be a whole number between 1 and 1,000, got 2.5", config={"epochs": 2.5},
        how="clone-note", clone={"epochs": 2.5}),
    Bad("json-augment-number", "augment", "augment must be one of none, standard, affine; got 3",
        config={"augment": 3}, how="clone-note", clone={"augment": 3}),
    Bad("json-arch-params-list", "arch_params", "arch_params must be an object of parameter values, got [1, 2]",
        config={"arch_params": [1, 2]}, how="clone-note", clone={"arch_params": [1, 2]}),
    Bad("json-param-text", "arch_params.dropout", "dropout must be a number between 0 and 0.9, got 'high'",
        config={"arch_params": {"dropout": "high"}}, how="clone-note", clone={"arch_params": {"dropout": "high"}}),
    Bad("json-unknown-field", "learning_rate", "unknown field 'learning_rate'", config={"learning_rate": 0.1},
        how="clone-note", clone={"learning_rate": 0.1}),
    # A config that is not an object cannot be in a run.json the form clones from (read_run refuses it).
    Bad("json-not-an-object", "config", "must be a JSON object, got list", config=[1, 2], how="none"),
]
PAGE_CASES = [c for c in CASES if c.how != "none"]


def _ids(cases):
    return [c.id for c in cases]


def _nothing_in(runs_dir: Path, besides: tuple = ()) -> bool:
    """The runs folder is absent or holds nothing but `besides` (no run, no empty folder, no temp file)."""
    return not runs_dir.exists() or sorted(p.name for p in runs_dir.iterdir()) == sorted(besides)


@pytest.fixture(autouse=True)
def _tiny_dataset_and_no_training(monkeypatch):
    """The 1x8x8 dataset is known; a config that slipped through would fail here instead of training."""
    monkeypatch.setitem(catalog.DATASETS, TINY.id, TINY)

    def refuse(*_a, **_k):
        raise AssertionError("a bad config was accepted and reached training")
    monkeypatch.setattr(engine, "run_training", refuse)
    monkeypatch.setattr(jobs, "launch", refuse)


# ---- the CLI -----------------------------------------------------------------------------------
def _argv(case: Bad, tmp_path: Path) -> list[str]:
    if case.config is None:
        return ["train", *case.flags, "--quiet"]
    file = tmp_path / "config.json"
    file.write_text(json.dumps(case.config))
    return ["train", "--config", str(file), "--quiet"]


def _main(argv: list[str]) -> int:
    try:
        return entry.main(argv)
    except SystemExit as exc:   # argparse's own refusals
        return exc.code


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_cli_refuses(case, runs_dir, tmp_path, capsys):
    """`train` with the bad input exits 2 with 'error: ... <field>: <message>' and makes no run folder."""
    rc = _main(_argv(case, tmp_path))
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: invalid training config:") and "Traceback" not in err
    assert f"  {case.field}: " in err, err
    assert case.words in err, err
    assert _nothing_in(runs_dir)


@pytest.mark.parametrize("case", [CASES[0], next(c for c in CASES if c.id == "json-arch-params-list")],
                         ids=["flags", "config-file"])
def test_real_cli_process_refuses(case, runs_dir, tmp_path):
    """The same through `python -m cnn_core train` as a process: exit 2, the field named, no traceback."""
    argv = _argv(case, tmp_path)
    out = subprocess.run([sys.executable, "-m", "cnn_core", *argv], cwd=ROOT, env=os.environ.copy(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and f"  {case.field}: {case.words}" in out.stderr, out.stderr
    assert out.stdout == "" and _nothing_in(runs_dir)


def test_whole_number_written_as_float_is_stored_as_int(runs_dir):
    """JSON `"epochs": 2.0` is a whole number: accepted, and run.json stores the int the engine slices with
    (it stored 2.0 and the run failed as soon as it started)."""
    path = store.create_run(TrainConfig.from_dict({"epochs": 2.0, "batch_size": 32.0, "val_size": 100.0}))
    stored = store.read_run(path).config
    kept = [(stored[k], type(stored[k])) for k in ("epochs", "batch_size", "val_size")]
    assert kept == [(2, int), (32, int), (100, int)]


# ---- the Train page ----------------------------------------------------------------------------
def _texts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def _saved_run(fields: dict) -> Path:
    """A cancelled run whose run.json config holds `fields` (as a hand-edited or foreign run.json would)."""
    path = store.create_run(TrainConfig(val_size=100, epochs=1))
    record = store.read_run(path)
    store.update_run(path, status="cancelled", config={**record.config, **fields})
    return path


def _label(field: str) -> str:
    """What the page calls `field` in its lists of bad settings: the form's label, not the field's id."""
    arch = next((a for a in architectures.ARCHITECTURES.values() if field.startswith("arch_params.")
                 and any(f"arch_params.{p.name}" == field for p in a.params)), None)
    return views.error_labels({field: ""}, arch)[0]


def _forged_press(at: AppTest) -> None:
    """Press Launch although the page has it off, as a hand-made websocket message could (AppTest, like a
    browser, will not press a disabled button, so the flag is lifted on the test's side only)."""
    button = at.button(key="train.launch")
    assert button.disabled
    button.proto.disabled = False
    button.click().run()


def _launch_flash(at: AppTest) -> list[str]:
    return [e for e in _texts(at, "error") if e.startswith("Not launched")]


@pytest.mark.parametrize("case", PAGE_CASES, ids=_ids(PAGE_CASES))
def test_train_page_refuses(case, runs_dir):
    """widget: the bad value is typed and Launch pressed in the same rerun (the button was still on, as for
    a person who types and clicks at once): launch refuses naming the field, and the redrawn form shows the
    field's error with Launch off. clone-form: a saved run holds the value and Clone puts it in the form:
    the error names the field, Launch is off, and a forged press of it is discarded. clone-note: no widget
    can hold the value; Clone leaves the field as it was and says so, naming it. No new run folder."""
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT)
    before = ()
    if case.how.startswith("clone"):
        source = _saved_run(case.clone)
        before = (source.name,)
        at.run()
        at.selectbox(key="train.clone").set_value(source.name).run()
        at.button(key="train.clone_btn").click().run()
    else:
        at.run()
        *first, (kind, key, value) = case.page
        for k, wkey, v in first:                 # one rerun each: an architecture's knobs appear after it
            getattr(at, k)(key=wkey).set_value(v).run()
        assert not at.button(key="train.launch").disabled and not at.error   # valid until the last value
        getattr(at, kind)(key=key).set_value(value)
        at.button(key="train.launch").click().run()
        flash = _launch_flash(at)
        assert flash and flash[0].startswith("Not launched: fix ") and _label(case.field) in flash[0], \
            _texts(at, "error")
    assert not at.exception, [e.value for e in at.exception]
    if case.how == "clone-note":
        note = "\n".join(_texts(at, "warning"))
        assert "Not carried over" in note and f"{case.field}: " in note, note
        held = at.session_state[f"train.{case.field}"] if f"train.{case.field}" in at.session_state else None
        assert held != case.clone.get(case.field, object()), held       # the bad value is not in the form
        assert not at.button(key="train.launch").disabled               # the form holds only good values
    else:
        errors = _texts(at, "error")
        assert any((case.page_words or case.words) in e for e in errors), errors
        assert any(_label(case.field) in w.split("fixed: ")[-1] for w in _texts(at, "warning") if "fixed: " in w)
        if case.how == "clone-form":
            _forged_press(at)                     # Streamlit drops a disabled widget's press server-side
            assert not at.exception and not _launch_flash(at)
    assert _nothing_in(runs_dir, before)


def test_number_widget_turns_nan_into_a_refused_zero(runs_dir):
    """A NaN sent for the learning-rate widget cannot be entered: Streamlit resets it to the widget's
    default 0.0, which the form refuses in turn, so no NaN reaches a run."""
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    at.number_input(key="train.lr").set_value(NAN).run()
    value = at.number_input(key="train.lr").value
    assert value == 0.0 and not math.isnan(value)
    assert "learning rate must be in (0, 10], got 0" in _texts(at, "error")
    assert at.button(key="train.launch").disabled and _nothing_in(runs_dir)


def test_name_box_cuts_at_120_characters(runs_dir):
    """A 300-character run name cannot be entered: the box keeps its first 120, the longest name allowed."""
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    at.text_input(key="train.name").set_value("x" * 300).run()
    assert at.text_input(key="train.name").value == "x" * store.MAX_NAME
    assert not any("run name" in e for e in _texts(at, "error")) and _nothing_in(runs_dir)
