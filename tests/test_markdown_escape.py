"""Names from elsewhere (an imported run's name, its classes, a dataset's folder names, file names in a zip)
show as typed on every page: Streamlit renders Markdown in alerts, captions, labels and st.table cells, and
`![x](http://host/path)` there would make each viewer's browser fetch that address (views.md escapes them);
plotly.js draws <a href>, <span style> in chart text (views.plot_text escapes them)."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest
import test_inspect_page
from google.protobuf.json_format import MessageToDict
from pagekit import shown
from streamlit.testing.v1 import AppTest

from cnn_core.config import TrainConfig
from cnn_core.runs import metrics_log, store
from ui import views

ROOT = Path(__file__).resolve().parent.parent
template_run = test_inspect_page.template_run     # the fixture: a lenet run trained once for the module
TIMEOUT = 90                     # the first page in a process imports torch
HOSTILE = "![x](http://evil.example/b) <img src=http://evil.example/i> <a href='http://evil.example/a'>a</a> :red[r]"
IMAGE_LINK = re.compile(r"(?<!\\)!(?<!\\)\[")          # an image that would be fetched: ![ not escaped
PLOTLY_TAG = re.compile(r"<(a|img|span)\b", re.IGNORECASE)   # tags plotly.js draws (links, styles), or an image
BLANK_LINE = re.compile(r"\n[ \t]*(\n|$)")              # ends an HTML block: Markdown reads what follows
MD_KEYS = {"body", "label", "help", "caption", "text", "content"}   # proto fields Streamlit renders as Markdown
MD_OPTIONS = {"radio", "select_slider"}    # their options are Markdown too (a selectbox's are plain text)


# ---- views.md -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "![x](http://e/b)", "[a](javascript:x)", "<img src=x>", "**b**", "$x$", ":red[x]", ":material/home:",
    "a\\b\\\\c \\![x](y)", "two\nlines\r\nand\rmore", "# head", "- item", "`code`", "~~s~~", "a | b", "&lt;",
    "plain name 42", "",
])
def test_md_round_trips_to_the_same_characters(text):
    """Unescaping md's output (CommonMark: a backslash before ASCII punctuation is that character) gives
    the text back, line breaks as spaces; no image or link opener is left unescaped."""
    out = views.md(text)
    assert shown(out) == re.sub(r"\r\n?|\n", " ", text)
    assert "\n" not in out and "\r" not in out
    assert not IMAGE_LINK.search(out) and not re.search(r"(?<!\\)[\[\]()<>*_`$:#|~&!]", out.replace("\\\\", ""))


def test_md_leaves_plain_words_alone():
    """Letters, digits and spaces need no escape: a plain name reads the same in the page's source."""
    assert views.md("lenet on mnist 2") == "lenet on mnist 2"
    assert views.md("![x](http://e/b)") == r"\!\[x\]\(http\:\/\/e\/b\)"


def test_plot_text_escapes_the_tags_plotly_draws():
    """<a href>, <span style>, <b> become text plotly shows as typed (&lt; is one of the entities it decodes)."""
    assert views.plot_text("<a href='http://e'>x</a> & y") == "&lt;a href='http://e'&gt;x&lt;/a&gt; &amp; y"


