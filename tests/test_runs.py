"""The run store: ids, atomic records, torn metrics, listing, rename and delete; checkpoint errors."""
from __future__ import annotations

import json

import pytest
import torch

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core import files
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, metrics_log, store


def _make(**kw):
    return store.create_run(TrainConfig(dataset="mnist", val_size=100, **kw))


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/etc", "x\x00y", "", ".hidden", "a" * 300, "a..b"])
def test_hostile_run_ids_are_refused(bad, runs_dir):
    """Run ids that could reach outside the runs folder raise ValueError before touching a path."""
    with pytest.raises(ValueError, match="invalid run id"):
        store.run_dir(bad, runs_dir)


def test_create_writes_a_queued_record(runs_dir):
    """create_run makes runs/<id>/run.json with status queued and the resolved architecture params."""
    path = _make(arch="cifar-net")
    record = store.read_run(path)
    assert path.parent == runs_dir.resolve() and record.id == path.name
    assert record.status == "queued" and record.arch_params["n_chans1"] == 16
    assert TrainConfig.from_dict(record.config) == TrainConfig(dataset="mnist", val_size=100, arch="cifar-net")


def test_bad_config_writes_nothing(runs_dir):
    """A config with a bad field raises ConfigError and leaves the runs folder untouched."""
    with pytest.raises(ConfigError, match="lr"):
        _make(lr=0)
    with pytest.raises(ValueError, match="at most 120 characters"):
        store.create_run(TrainConfig(dataset="mnist", arch="mlp"), name="x" * 300)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_torn_and_garbage_metrics_lines_are_skipped(runs_dir):
    """A half-written last line and garbage lines are skipped; whole lines are kept."""
    path = _make()
    (path / "metrics.jsonl").write_text('{"kind": "step", "step": 1, "loss": 2.0}\nnot json\n[1, 2]\n'
                                        '{"kind": "epoch", "step": 2, "val_acc": 0.5}\n{"kind": "st')
    assert [m["step"] for m in metrics_log.read_metrics(path)] == [1, 2]


def test_list_newest_first_and_corrupt_run_shown(runs_dir):
    """list_runs orders newest first and lists a run whose run.json is not JSON as corrupt."""
    a = _make(arch="mlp")
    b = _make(arch="lenet")
    store.update_run(a, created="2020-01-01T00:00:00+00:00")
    (b / "run.json").write_text("{ not json")
    listed = store.list_runs(runs_dir)
    assert [r.id for r in listed] == [b.name, a.name]
    assert listed[0].status == "corrupt" and "not valid JSON" in listed[0].error
    assert isinstance(listed[0], store.UnreadableRun) and listed[0].corrupt and listed[0].path == b
    assert isinstance(listed[1], store.Run) and not listed[1].corrupt and listed[1].arch == "mlp"
    assert store.readable(listed) == [listed[1]]


def test_an_old_run_json_opens_and_keeps_what_it_does_not_know(runs_dir):
    """A run.json of an early version (dataset and arch only in its config, nulls, a key this version does
    not know) reads as a typed record; an update writes every key back, the unknown one included."""
    folder = runs_dir / "old-run"
    folder.mkdir(parents=True)
    files.write_json_atomic(folder / store.RUN_JSON, {
        "id": "old-run", "status": "completed", "config": {"dataset": "mnist", "arch": "lenet", "lr": 0.1},
        "summary": None, "pid": None, "from_the_future": {"kept": True}})
    (record,) = store.list_runs(runs_dir)
    assert (record.dataset, record.arch, record.summary, record.title) == ("mnist", "lenet", {}, "old-run")
    assert record.effective_status == "completed" and record.test_acc is None and record.path == folder
    store.rename_run(folder, "renamed")
    stored = json.loads((folder / store.RUN_JSON).read_text())
    assert stored["name"] == "renamed" and stored["from_the_future"] == {"kept": True}
    assert stored["config"] == {"dataset": "mnist", "arch": "lenet", "lr": 0.1}


def test_rename_and_delete_only_that_run(runs_dir):
    """rename changes the display name; delete removes exactly one run folder."""
    a, b = _make(), _make(arch="mlp")
    store.rename_run(a, "  my first run ")
    assert store.read_run(a).name == "my first run"
    with pytest.raises(ValueError):
        store.rename_run(a, "x" * 300)
    store.delete_run(a, runs_dir)
    assert not a.exists() and b.exists()
    with pytest.raises(ValueError, match="not a run folder"):
        store.delete_run(runs_dir, runs_dir)


