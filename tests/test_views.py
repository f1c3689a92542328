"""ui.views: the dashboard's display logic, without Streamlit."""
from __future__ import annotations

import pytest

from cnn_core.config import TrainConfig
from cnn_core.runs import metrics_log, store
from ui import views


@pytest.mark.parametrize("seconds,text", [(None, "--:--"), (0, "0:00"), (42.4, "0:42"), (725, "12:05"),
                                          (3723, "1:02:03"), (float("nan"), "--:--")])
def test_fmt_duration(seconds, text):
    assert views.fmt_duration(seconds) == text


def test_form_round_trip_gives_back_the_config():
    """form_values then config_from_form rebuilds the same TrainConfig (ints stay ints, floats floats)."""
    config = TrainConfig(dataset="cifar2", arch="cifar-net", arch_params={"n_chans1": 8}, lr=1, val_size=50,
                         optimizer="adamw", schedule="step", step_size=3, gamma=0.5, epochs=7)
    values = views.form_values(config)
    assert isinstance(values["lr"], float) and isinstance(values["epochs"], int)
    assert views.config_from_form(values, config.arch_params).to_dict() == {**config.to_dict(), "lr": 1.0}


def test_clone_config_drops_fields_it_does_not_know():
    """A run written by another version still clones; the unknown fields are named."""
    record = store.Run(id="x", status="completed", config={**TrainConfig(lr=0.05).to_dict(), "warmup": 3})
    config, dropped = views.clone_config(record)
    assert config.lr == 0.05 and dropped == ["warmup"]


def test_pick_run_prefers_the_url_then_running_then_next_queued():
    all_runs = [store.Run(id=i, status=s, config={})       # no process, no time: statuses read as written
                for i, s in (("d", "queued"), ("c", "queued"), ("b", "running"), ("a", "completed"))]
    ids = [r.id for r in all_runs]
    assert views.pick_run(ids, "a", all_runs) == "a"
    assert views.pick_run(ids, "gone", all_runs) == "b"
    assert views.pick_run(ids, None, all_runs[:2] + all_runs[3:]) == "c"   # the oldest waiting goes next
    assert views.pick_run(["a"], None, all_runs[3:]) == "a"
    assert views.pick_run([], None, []) is None
    assert views.queue_position("c", all_runs) == 2


def test_live_run_reads_progress_metrics_and_best_epoch(runs_dir):
    """live_run turns run.json and metrics.jsonl into what the panel draws."""
    path = store.create_run(TrainConfig(epochs=2, val_size=100), "live")
    writer = metrics_log.MetricsWriter(path)
    writer.log({"kind": "step", "step": 5, "epoch": 1, "loss": 2.0, "acc": 0.1, "lr": 0.01, "time": 1})
    writer.log({"kind": "epoch", "step": 10, "epoch": 1, "train_loss": 1.5, "train_acc": 0.4, "val_loss": 1.4,
                "val_acc": 0.5, "lr": 0.01, "images_per_sec": 100.0, "time": 2})
    (path / store.METRICS).open("a").write('{"kind": "step", "ste')          # a torn last line is skipped
    writer.close()
    store.update_run(path, status="cancelled", progress={"epoch": 2, "epochs": 2, "step": 15, "total_steps": 20})
    run = views.live_run(store.read_run(path))
    assert (len(run.steps), len(run.epochs), run.best_epoch) == (1, 1, 1)
    assert run.fraction == 0.75 and run.progress_text == "epoch 2/2 · step 15/20"
    store.update_run(path, world_size=4, hosts=["a", "a", "b", "b"])               # torchrun over 2 machines
    assert views.live_run(store.read_run(path)).progress_text == "epoch 2/2 · step 15/20 · 4 processes on 2 machines"
    store.update_run(path, world_size=1, hosts=[])
    assert not run.active and not run.resumable          # no checkpoint yet
    assert run.speed == 100.0 and run.eta is None        # finished: the last epoch's speed, no ETA
    (path / store.CHECKPOINT).write_bytes(b"x")
    assert views.live_run(store.read_run(path)).resumable


def test_dataset_card_says_whether_files_wait_in_the_data_folder(tmp_path, monkeypatch):
    """A missing dataset reads 'not prepared' whether its files are there (Prepare decodes them) or not (Prepare
    downloads it; where to put the files, for a machine without internet, is said on request, not in red)."""
    from datagen import write_idx_dataset

    monkeypatch.setenv("CNN_DATA_DIR", str(tmp_path))
    write_idx_dataset(tmp_path / "mnist", n_train=20, n_test=10)
    assert views.dataset_card("mnist").badge == "not prepared"
    card = views.dataset_card("fashion-mnist")
    assert card.badge == "not prepared" and "downloads it" in card.detail
    assert str(tmp_path / "fashion-mnist") in card.files_help and not views.dataset_card("mnist").files_help


def test_default_name_tells_runs_apart():
    assert views.default_name(TrainConfig(lr=0.05, batch_size=32)) == \
        "lenet on mnist · sgd lr 0.05 · batch 32 · 5 epochs"


