"""Transfer: a run as a zip and back, hostile and corrupt imports refused, ONNX / TorchScript exports
that predict what the PyTorch model predicts."""
from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from test_compare import trained  # noqa: F401  (fixture: two runs trained by the real engine)

from cnn_core import recipe
from cnn_core.analysis.predict import load_model
from cnn_core.data import catalog, guards
from cnn_core.export import formats
from cnn_core.runs import archive, store


@pytest.fixture
def run(trained, runs_dir) -> Path:  # noqa: F811
    """One trained run copied into this test's runs folder."""
    import shutil

    runs_dir.mkdir(parents=True, exist_ok=True)
    src = sorted(trained.iterdir())[0]
    shutil.copytree(src, runs_dir / src.name)
    return runs_dir / src.name


def _zip(entries: dict[str, bytes], links: dict[str, str] = ()) -> bytes:
    """A zip of name -> content, plus symbolic-link entries name -> target."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
        for name, target in dict(links).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def _run_json(run_id="r1", **fields) -> bytes:
    return json.dumps({"id": run_id, "name": "x", "config": {"dataset": "mnist"}, "status": "completed",
                       **fields}).encode()


def _nothing_landed(runs_dir: Path) -> bool:
    return not runs_dir.exists() or not [p for p in runs_dir.iterdir() if p.name != ".cache"]


# ---- zip and import -----------------------------------------------------------------------------
def test_zip_round_trip_keeps_every_file(run, tmp_path):
    """A zipped run imported elsewhere has the same files, bytes and id; locks and cancel files stay behind."""
    (run / store.CANCEL).touch()
    raw = archive.zip_run(run)
    names = zipfile.ZipFile(io.BytesIO(raw)).namelist()
    assert all(n.startswith(run.name + "/") for n in names) and f"{run.name}/best.pt" in names
    assert not any("/." in n or n.endswith(store.CANCEL) for n in names)
    other = tmp_path / "elsewhere"
    new = archive.import_run(raw, other)
    assert new.name == run.name and not (new / store.CANCEL).exists()
    for file in ("best.pt", "checkpoint.pt", "metrics.jsonl", "snapshots/epoch-001.pt"):
        assert (new / file).read_bytes() == (run / file).read_bytes()
    record = store.read_run(new)
    assert record.summary == store.read_run(run).summary and record.imported["from_id"] == run.name


def test_importing_a_run_already_there_asks_then_copies_or_skips(run, runs_dir):
    """The same run imported again (its zip, or a copy of the copy) is not added silently: RunExists names
    the run there; "copy" adds it under a new valid id, named (copy); "skip" adds nothing."""
    before = (run / store.RUN_JSON).read_bytes()
    raw = archive.zip_run(run)
    with pytest.raises(archive.RunExists, match=f"run {run.name} .* is already in the runs folder") as err:
        archive.import_run(raw, runs_dir)
    assert err.value.existing == run and len(store.list_runs(runs_dir)) == 1
    assert archive.import_run(raw, runs_dir, on_duplicate="skip") == run and len(store.list_runs(runs_dir)) == 1
    new = archive.import_run(raw, runs_dir, on_duplicate="copy")
    assert new != run and new.name.startswith(run.name) and store.validate_run_id(new.name)
    record = store.read_run(new)
    assert record.id == new.name and record.name == f"{store.read_run(run).name} (copy)"
    assert (run / store.RUN_JSON).read_bytes() == before and len(store.list_runs(runs_dir)) == 2
    with pytest.raises(archive.RunExists):          # the copy's zip names the run it came from
        archive.import_run(archive.zip_run(new), runs_dir)


def test_another_run_with_a_taken_id_gets_a_new_id(run, runs_dir):
    """A different run (made at another moment) that happens to carry an id in use imports under a new id."""
    raw = _zip({f"{run.name}/run.json": _run_json(run.name)})
    new = archive.import_run(raw, runs_dir)
    assert new != run and new.name.startswith(run.name) and store.read_run(new).id == new.name


@pytest.mark.parametrize("status", ["running", "queued", "weird"])
def test_imported_runs_are_never_running(status, runs_dir):
    """A run zipped while training arrives interrupted (resumable), with no pid."""
    raw = _zip({"r1/run.json": _run_json(status=status, pid=1234)})
    record = store.read_run(archive.import_run(raw, runs_dir))
    assert record.status == "interrupted" and record.pid is None


@pytest.mark.parametrize("name, arrives", [
    ("line one\nline two\r\x00" + "z" * 10_000, ("line oneline two" + "z" * 10_000)[:store.MAX_NAME]),
    ("  tidy name \t", "tidy name"),
    ("\n\x00\r ", ""),
], ids=["control characters and 10,000 characters", "spaces and a tab", "nothing printable"])
def test_an_imported_runs_name_is_cleaned_as_a_rename_would(name, arrives, runs_dir):
    """Control characters go, the name is cut to runs.MAX_NAME; a name left empty shows the run's id."""
    record = store.read_run(archive.import_run(_zip({"r1/run.json": _run_json(name=name)}), runs_dir))
    assert record.name == arrives and record.title == (arrives or "r1")