def test_dead_process_reads_as_interrupted(runs_dir):
    """A running record whose pid is gone is shown interrupted."""
    path = _make()
    record = store.update_run(path, status="running", pid=2**22 + 12345, heartbeat=0)
    assert store.effective_status(record) == "interrupted"


def test_corrupt_and_truncated_checkpoints_give_clear_errors(tmp_path):
    """Zero-byte, truncated and garbage checkpoints raise CheckpointError naming the file."""
    good = tmp_path / "good.pt"
    checkpoints.save_atomic({"model": build_model("mlp", (1, 28, 28), 10).state_dict()}, good)
    cases = {"empty.pt": b"", "garbage.pt": b"not a checkpoint at all", "cut.pt": good.read_bytes()[:500]}
    for name, raw in cases.items():
        (tmp_path / name).write_bytes(raw)
        with pytest.raises(checkpoints.CheckpointError, match=name) as err:
            checkpoints.load_checkpoint(tmp_path / name)
        assert "empty" in str(err.value) or "corrupt" in str(err.value)


def test_mismatched_checkpoint_names_the_misfit():
    """Weights of one architecture or class count refused by another with a readable message."""
    lenet10 = build_model("lenet", (1, 28, 28), 10)
    with pytest.raises(checkpoints.CheckpointError, match="another shape"):
        checkpoints.load_weights(build_model("lenet", (1, 28, 28), 2), lenet10.state_dict())
    with pytest.raises(checkpoints.CheckpointError, match="another architecture"):
        checkpoints.load_weights(build_model("mlp", (1, 28, 28), 10), lenet10.state_dict())


def test_code_running_checkpoint_is_refused_unrun(tmp_path):
    """A checkpoint that pickles a code-running object is refused and the code never runs."""
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(checkpoints.CheckpointError, match="refused"):
        checkpoints.load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_never_launched_run_reads_queued_then_interrupted(runs_dir):
    """A run created but never given a process is queued for a moment, then interrupted (resumable)."""
    record = store.read_run(_make())
    assert store.effective_status(record) == "queued"
    record.created = "2020-01-01T00:00:00+00:00"
    assert store.effective_status(record) == "interrupted"


def test_process_reaped_between_the_two_liveness_checks_is_dead(monkeypatch):
    """os.kill(pid, 0) saw a zombie, then its parent reaped it before /proc was read: dead, not alive."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    monkeypatch.setattr(store.os, "kill", lambda pid, sig: None)   # the zombie answered signal 0
    assert files.pid_alive(proc.pid) is False


def test_listing_skips_a_run_deleted_while_it_is_read(runs_dir, monkeypatch):
    """A folder whose run.json vanishes between the directory scan and the read is left out, not an error."""
    keep, gone = _make(), _make()
    real = store.read_run

    def read_then_vanish(path):
        if path.name == gone.name:
            import shutil
            shutil.rmtree(gone)
        return real(path)

    monkeypatch.setattr(store, "read_run", read_then_vanish)
    assert [r.id for r in store.list_runs()] == [keep.name]


def test_metrics_frames_keep_every_logged_key(runs_dir):
    """Before any line the frames have the columns readers count on; a key the engine starts logging
    (a new metric) arrives as a column with no change to the run store."""
    path = _make()
    steps, epochs = metrics_log.metrics_frames(path)
    assert steps.empty and list(steps.columns) == metrics_log.STEP_COLUMNS and "val_acc" in epochs.columns
    (path / store.METRICS).write_text('{"kind": "step", "step": 20, "loss": 2.1, "grad_norm": 3.5}\n'
                                     '{"kind": "epoch", "epoch": 1, "step": 50, "val_acc": 0.5, "val_f1": 0.4}\n')
    steps, epochs = metrics_log.metrics_frames(path)
    assert list(steps["grad_norm"]) == [3.5] and list(epochs["val_f1"]) == [0.4]
    assert list(epochs.columns[:len(metrics_log.EPOCH_COLUMNS)]) == metrics_log.EPOCH_COLUMNS
