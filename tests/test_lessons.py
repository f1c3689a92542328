"""Lessons (cnn_core/train/lessons.py): well formed, listed by the CLI, and each one's experiments, trained
on the real data as the lesson runs them, bear out the answer it gives."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_core.analysis import explain
from cnn_core.config import TrainConfig
from cnn_core.data import catalog
from cnn_core.train import lessons

ROOT = Path(__file__).resolve().parent.parent
CIFAR = ROOT.parent / "shared" / "datasets" / "cifar10"


def test_lessons_are_well_formed_and_their_experiments_valid():
    """At least six lessons with distinct ids; each answer is one of its choices (the experiments' labels
    when there are several, a range for a single one with a floor), every experiment a valid config."""
    assert len(lessons.LESSONS) >= 6 and len({x.id for x in lessons.LESSONS}) == len(lessons.LESSONS)
    for lesson in lessons.LESSONS:
        assert lesson.answer in lesson.choices and lesson.text and lesson.question and lesson.try_this, lesson.id
        labels = [e.label for e in lesson.experiments]
        if len(labels) > 1:
            assert set(lesson.choices) == set(labels) and lesson.floor is None and lesson.measure is None, lesson.id
        else:
            assert lesson.floor is not None, lesson.id
        if lesson.measure is not None:
            assert lesson.measure.kind in explain.MEASURES and lesson.measure.kind in lessons.MEASURE_KINDS, lesson.id
            assert {lesson.measure.at_least, lesson.measure.at_most} != {None}, lesson.id
        for e in lesson.experiments:
            assert TrainConfig(**e.config).validate(check_data=False) == {}, (lesson.id, e.label)


def test_the_verdict_says_when_the_runs_do_not_bear_the_answer_out():
    lesson = lessons.get("conv-vs-dense")
    assert lesson.verdict({"perceptron": 0.93, "LeNet": 0.965}) is None
    assert lesson.verdict({"perceptron": 0.96, "LeNet": 0.965}) == "LeNet (96.5%) does not beat perceptron 96.0% by 1%"
    assert lesson.verdict({"perceptron": None, "LeNet": 0.5}) is None          # a failed run is beaten
    assert lesson.verdict({"perceptron": 0.9, "LeNet": None}) == "LeNet did not complete"
    assert lessons.get("first-network").verdict({"perceptron": 0.85}) == "perceptron reached 85.0%, under the 90% claimed"
    with pytest.raises(ValueError, match="no lesson 'cnn'; the lessons: first-network, conv-vs-dense"):
        lessons.get("cnn")


def test_a_measured_figure_is_checked_too():
    """A lesson with a Measure (fool-it) is borne out only when its run's test accuracy reaches the floor and the
    figure measured on the run (the first budget at which most test digits are misread) is within the claim."""
    lesson = lessons.get("fool-it")
    assert lessons.fooled_at([0.0, 0.1, 0.12, 0.14], [0.95, 0.7, 0.5, 0.44]) == 0.14     # 50% is not most
    assert lessons.fooled_at([0.0, 0.1], [0.95, 0.7]) == float("inf")                   # never fooled
    assert lesson.verdict({"simple CNN": 0.95}, 0.14) is None
    assert lesson.verdict({"simple CNN": 0.95}, 0.3) == ("the smallest change that makes it misread most test "
                                                          "digits: it was 0.30, over the 0.20 claimed")
    assert "no budget tried was enough" in lesson.verdict({"simple CNN": 0.95}, float("inf"))
    assert lesson.verdict({"simple CNN": 0.95}) == "the smallest change that makes it misread most test digits was not measured"
    assert lesson.verdict({"simple CNN": 0.5}, 0.14) == "simple CNN reached 50.0%, under the 90% claimed"


def test_the_cli_lists_the_lessons_as_json():
    """`python -m cnn_core lessons --json`: every lesson with its choices, answer and experiments' configs."""
    out = subprocess.run([sys.executable, "-m", "cnn_core", "lessons", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    listed = json.loads(out.stdout)
    assert [x["id"] for x in listed] == [x.id for x in lessons.LESSONS]
    assert all(x["answer"] in x["choices"] and x["experiments"][0]["config"]["dataset"] for x in listed)


def _real_data(dataset: str, tmp_path: Path) -> Path:
    """A data folder holding the real `dataset`: the project's own (make data prepares MNIST's subset), or
    CIFAR-2 prepared from the real CIFAR-10 beside the repository; skipped, with the reason, when neither."""
    own = ROOT / "data"
    if catalog.dataset_status(dataset, own).state != "missing":
        return own
    if dataset == "cifar2" and (CIFAR / "cifar-10-batches-py").is_dir():
        catalog.prepare("cifar2", data_dir=tmp_path / "data", source_dir=CIFAR)
        return tmp_path / "data"
    pytest.skip(f"the real {dataset} is not prepared in {own} (`make data`; CIFAR-2 needs {CIFAR})")


@pytest.mark.parametrize("lesson", lessons.LESSONS, ids=lambda x: x.id)
def test_each_lesson_teaches_what_it_claims_on_the_real_data(lesson, tmp_path, monkeypatch):
    """The lesson's experiments, trained here as its Run button trains them (its configs, the real data), give
    test accuracies that bear its answer out (lessons.verdict)."""
    (dataset,) = {e.config["dataset"] for e in lesson.experiments}
    monkeypatch.setenv("CNN_DATA_DIR", str(_real_data(dataset, tmp_path)))
    results = lessons.run_here(lesson)
    accs = {label: acc for label, (_, acc) in results.items()}
    measured = None
    if lesson.measure is not None:                # measured on the run's best weights, as the Learn page does
        (path, _), = results.values()
        measured = explain.MEASURES[lesson.measure.kind](path, lesson.measure.n)
        print(f"{lesson.id}: {lesson.measure.label}: {measured}")
    assert lesson.verdict(accs, measured) is None, (accs, measured)   # a run that failed (diverged) counts as beaten
    assert os.environ["CNN_RUNS_DIR"] in str(next(iter(results.values()))[0])


def test_the_learn_page_asks_first_then_runs_a_lesson_and_sets_the_result_beside_the_answer(runs_dir):
    """Learn (AppTest, the tests' small data): Run is off until the question is answered; answered, it launches
    the lesson's experiments as runs of the runs folder; once they completed, the answer stands beside the
    guess with the tutorial's figure and a link to Compare them, and the lesson counts as done."""
    import time

    from pagekit import page_file
    from streamlit.testing.v1 import AppTest

    from cnn_core.runs import store

    at = AppTest.from_file(page_file("learn"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.label for e in at.expander][:2] == ["1. " + lessons.LESSONS[0].title, "2. " + lessons.LESSONS[1].title]
    assert at.button(key="learn.run.learning-rate").disabled            # answer first
    at.radio(key="learn.guess.learning-rate").set_value("lr 3").run()
    at.button(key="learn.run.learning-rate").click().run()
    assert not at.exception, [e.value for e in at.exception]
    made = store.readable(store.list_runs(runs_dir))
    assert sorted(r.name for r in made) == sorted(f"lesson learning-rate: {e.label}"
                                                  for e in lessons.get("learning-rate").experiments)
    deadline = time.time() + 240
    while any(store.effective_status(r) in store.ACTIVE for r in store.readable(store.list_runs(runs_dir))):
        assert time.time() < deadline, [(r.name, store.effective_status(r)) for r in store.list_runs(runs_dir)]
        time.sleep(1)
    at.run()
    shown = " ".join(str(e.value) for e in (*at.success, *at.warning))
    assert "You answered **lr 3**: not this time." in shown and "The answer: **lr 0\\.03**" in shown, shown
    assert f"0 of {len(lessons.LESSONS)} lessons done" not in " ".join(p.proto.text for p in at.get("progress"))
    assert any("Compare these runs" in str(link.proto.label) for link in at.get("page_link"))


@pytest.mark.parametrize("lesson_id, words, tab", [
    ("fool-it", "Measured on this run: letting every pixel move by at most ", "Fool it"),
    ("classes-separate", "Measured on this run: training added ", "Class map")])
def test_the_learn_page_sets_the_measured_figure_beside_the_guess(lesson_id, words, tab, runs_dir):
    """A lesson with a Measure, its run trained here (the tests' small data): once answered, the Learn page shows
    the figure measured on the run beside the guess and links to the Inspect tab that shows it at work; fool-it
    links to Draw too, and Draw opened from that link has the lesson's run picked."""
    from pagekit import page_file, shown
    from streamlit.testing.v1 import AppTest

    lesson = lessons.get(lesson_id)
    ((path, acc),) = lessons.run_here(lesson, runs_dir).values()
    assert acc is not None
    at = AppTest.from_file(page_file("learn"), default_timeout=120).run()
    at.radio(key=f"learn.guess.{lesson_id}").set_value(lesson.answer).run()
    assert not at.exception, [e.value for e in at.exception]
    said = " ".join(shown(e.value) for e in (*at.success, *at.warning) if "The answer: " in str(e.value))
    assert f"You answered {lesson.answer}: right." in said.replace("**", ""), said
    assert words in said, said
    labels = [str(link.proto.label) for link in at.get("page_link")]
    assert any(label.endswith(f": its {tab} tab") for label in labels), labels
    if lesson.measure.kind != "fooled":
        return
    assert "Draw a digit for it to misread" in labels, labels
    draw = AppTest.from_file(page_file("draw"), default_timeout=120)
    draw.query_params["run"] = path.name
    draw.run()
    assert not draw.exception, [e.value for e in draw.exception]
    assert draw.selectbox(key="draw.run").value == str(path)