# ---- the pages ----------------------------------------------------------------------------------
def markdown_strings(at: AppTest) -> list[str]:
    """Every string of the rendered page that Streamlit reads as Markdown: alerts, captions, markdown,
    headings, labels, help, image captions, metric values, radio and slider options, st.table cells."""
    out: list[str] = []

    def strings(value, keys, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                strings(v, keys, k)
        elif isinstance(value, list):
            for v in value:
                strings(v, keys, key)
        elif isinstance(value, str) and key in keys:
            out.append(value)

    def walk(node):
        kind = getattr(node, "type", None)
        if kind == "table":
            frame = node.value
            out.extend(str(v) for v in [*frame.columns, *frame.index, *frame.to_numpy().ravel()])
        elif kind not in ("code", "plotly_chart", "arrow_data_frame") and hasattr(getattr(node, "proto", None),
                                                                                  "DESCRIPTOR"):
            strings(MessageToDict(node.proto), MD_KEYS | ({"options"} if kind in MD_OPTIONS else set()))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    walk(at.sidebar)
    return out


def assert_inert(at: AppTest, must_show: str = "evil.example") -> None:
    """No Markdown string of the page holds an image the browser would fetch, no chart a tag plotly draws;
    and the hostile text is on the page (so the check looked at something)."""
    assert not at.exception, [e.value for e in at.exception]
    texts = markdown_strings(at)
    assert any(must_show in shown(t) for t in texts), "the hostile text is not shown"
    # A body opening with <div is an HTML block up to its first blank line: raw HTML, where ![ is text.
    blocks = [t for t in texts if t.startswith("<div")]
    assert not [b for b in blocks if BLANK_LINE.search(b) or PLOTLY_TAG.search(b)], blocks
    bad = [t for t in texts if t not in blocks and IMAGE_LINK.search(t)]
    assert not bad, bad
    tagged = [t for c in at.get("plotly_chart") for t in _strings(json.loads(c.proto.spec)) if PLOTLY_TAG.search(t)]
    assert not tagged, tagged


def _strings(value) -> list[str]:
    """Every string in a plotly figure's JSON (where `<` is written \\u003c)."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _finished(name: str, test_acc: float = 0.97, **config) -> Path:
    """A completed run written by hand: two epochs of metrics and a summary."""
    path = store.create_run(TrainConfig(**{"epochs": 2, "val_size": 100, "lr": 0.01, **config}), name)
    writer = metrics_log.MetricsWriter(path)
    for e in (1, 2):
        writer.log({"kind": "step", "step": 4 * e, "epoch": e, "loss": 1 / e, "acc": 0.5, "lr": 0.01, "time": 1.0})
        writer.log({"kind": "epoch", "step": 4 * e, "epoch": e, "train_loss": 1 / e, "train_acc": 0.8,
                    "val_loss": 1.2 / e, "val_acc": 0.8, "lr": 0.01, "images_per_sec": 500.0, "time": 2.0 * e})
    writer.close()
    store.update_run(path, status="completed", summary={"test_acc": test_acc, "best_epoch": 2, "chance_acc": 0.11,
                                                       "stop_reason": HOSTILE},
                    progress={"epoch": 2, "epochs": 2, "step": 8, "total_steps": 8, "elapsed": 4.0, "lr": 0.01})
    return path


def test_train_live_panel_shows_hostile_names_inert():
    """Train's live panel: the watched run's heading, the runs in progress, its early-stop reason."""
    live = store.create_run(TrainConfig(epochs=1, val_size=100), HOSTILE)
    store.update_run(live, status="running", pid=os.getpid(), heartbeat=time.time())   # alive: this process
    done = _finished(HOSTILE)
    at = AppTest.from_file(str(ROOT / "ui" / "train" / "page.py"), default_timeout=TIMEOUT)
    at.query_params["run"] = done.name
    assert_inert(at.run())


def test_live_panel_html_keeps_values_from_run_json_on_one_line():
    """The live panel's HTML block (progress and numbers): a value with blank lines in it (an imported run's
    progress) would end the block and let Markdown read the rest; it is kept on one line, escaped."""
    done = _finished("plain", schedule="cosine")
    store.update_run(done, progress={"epoch": f"2\n\n{HOSTILE}\n\n", "epochs": 2, "step": 8, "total_steps": 8,
                                    "elapsed": 4.0, "lr": 0.0})
    at = AppTest.from_file(str(ROOT / "ui" / "train" / "page.py"), default_timeout=TIMEOUT)
    at.query_params["run"] = done.name
    assert_inert(at.run())


def test_compare_shows_hostile_names_inert(runs_dir):
    """Compare: the chance warning, the diff table, the curves' legend, the rename and delete messages."""
    a, b = _finished(HOSTILE, test_acc=0.1), _finished("plain", lr=0.1)
    at = AppTest.from_file(str(ROOT / "ui" / "compare" / "page.py"), default_timeout=TIMEOUT).run()
    at.multiselect(key="compare.pick").set_value([a.name, b.name]).run()
    assert_inert(at)
    at.selectbox(key="compare.action_run").set_value(b.name).run()
    at.text_input(key=f"compare.name.{b.name}").set_value(HOSTILE).run()
    at.button(key=f"compare.rename.{b.name}").click().run()
    assert store.read_run(b).name == HOSTILE and at.success
    assert_inert(at)
    at.button(key="compare.delete").click().run()
    assert_inert(at)                                   # "Delete '…' and every file in its folder?"
    at.button(key=f"compare.delete_yes.{b.name}").click().run()
    assert not b.exists() and at.success
    assert_inert(at)


