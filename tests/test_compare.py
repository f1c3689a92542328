"""Compare: the runs table against the run files, curves, the config diff, hyper-parameter axes,
delete (also of a live run), and the page itself under AppTest."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from pagekit import page_file, shown

from cnn_core.analysis import compare
from cnn_core.config import TrainConfig
from cnn_core.core import files
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, metrics_log, store
from cnn_core.train import engine, jobs
from ui import views
from ui.figures import curves

ROOT = Path(__file__).resolve().parent.parent
BASE = dict(dataset="mnist", val_size=100, epochs=2, batch_size=32, lr=0.05, log_every=5)
VARIANT = dict(BASE, lr=0.02, arch_params={"conv1_channels": 6})


_TRAINED: dict[str, Path] = {}   # shared with test_transfer.py, which imports the fixture: trained once


@pytest.fixture(scope="module")
def trained(small_data_dir, tmp_path_factory) -> Path:
    """A folder holding two runs trained by the real engine that differ in lr and conv1_channels."""
    if "folder" in _TRAINED:
        return _TRAINED["folder"]
    folder = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNN_DATA_DIR", str(small_data_dir))
        mp.setenv("CNN_OFFLINE", "1")
        for i, cfg in enumerate((BASE, VARIANT)):
            path = store.create_run(TrainConfig(**cfg), name=f"run {'ab'[i]}", runs_dir=folder)
            assert engine.run_training(path).status == "completed"
    _TRAINED["folder"] = folder
    return folder


@pytest.fixture
def two_runs(trained, runs_dir) -> list[store.Run]:
    """The two trained runs copied into this test's runs folder, oldest first."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    for run in trained.iterdir():
        shutil.copytree(run, runs_dir / run.name)
    return sorted(store.list_runs(runs_dir), key=lambda r: r.name)


def _record(run_id: str, arch="lenet", params=None, dataset="mnist", lr=0.05, test_acc=0.9, **summary) -> store.Run:
    """A run.json as create_run and the engine write it, without training."""
    shape, classes = ([1, 28, 28], list("0123456789")) if dataset != "cifar2" else ([3, 32, 32], ["a", "b"])
    from cnn_core.nets.architectures import count_params, resolve_params
    config = TrainConfig(dataset=dataset, arch=arch, arch_params=params or {}, lr=lr).to_dict()
    return store.Run.from_dict({"format": store.FORMAT, "id": run_id, "name": run_id, "note": "", "created": "2025-01-01T00:00:00+00:00",
            "host": "elsewhere", "config": config, "dataset": dataset, "arch": arch,
            "arch_params": resolve_params(arch, params), "classes": classes, "input_shape": shape,
            "n_params": count_params(arch, shape, len(classes), params),
            "status": "completed", "error": None, "pid": None, "heartbeat": None, "progress": {},
            "summary": {"test_acc": test_acc, "best_val_acc": test_acc, "last_val_acc": test_acc,
                        "epochs_done": 5, "wall_time": 10.0, "images_per_sec": 100.0, **summary}})


def _write(runs_dir: Path, record: store.Run) -> Path:
    path = runs_dir / record.id
    path.mkdir(parents=True)
    files.write_json_atomic(path / store.RUN_JSON, record.to_dict())
    return path



# ---- the table ----------------------------------------------------------------------------------
def test_table_numbers_equal_the_run_files(two_runs, runs_dir):
    """Every number in the table is the one run.json holds; parameters are best.pt's tensor count."""
    table = compare.runs_table(store.list_runs(runs_dir)).set_index("id")
    for r in two_runs:
        row, s = table.loc[r.id], r.summary
        assert (row["name"], row["dataset"], row["arch"], row["status"]) == (r.name, "mnist", "lenet", "completed")
        assert (row["lr"], row["batch_size"], row["epochs"]) == (r.config["lr"], 32, s["epochs_done"])
        for column, key in (("test_acc", "test_acc"), ("best_val_acc", "best_val_acc"),
                            ("final_val_acc", "last_val_acc"), ("wall_time", "wall_time"),
                            ("images_per_sec", "images_per_sec")):
            assert row[column] == s[key], column
        model = checkpoints.model_from_checkpoint(checkpoints.load_checkpoint(Path(r.path) / store.BEST))
        assert row["params"] == sum(p.numel() for p in model.parameters())
    assert table.loc[two_runs[1].id, "arch_params"].startswith("conv1_channels=6,")


