"""The class's leaderboard (analysis.compare.leaderboard) over real run folders: each person's best completed
run per dataset, best first, with that run's settings; runs that did not complete, have no test accuracy or no
owner are left out."""
from __future__ import annotations

from pathlib import Path

import pytest

from cnn_core.analysis import compare
from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.runs import store

ADA, BOB = "ada@school.org", "bob@school.org"


def _run(who: str | None, dataset: str, acc: float | None, status: str = "completed", created: str | None = None,
         **config) -> Path:
    """A run made by `who` (None: outside class mode), ended with `status` and test accuracy `acc`."""
    cfg = {"dataset": dataset, "epochs": 2, "batch_size": 32, "lr": 0.05, **config}
    path = store.create_run(TrainConfig(**cfg), name=f"{who} {dataset} {acc}",
                            by=people.Person(who) if who else None)
    summary = {"epochs_done": cfg["epochs"]} | ({"test_acc": acc} if acc is not None else {})
    store.update_run(path, status=status, summary=summary, **({"created": created} if created else {}))
    return path


@pytest.fixture
def class_runs(runs_dir) -> dict[str, Path]:
    """Two learners on two datasets: Ada best on mnist, Bob best on fashion-mnist, each with a worse run too."""
    return {"ada-mnist-best": _run(ADA, "mnist", 0.97, lr=0.1, batch_size=64, optimizer="adam", epochs=3),
            "ada-mnist": _run(ADA, "mnist", 0.91),
            "bob-mnist-best": _run(BOB, "mnist", 0.95),
            "bob-mnist": _run(BOB, "mnist", 0.62),
            "ada-fashion-best": _run(ADA, "fashion-mnist", 0.81),
            "bob-fashion-best": _run(BOB, "fashion-mnist", 0.88, lr=0.01),
            "bob-fashion": _run(BOB, "fashion-mnist", 0.70)}


def test_best_run_per_person_per_dataset_best_first(class_runs):
    """One row per (dataset, owner): that owner's best run; datasets by name, the best accuracy first."""
    board = compare.leaderboard(store.list_runs())
    assert list(board.columns) == compare.LEADERBOARD_COLUMNS
    got = list(zip(board["dataset"], board["owner"], board["run_id"], board["test_acc"]))
    assert got == [("fashion-mnist", BOB, class_runs["bob-fashion-best"].name, 0.88),
                   ("fashion-mnist", ADA, class_runs["ada-fashion-best"].name, 0.81),
                   ("mnist", ADA, class_runs["ada-mnist-best"].name, 0.97),
                   ("mnist", BOB, class_runs["bob-mnist-best"].name, 0.95)]
    assert list(board["runs"]) == [2, 1, 2, 2]


def test_rows_carry_the_best_runs_settings(class_runs):
    """The row holds the best run's name, architecture, epochs trained, lr, batch size and optimizer."""
    board = compare.leaderboard(store.list_runs())
    ada = board[(board["dataset"] == "mnist") & (board["owner"] == ADA)].iloc[0]
    record = store.read_run(class_runs["ada-mnist-best"])
    assert (ada["name"], ada["arch"]) == (record.name, record.arch)
    assert (ada["epochs"], ada["lr"], ada["batch_size"], ada["optimizer"]) == (3, 0.1, 64, "adam")


@pytest.mark.parametrize("status", ["failed", "cancelled", "running", "queued", "interrupted"])
def test_runs_that_did_not_complete_are_left_out(class_runs, status):
    """A better run that failed, was stopped, is training or waiting does not take the learner's place."""
    _run(BOB, "mnist", 0.99, status=status)
    board = compare.leaderboard(store.list_runs())
    bob = board[(board["dataset"] == "mnist") & (board["owner"] == BOB)].iloc[0]
    assert (bob["run_id"], bob["test_acc"], bob["runs"]) == (class_runs["bob-mnist-best"].name, 0.95, 2)
    assert list(board[board["dataset"] == "mnist"]["owner"]) == [ADA, BOB]


def test_runs_without_owner_or_test_accuracy_are_left_out(class_runs):
    """A run made outside class mode ranks nobody; a completed run without a test accuracy is not ranked."""
    _run(None, "mnist", 0.995)
    _run(ADA, "cifar2", None)
    board = compare.leaderboard(store.list_runs())
    assert set(board["owner"]) == {ADA, BOB}
    assert "cifar2" not in set(board["dataset"])
    assert len(board) == 4


def test_a_tie_goes_to_the_earlier_run(runs_dir):
    """Two runs of one person with the same accuracy: the one made first is listed."""
    later = _run(ADA, "mnist", 0.9, created="2025-12-02T10:00:00+00:00")
    first = _run(ADA, "mnist", 0.9, created="2025-12-01T10:00:00+00:00")
    board = compare.leaderboard(store.list_runs())
    assert list(board["run_id"]) == [first.name] and later.name != first.name


def test_no_finished_runs_give_an_empty_board(runs_dir):
    """No run at all, or none completed: an empty frame with the columns."""
    assert compare.leaderboard([]).empty
    _run(ADA, "mnist", 0.9, status="failed")
    board = compare.leaderboard(store.list_runs())
    assert board.empty and list(board.columns) == compare.LEADERBOARD_COLUMNS