def test_folder_import_and_zip_with_run_json_at_top(run, runs_dir, tmp_path):
    """A plain run folder and a zip without a top folder both import."""
    new = archive.import_run(run, tmp_path / "a")
    assert store.read_run(new).id == run.name
    flat = archive.import_run(_zip({"run.json": _run_json("flat"), "metrics.jsonl": b""}), runs_dir)
    assert flat.name == "flat"


HOSTILE = {
    "parent": ({"r1/run.json": _run_json(), "r1/../../evil.txt": b"x"}, {}, "'..'"),
    "absolute": ({"r1/run.json": _run_json(), "/tmp/evil.txt": b"x"}, {}, "absolute"),
    "symlink": ({"r1/run.json": _run_json()}, {"r1/best.pt": "/etc/passwd"}, "symbolic link"),
    "backslash": ({"r1/run.json": _run_json(), "r1\\..\\evil": b"x"}, {}, "backslash"),
    "outside": ({"r1/run.json": _run_json(), "other/evil.txt": b"x"}, {}, "outside its run folder"),
    "two runs": ({"r1/run.json": _run_json(), "r2/run.json": _run_json("r2")}, {}, "2 runs"),
    "no run": ({"r1/notes.txt": b"x"}, {}, "no run"),
    "corrupt run.json": ({"r1/run.json": b"{ not json"}, {}, "not valid JSON"),
    "not a run": ({"r1/run.json": b'{"id": "r1"}'}, {}, "not a run record"),
    "bad checkpoint": ({"r1/run.json": _run_json(), "r1/best.pt": b"garbage"}, {}, "checkpoint <run>/best.pt"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_or_corrupt_zip_is_refused(case, runs_dir, tmp_path):
    """Each hostile or corrupt zip is refused with a message naming the problem; nothing lands."""
    entries, links, message = HOSTILE[case]
    with pytest.raises(archive.ImportRefused, match=message):
        archive.import_run(_zip(entries, links), runs_dir)
    assert _nothing_landed(runs_dir) and not (tmp_path / "evil.txt").exists()


def test_code_running_checkpoint_is_refused(runs_dir, tmp_path):
    """A best.pt that pickles code is refused at import and its code never runs."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    buffer = io.BytesIO()
    torch.save({"model": {}, "x": Evil()}, buffer)
    with pytest.raises(archive.ImportRefused, match="other than tensors"):
        archive.import_run(_zip({"r1/run.json": _run_json(), "r1/best.pt": buffer.getvalue()}), runs_dir)
    assert not marker.exists() and _nothing_landed(runs_dir)


def test_size_and_count_limits(runs_dir, monkeypatch):
    """A zip that unpacks past the size limit or holds too many files is refused."""
    monkeypatch.setattr(archive, "MAX_IMPORT_BYTES", 1000)
    with pytest.raises(archive.ImportRefused, match="limit"):
        archive.import_run(_zip({"r1/run.json": _run_json(), "r1/big": b"0" * 5000}), runs_dir)
    monkeypatch.setattr(archive, "MAX_IMPORT_FILES", 3)
    with pytest.raises(archive.ImportRefused, match="at most 3"):
        archive.import_run(_zip({"r1/run.json": _run_json(), **{f"r1/{i}": b"" for i in range(4)}}), runs_dir)
    with pytest.raises(archive.ImportRefused, match="not a zip"):
        archive.import_run(b"PK\x03\x04 truncated", runs_dir)
    assert _nothing_landed(runs_dir)


def test_folder_with_a_symlink_is_refused(run, runs_dir, tmp_path):
    """A run folder holding a symbolic link is refused."""
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / store.RUN_JSON).write_bytes(_run_json())
    os.symlink("/etc/passwd", folder / "best.pt")
    with pytest.raises(archive.ImportRefused, match="symbolic link"):
        archive.import_run(folder, runs_dir)


# ---- model export -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["onnx", "pt2", "torchscript"])
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_export_predicts_like_pytorch(kind, run):
    """The export, loaded back, gives the original's classes on real test images, logits within 1e-4."""
    result = formats.export_model(run, kind)
    assert result.ok and result.path.is_file() and result.path.parent == run / "exports"
    assert result.batch.endswith("test images of mnist") and result.max_abs_diff <= 1e-4
    assert result.message.startswith({"onnx": "ONNX", "pt2": "torch.export (.pt2)",
                                      "torchscript": "TorchScript (old format)"}[kind] + " export matches")
    model, meta = load_model(run)
    x = recipe.normalize(catalog.load_raw("mnist").test_x[64:96], meta["mean"], meta["std"])  # (32, 1, 28, 28)
    with torch.no_grad():
        expected = model(x)
    if kind == "onnx":
        import onnxruntime
        session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    elif kind == "pt2":     # plain torch in a process of its own: no cnn_core, no model class
        torch.save(x, x_file := result.path.with_name("x.pt"))
        code = ("import sys, torch; m = torch.export.load(sys.argv[1]).module(); "
                "torch.save(m(torch.load(sys.argv[2])), sys.argv[3]); assert 'cnn_core' not in sys.modules")
        subprocess.run([sys.executable, "-c", code, str(result.path), str(x_file), str(x_file) + ".out"],
                       cwd=result.path.parent, check=True, timeout=120)
        got = torch.load(str(x_file) + ".out")
        x_file.unlink()
    else:
        got = torch.jit.load(str(result.path))(x)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert (got - expected).abs().max() <= 1e-4
    assert "exports/" not in " ".join(zipfile.ZipFile(io.BytesIO(archive.zip_run(run))).namelist())


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_an_import_past_the_runs_folder_limit_is_refused_with_the_numbers(kind, runs_dir, tmp_path, monkeypatch):
    """An import that would bring the runs folder past CNN_MAX_RUNS_DISK is refused with the numbers; nothing lands."""
    (runs_dir / "old").mkdir(parents=True)
    (runs_dir / "old" / "big.bin").write_bytes(bytes(5000))
    monkeypatch.setenv("CNN_MAX_RUNS_DISK", "6000")
    entries = {"r1/run.json": _run_json(), "r1/data.bin": bytes(2000)}
    source = _zip(entries)
    if kind == "folder":
        for name, content in entries.items():
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_bytes(content)
        source = tmp_path / "r1"
    size = 2000 + len(_run_json())
    with pytest.raises(archive.ImportRefused) as exc:
        archive.import_run(source, runs_dir)
    assert str(exc.value) == (f"Importing this run ({guards.fmt_bytes(size)}) would bring the runs folder to "
                              f"{guards.fmt_bytes(5000 + size)}; the limit is 6 kB (CNN_MAX_RUNS_DISK): delete runs "
                              "or raise the limit")
    assert sorted(p.name for p in runs_dir.iterdir()) == ["old"]


def test_a_run_folder_holding_a_pipe_is_refused_at_once(tmp_path, runs_dir):
    """A run folder with a FIFO named best.pt is refused in a fresh process within the timeout, never waited on."""
    folder = tmp_path / "piped"
    folder.mkdir()
    (folder / store.RUN_JSON).write_bytes(_run_json())
    os.mkfifo(folder / "best.pt")
    script = ("import sys\nfrom cnn_core.runs import archive\n"
              "try:\n    archive.import_run(sys.argv[1], sys.argv[2])\n"
              "except archive.ImportRefused as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", script, str(folder), str(runs_dir)], capture_output=True, text=True,
                         timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "refused: best.pt is not a regular file or folder", out.stderr
