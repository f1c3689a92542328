"""The Class page (the teacher's) under AppTest: it refuses anyone but a signed-in teacher; a teacher sees who
is training, the queue in the order it takes turns, the leaderboard and everyone's runs, and stops and deletes a
learner's run. AppTest signs a person in with `at.user` and holds the class's settings in `at.secrets`."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from pagekit import page_file, shown
from streamlit.testing.v1 import AppTest

from cnn_core.config import TrainConfig
from cnn_core.core import people
from cnn_core.runs import store
from cnn_core.train import jobs

TEACHER, ADA, BOB = "grace@school.org", "ada@school.org", "bob@school.org"
CLASS = {"teachers": [TEACHER], "learners": ["@school.org"]}
TIMEOUT = 90   # the first run in a process imports torch


def _page(user: str | None = None, class_mode: bool = True) -> AppTest:
    at = AppTest.from_file(page_file("classroom"), default_timeout=TIMEOUT)
    if class_mode:
        at.secrets["class"] = CLASS
    at.user = {"is_logged_in": True, "email": user, "email_verified": True} if user else {"is_logged_in": False}
    return at.run()


def _alerts(at: AppTest, kind: str) -> list[str]:
    return [shown(e.value) for e in getattr(at, kind)]


def _run(who: str, name: str, status: str = "completed", acc: float | None = None, dataset: str = "mnist") -> Path:
    path = store.create_run(TrainConfig(dataset=dataset, epochs=2, batch_size=32), name=name, by=people.Person(who))
    store.update_run(path, status=status, summary={"test_acc": acc, "epochs_done": 2} if acc is not None else {})
    return path


def _live(path: Path, status: str, queued_at: float | None = None) -> None:
    """Make run `path` read as `status` (running or queued) held by this test's process; a queued one gets its
    ticket in the queue, a running one its training ticket (what jobs.slot makes)."""
    record = store.update_run(path, status=status, pid=os.getpid(), host=socket.gethostname(),
                              heartbeat=time.time(), queued_at=queued_at or time.time(),
                              progress={"epoch": 1, "epochs": 2, "step": 30, "total_steps": 60} if status == "running"
                              else {})
    ticket = jobs._ticket(path, record.queued_at, os.getpid(), record.owner)
    (ticket.with_name(jobs.TRAINING + ticket.name) if status == "running" else ticket).touch()


@pytest.mark.parametrize("user, class_mode, why", [(None, False, "Class mode is off"),
                                                    (ADA, True, "signed in as a learner"),
                                                    (None, True, "Sign in with a teacher's address")])
def test_anyone_but_a_teacher_is_refused(runs_dir, user, class_mode, why):
    """Outside class mode (no [class]: signin.me() is None), as a learner, or signed out: the page says it is
    the teacher's and shows nothing of the class."""
    _run(ADA, "ada's run", acc=0.9)
    at = _page(user, class_mode)
    assert not at.exception, [e.value for e in at.exception]
    errors = _alerts(at, "error")
    assert len(errors) == 1 and errors[0].startswith("This page is the teacher's") and why in errors[0]
    assert not at.title and not at.subheader and not at.dataframe


@pytest.fixture
def a_class(runs_dir) -> dict[str, Path]:
    """Ada's and Bob's runs: finished ones on two datasets, Ada's one training, two of Ada's and one of Bob's
    waiting (Ada's launched first)."""
    runs = {"ada-best": _run(ADA, "ada lenet", acc=0.97), "ada-worse": _run(ADA, "ada worse", acc=0.90),
            "bob-best": _run(BOB, "bob lenet", acc=0.93), "bob-fashion": _run(BOB, "bob fash", acc=0.85,
                                                                              dataset="fashion-mnist"),
            "bob-failed": _run(BOB, "bob broke", status="failed"),
            "ada-training": _run(ADA, "ada training"), "ada-wait-1": _run(ADA, "ada wait 1"),
            "ada-wait-2": _run(ADA, "ada wait 2"), "bob-wait": _run(BOB, "bob wait")}
    _live(runs["ada-training"], "running")
    now = time.time()
    for i, key in enumerate(("ada-wait-1", "ada-wait-2", "bob-wait")):
        _live(runs[key], "queued", queued_at=now - 30 + i)
    return runs