def test_inspect_run_without_weights_shows_its_name_inert(runs_dir):
    """Inspect: a failed run with no weights; its error and its name (the no-weights warning) stay text."""
    path = store.create_run(TrainConfig(epochs=1, val_size=100), HOSTILE)
    store.update_run(path, status="failed", error=f"class {HOSTILE} is missing")
    at = AppTest.from_file(str(ROOT / "ui" / "inspector" / "page.py"), default_timeout=TIMEOUT)
    at.query_params["run"] = path.name
    at.run()
    assert "no saved weights" in " ".join(w.value for w in at.warning)
    assert_inert(at)


def test_a_hostile_run_in_the_url_stays_text(runs_dir):
    """A link to the dashboard naming an unknown run (?run=![x](http://...)) is quoted as text, not fetched."""
    store.create_run(TrainConfig(epochs=1, val_size=100), "plain")
    at = AppTest.from_file(str(ROOT / "ui" / "inspector" / "page.py"), default_timeout=TIMEOUT)
    at.query_params["run"] = HOSTILE
    at.run()
    assert "There is no run" in " ".join(w.value for w in at.warning)
    assert_inert(at)


def test_home_links_to_hostile_runs_inert(runs_dir):
    """Home's links to the runs in progress and the latest finished run carry the names as text."""
    live = store.create_run(TrainConfig(epochs=1, val_size=100), HOSTILE)
    store.update_run(live, status="running", pid=os.getpid(), heartbeat=time.time())
    _finished(HOSTILE)
    assert_inert(AppTest.from_file(str(ROOT / "ui" / "home" / "page.py"), default_timeout=TIMEOUT).run())


def test_inspect_tabs_show_hostile_class_names_inert(template_run, runs_dir, monkeypatch):
    """Inspect with a test set whose classes are hostile (a dataset added from a zip names them): every tab
    (Confusion's sentence and table, the galleries' captions, Saliency, the charts) shows them as text."""
    from cnn_core.analysis import inspection
    from ui.inspector import widgets as inspect_widgets

    load = inspection.load_test_set
    monkeypatch.setattr(inspection, "load_test_set", lambda d: replace(
        load(d), classes=tuple(f"{HOSTILE} {i}" for i in range(10))))
    inspect_widgets.test_set.clear()
    path = runs_dir / template_run.name
    shutil.copytree(template_run, path)
    store.rename_run(path, HOSTILE)
    try:
        at = AppTest.from_file(str(ROOT / "ui" / "inspector" / "page.py"), default_timeout=TIMEOUT)
        at.query_params["run"] = path.name
        at.run()
        assert at.table and not at.error
        assert_inert(at)
    finally:
        inspect_widgets.test_set.clear()


def test_draw_shows_hostile_class_names_inert(runs_dir):
    """Draw: a run whose best.pt names hostile classes; the prediction, every run's answer, the charts."""
    from test_draw_page import CANVAS, canvas_state, drawn_one, fake_run

    path = fake_run(runs_dir)
    record = store.read_run(path)
    _rewrite_classes(path, [f"{HOSTILE} {i}" for i in range(len(record.classes))])
    store.rename_run(path, HOSTILE)
    fake_run(runs_dir, seed=1)                       # a second run: "Every run's answer" is offered
    at = AppTest.from_file(str(ROOT / "ui" / "draw" / "page.py"), default_timeout=TIMEOUT)
    at.session_state[CANVAS] = canvas_state(drawn_one())
    at.run()
    at.selectbox(key="draw.run").set_value(str(path)).run()
    at.toggle(key="draw.all").set_value(True).run()
    assert at.metric
    assert_inert(at)


def _rewrite_classes(path: Path, classes: list[str]) -> None:
    import torch

    from cnn_core.runs import checkpoints
    ckpt = torch.load(path / store.BEST, weights_only=True)
    ckpt["classes"] = classes
    checkpoints.save_atomic(ckpt, path / store.BEST)