def test_parameter_counts_come_from_run_json(runs_dir):
    """The table's parameters are what create_run recorded (a queued run has them before it trains); a
    run.json without n_params (an old run) shows none rather than a number guessed."""
    path = store.create_run(TrainConfig(arch="simple-cnn", arch_params={"width": 8}))
    _write(runs_dir, dataclasses.replace(_record("old"), n_params=None))
    table = compare.runs_table(store.list_runs(runs_dir)).set_index("id")
    expected = sum(p.numel() for p in build_model("simple-cnn", (1, 28, 28), 10, {"width": 8}).parameters())
    assert table.loc[path.name, "params"] == expected == store.read_run(path).n_params
    assert pd.isna(table.loc["old", "params"])


def test_table_of_200_runs_is_fast(runs_dir):
    """200 generated runs (7 architectures, varied widths) are tabled well under a second once counted."""
    archs = [("lenet", {"fc_width": 50}), ("mlp", {}), ("simple-cnn", {"width": 16}), ("deep-cnn", {}),
             ("cifar-net", {}), ("res-net-small", {}), ("res-net-deep", {"n_blocks": 2})]
    for i in range(200):
        arch, params = archs[i % 7]
        params = {k: v + i % 3 for k, v in params.items()}
        _write(runs_dir, _record(f"run-{i:03d}", arch=arch, params=params))
    compare.runs_table(store.list_runs(runs_dir))
    t0 = time.perf_counter()
    table = compare.runs_table(store.list_runs(runs_dir))
    assert time.perf_counter() - t0 < 1.0
    assert len(table) == 200 and table["params"].notna().all()


def test_filter_and_unknown_values(runs_dir):
    """Filters keep the chosen datasets/architectures/statuses; a corrupt run shows with NaN numbers."""
    _write(runs_dir, _record("a", arch="mlp"))
    _write(runs_dir, _record("b", arch="lenet", dataset="cifar2"))
    bad = runs_dir / "c"
    bad.mkdir()
    (bad / store.RUN_JSON).write_text("{ torn")
    table = compare.runs_table(store.list_runs(runs_dir))
    assert list(compare.filter_table(table, archs=["mlp"])["id"]) == ["a"]
    assert list(compare.filter_table(table, datasets=["cifar2"], statuses=["completed"])["id"]) == ["b"]
    corrupt = table.set_index("id").loc["c"]
    assert corrupt["status"] == "corrupt" and math.isnan(corrupt["test_acc"])


def test_labels_stay_unique_when_names_repeat():
    """Two runs with the same name get the end of their id in the legend."""
    labels = compare.unique_labels([store.Run(id=i, status="completed", config={}, name=n)
                                    for i, n in (("x-aaaa", "n"), ("x-bbbb", "n"), ("y", "other"))])
    assert labels == {"x-aaaa": "n · aaaa", "x-bbbb": "n · bbbb", "y": "other"}


# ---- curves and diff ----------------------------------------------------------------------------
def test_curves_hold_every_logged_point(two_runs):
    """Per epoch: train and val loss/acc of each epoch; per step: each logged step, epoch = step/steps."""
    curves = compare.curves_frame(two_runs)
    for r in two_runs:
        metrics = metrics_log.read_metrics(Path(r.path))
        mine = curves[curves["run_id"] == r.id]
        epochs = [m for m in metrics if m["kind"] == "epoch"]
        steps = [m for m in metrics if m["kind"] == "step"]
        assert len(mine[mine["granularity"] == "epoch"]) == 4 * len(epochs) == 8
        val = mine[(mine["split"] == "val") & (mine["metric"] == "acc")]
        assert list(val["value"]) == [m["val_acc"] for m in epochs]
        step_loss = mine[(mine["granularity"] == "step") & (mine["metric"] == "loss")]
        per = r.progress["steps_per_epoch"]
        assert list(step_loss["value"]) == [m["loss"] for m in steps]
        assert list(step_loss["epoch"]) == [m["step"] / per for m in steps]


def test_diff_lists_exactly_the_differing_fields(two_runs):
    """The diff shows lr and arch_params.conv1_channels and nothing else, then the outcomes."""
    assert compare.diff_fields(two_runs) == ["lr", "arch_params.conv1_channels"]
    diff = views.diff_table(two_runs)
    assert list(diff.index) == ["lr", "arch_params.conv1_channels", "→ test accuracy", "→ best val accuracy"]
    assert list(diff.loc["arch_params.conv1_channels"]) == ["10", "6"]
    assert list(diff.loc["lr"]) == ["0.05", "0.02"]
    assert compare.diff_fields([two_runs[0], two_runs[0]]) == []


def test_diff_across_architectures_marks_missing_params():
    """Runs of two architectures differ in arch and in each one's own params, shown '—' where absent."""
    a, b = _record("a", arch="simple-cnn"), _record("b", arch="mlp", lr=0.1)
    assert compare.diff_fields([a, b]) == ["arch", "lr", "arch_params.width", "arch_params.hidden1",
                                           "arch_params.hidden2"]
    diff = views.diff_table([a, b], outcomes=False)
    assert list(diff.loc["arch_params.width"]) == ["16", views.MISSING]