def _frame(at: AppTest, column: str, value: str):
    """The first table on the page that has `value` in `column`."""
    return next(d.value for d in at.dataframe if column in d.value.columns and value in set(d.value[column]))


def test_teacher_sees_the_sections_in_order(a_class):
    """A teacher sees the title, Who is training, The queue, Leaderboard and Everyone's runs, in that order."""
    at = _page(TEACHER)
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Class"]
    assert [s.value for s in at.subheader] == ["Who is training", "The queue", "Leaderboard", "Everyone's runs"]
    assert not at.error


def test_who_is_training_and_the_queue_taking_turns(a_class):
    """The run training shows its owner and epoch; the queue lists Bob's run before Ada's two (Ada has one
    training), each with its owner and turn, and says that it takes turns between people."""
    at = _page(TEACHER)
    training = _frame(at, "name", "ada training")
    assert list(training["owner"]) == [ADA] and training["progress"].iloc[0].startswith("epoch 1/2")
    line = _frame(at, "turn", 1)
    assert list(zip(line["owner"], line["name"], line["turn"])) == [(BOB, "bob wait", 1), (ADA, "ada wait 1", 2),
                                                                   (ADA, "ada wait 2", 3)]
    assert any("takes turns between people" in c.value for c in at.caption)


def test_leaderboard_lists_each_learners_best_and_links_to_compare(a_class):
    """The leaderboard of the busiest dataset (mnist) has Ada's best then Bob's; the link opens the top runs
    in Compare, a ticked row opens that run."""
    at = _page(TEACHER)
    assert at.selectbox(key="class.dataset").value == "mnist"
    board = _frame(at, "rank", 1)
    assert list(zip(board["owner"], board["name"], board["test_acc"])) == [(ADA, "ada lenet", 0.97),
                                                                            (BOB, "bob lenet", 0.93)]
    links = [(p.proto.label, p.proto.page, p.proto.query_string) for p in at.get("page_link")]
    top = "%2C".join(p.name for p in (a_class["ada-best"], a_class["bob-best"]))    # ?runs=id1,id2
    assert ("Compare the top 2", "compare", f"runs={top}") in links, links
    at.selectbox(key="class.dataset").set_value("fashion-mnist").run()
    assert list(_frame(at, "rank", 1)["owner"]) == [BOB]


def test_everyone_s_runs_lists_every_run_with_its_owner(a_class):
    """Everyone's runs has every run, with its owner and status; the People filter keeps one person's."""
    at = _page(TEACHER)
    table = _frame(at, "status", "failed")
    assert len(table) == len(a_class)
    assert dict(zip(table["name"], table["owner"]))["bob broke"] == BOB
    at.multiselect(key="class.owners").set_value([BOB]).run()
    assert set(_frame(at, "status", "failed")["owner"]) == {BOB}


def test_teacher_stops_a_learners_run(a_class):
    """Stop on Ada's waiting run asks it to stop (its cancel request is written) and says so."""
    at = _page(TEACHER)
    path = a_class["ada-wait-1"]
    at.selectbox(key="class.run").set_value(path.name).run()
    at.button(key="class.stop").click().run()
    assert (path / store.CANCEL).exists()
    assert _alerts(at, "info") == ["Stop asked of 'ada wait 1': it leaves the queue."]


def test_teacher_deletes_a_learners_run_after_confirming(a_class):
    """Delete asks first; Cancel keeps the run; Yes, delete removes Bob's folder and says whose it was."""
    at = _page(TEACHER)
    path = a_class["bob-failed"]
    at.selectbox(key="class.run").set_value(path.name).run()
    at.button(key="class.delete").click().run()
    assert any("Delete bob@school.org's run 'bob broke'" in w for w in _alerts(at, "warning"))
    at.button(key=f"class.delete_no.{path.name}").click().run()
    assert path.exists() and not at.warning
    at.button(key="class.delete").click().run()
    at.button(key=f"class.delete_yes.{path.name}").click().run()
    assert not path.exists()
    assert _alerts(at, "success") == ["Deleted bob@school.org's run 'bob broke'."]