def test_hyperparameter_axes():
    """Only fields that vary among a dataset's finished runs become axes; lr is on a log10 axis."""
    records = [_record("a", lr=0.1, test_acc=0.9), _record("b", lr=0.01, test_acc=0.8),
               _record("c", lr=0.001, test_acc=0.7, arch="mlp"), _record("d", dataset="cifar2", lr=1.0),
               _record("e", test_acc=None)]
    frame = compare.hyperparam_frame(records, "mnist")
    assert list(frame["run"]) == ["a", "b", "c"]
    assert list(frame.columns) == ["run", "arch", "lr", "arch_params.conv1_channels", "arch_params.conv2_channels",
                                   "arch_params.fc_width", "arch_params.dropout", "arch_params.hidden1",
                                   "arch_params.hidden2", "test_acc"]
    dims = {d["label"]: d for d in curves.parcoords_dimensions(frame)}
    assert dims["lr (log)"]["values"] == pytest.approx([-1, -2, -3])
    assert dims["lr (log)"]["ticktext"] == ["0.001", "0.01", "0.1"]
    assert dims["test_acc"]["range"] == pytest.approx([0.67, 0.93])
    assert dims["arch"]["ticktext"] == ["lenet", "mlp"] and dims["arch"]["values"] == [0, 0, 1]
    assert dims["test_acc"]["values"] == [0.9, 0.8, 0.7]


# ---- delete -------------------------------------------------------------------------------------
def test_delete_removes_only_that_run(two_runs, runs_dir):
    """Deleting one run removes its folder; the other run keeps every file."""
    keep = Path(two_runs[1].path)
    before = sorted(p.relative_to(keep) for p in keep.rglob("*"))
    assert jobs.delete_run(Path(two_runs[0].path), runs_dir) == "completed"
    assert [r.id for r in store.list_runs(runs_dir)] == [keep.name]
    assert sorted(p.relative_to(keep) for p in keep.rglob("*")) == before
    with pytest.raises(ValueError):
        jobs.delete_run(runs_dir / "..", runs_dir)


def test_deleting_a_running_run_cancels_it_first(runs_dir):
    """A launched run is cancelled and waited for, then its folder goes once its process has ended (it
    writes `cancelled` before it lets go of the folder: deleting at that moment once found a file gone
    from under it)."""
    path = store.create_run(TrainConfig(**dict(BASE, epochs=50, batch_size=8)))
    pid = jobs.launch(path)
    jobs.wait(path, timeout=90, until=("running",))
    assert jobs.delete_run(path, runs_dir, timeout=60) == "running"
    assert not path.exists() and not files.pid_alive(pid)


def test_a_file_removed_while_the_folder_is_deleted_does_not_stop_the_delete(runs_dir, monkeypatch):
    """rmtree meeting a file that its process removed meanwhile goes over what is left. (The real race, a
    process removing its disk reserve between rmtree's listing and its unlink, cannot be timed from a
    test: the first pass meets it by hand here.)"""
    path = store.create_run(TrainConfig(**BASE))
    (path / store.RESERVE).write_bytes(b"0")
    real, calls = shutil.rmtree, []

    def racing(target, *args, **kwargs):
        calls.append(target)
        if len(calls) == 1:
            (path / store.RESERVE).unlink()
            raise FileNotFoundError(2, "No such file or directory", store.RESERVE)
        return real(target, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", racing)
    store.delete_run(path, runs_dir)
    assert not path.exists() and len(calls) == 2


# ---- the page -----------------------------------------------------------------------------------
def test_page_overlays_diffs_and_renames(two_runs, runs_dir):
    """AppTest: pick both runs, two curve charts with a train and a val trace per run, the diff, rename."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page_file("compare"), default_timeout=60).run()
    assert not at.exception
    ids = [r.id for r in two_runs]
    at.multiselect(key="compare.pick").set_value(ids).run()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert [len(c["data"]) for c in charts[:2]] == [4, 4]
    assert {t["name"] for t in charts[0]["data"]} == {f"run {x} · {s}" for x in "ab" for s in ("train", "val")}
    diff = at.table[0].value
    assert [shown(f) for f in diff.index[:2]] == ["lr", "arch_params.conv1_channels"]   # escaped for st.table
    at.selectbox(key="compare.action_run").set_value(ids[1]).run()
    at.text_input(key=f"compare.name.{ids[1]}").set_value("wider is not better").run()
    at.button(key=f"compare.rename.{ids[1]}").click().run()
    assert store.read_run(Path(two_runs[1].path)).name == "wider is not better"
    assert [s.value for s in at.success] == ["Renamed to 'wider is not better'."]


def test_page_imports_a_folder_and_refuses_a_bad_one(two_runs, runs_dir, tmp_path, monkeypatch):
    """AppTest: importing a run folder by path lists it; a folder without run.json is refused."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNN_IMPORT_ROOTS", str(tmp_path))      # the browser reads only under the import folders

    src = Path(two_runs[0].path)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(src, elsewhere)
    (tmp_path / "empty").mkdir()
    at = AppTest.from_file(page_file("compare"), default_timeout=60).run()
    at.text_input(key="compare.import_path.0").set_value(str(tmp_path / "empty")).run()
    at.button(key="compare.import").click().run()
    assert "not a run folder" in at.error[0].value and len(store.list_runs(runs_dir)) == 2
    at.text_input(key="compare.import_path.0").set_value(str(elsewhere)).run()
    at.button(key="compare.import").click().run()      # a copy of a run that is here: asked, not added
    assert not at.exception and f"Run {src.name} ('{two_runs[0].name}') is already in the runs folder" \
        in shown(at.warning[0].value) and len(store.list_runs(runs_dir)) == 2
    at.button(key="compare.import_copy").click().run()
    assert not at.exception and at.success[0].value.startswith(f"Imported as run `{src.name}-imported-")
    assert len(store.list_runs(runs_dir)) == 3 and at.text_input(key="compare.import_path.1").value == ""
    assert f"{two_runs[0].name} (copy)" in {r.name for r in store.list_runs(runs_dir)}


def test_page_skips_a_run_already_there(two_runs, runs_dir, tmp_path, monkeypatch):
    """AppTest: Skip on the 'already here' question imports nothing and says so."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNN_IMPORT_ROOTS", str(tmp_path))      # the browser reads only under the import folders

    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(two_runs[1].path, elsewhere)
    at = AppTest.from_file(page_file("compare"), default_timeout=60).run()
    at.text_input(key="compare.import_path.0").set_value(str(elsewhere)).run()
    at.button(key="compare.import").click().run()
    at.button(key="compare.import_skip").click().run()
    assert not at.exception and "Not imported: the run is already here." in [i.value for i in at.info]
    assert len(store.list_runs(runs_dir)) == 2 and not at.warning


# ---- what a learner reads first (issue 13) --------------------------------------------------------
def test_page_table_pins_the_name_and_shows_test_accuracy_early(two_runs):
    """The runs table's name column is pinned (visible while scrolling sideways) and test accuracy comes
    right after the name and status, among the columns a 1440 px screen shows."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(page_file("compare"), default_timeout=60).run()
    table = at.dataframe[0]
    assert json.loads(table.proto.columns)["name"]["pinned"] is True
    assert list(table.proto.column_order)[:3] == ["name", "status", "test_acc"]


def test_diff_between_datasets_shows_no_delta():
    """MNIST against Fashion-MNIST: both accuracies, no '+12.17 pts' between different tasks."""
    a, b = _record("a", test_acc=0.98), _record("b", dataset="fashion-mnist", test_acc=0.8583)
    b.config["dataset"] = "fashion-mnist"
    diff = views.diff_table([a, b])
    assert list(diff.loc["→ test accuracy"]) == ["98.00%", "85.83% (another dataset: no delta)"]
    assert "pts" not in " ".join(diff.loc["→ best val accuracy"]) and compare.datasets_of([a, b]) == \
        ["mnist", "fashion-mnist"]
    same = views.diff_table([a, _record("c", test_acc=0.97, lr=0.1)])
    assert list(same.loc["→ test accuracy"]) == ["98.00%", "97.00% (-1.00 pts)"]


def test_page_warns_of_runs_at_chance_and_of_different_datasets(runs_dir):
    """A completed run at chance accuracy is named in a warning; two runs on different datasets are said
    to be so where their differences are listed."""
    from streamlit.testing.v1 import AppTest

    _write(runs_dir, _record("dead", test_acc=0.1015, chance_acc=0.1127))
    other = _record("fashion", dataset="fashion-mnist", test_acc=0.86)
    other.config["dataset"] = "fashion-mnist"
    _write(runs_dir, other)
    at = AppTest.from_file(page_file("compare"), default_timeout=60).run()
    warning = " ".join(w.value for w in at.warning)
    assert "1 run(s) finished at chance level" in warning and "**dead** (10.15%)" in warning
    at.multiselect(key="compare.pick").set_value(["dead", "fashion"]).run()
    assert any("different datasets (mnist, fashion-mnist)" in shown(i.value) for i in at.info)
