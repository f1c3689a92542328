"""Lessons: the story of the tutorials this product grew from, in order, as data (like the presets). Each
lesson has a few sentences with the true figures (shared DESIGN: where the tutorials slip), a question the
learner answers before running, the experiments that answer it (TrainConfig values, each done in well under
a minute on 2 CPU cores), the tutorial's own printed figure, and a change to try next.

What a lesson claims is checked, not hoped: `verdict` says whether the experiments' test accuracies bear
the answer out (and, for a lesson with a `Measure`, a figure measured on its trained run: how small a change
fools it), and tests/test_lessons.py trains every lesson's experiments on the real data and asks it.
The figures in the texts are what those runs gave here (MNIST: the 10,000-digit subset; CIFAR-2: the real
CIFAR-10's airplanes and birds), seeds 0 and 1.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Experiment:
    label: str                  # how the question's choices name it ("LeNet", "lr 0.03")
    config: dict                # TrainConfig fields, dataset included; the rest are TrainConfig's defaults


MEASURE_KINDS = {
    "fooled": "the first attack budget (PGD; the most any pixel may move, a share of black-to-white) at which the "
              "run's best weights misread most of the first n test images (fooled_at; inf when no budget did)",
    "separate": "how much the 5-nearest-neighbour accuracy of n test images in the model's last hidden features "
                "(analysis.embedding: class_map(...).knn_acc_full) rose from the untrained weights (the epoch-0 "
                "snapshot) to the best ones",
}


@dataclass(frozen=True)
class Measure:
    """A figure measured on a lesson's one trained run, besides its test accuracy, and the claim the lesson
    makes of it. This module sits below the analysis layer, so the caller measures (the Learn page, the tests),
    as MEASURE_KINDS says, and `verdict` judges the number."""

    kind: str                   # a key of MEASURE_KINDS
    label: str                  # the figure in words, as the verdict names it
    at_least: float | None = None   # the claim: the figure is at least this ...
    at_most: float | None = None    # ... and at most this
    n: int = 100                # test images measured

    def verdict(self, measured: float | None) -> str | None:
        """None when the measured figure bears the claim out; else what does not hold, in words."""
        if measured is None:
            return f"{self.label} was not measured"
        got = "no budget tried was enough" if measured == float("inf") else f"it was {measured:.2f}"
        if self.at_most is not None and measured > self.at_most:
            return f"{self.label}: {got}, over the {self.at_most:.2f} claimed"
        if self.at_least is not None and measured < self.at_least:
            return f"{self.label}: {got}, under the {self.at_least:.2f} claimed"
        return None


def fooled_at(budgets, accuracy) -> float:
    """From a robustness curve (the accuracy at each of rising budgets): the first budget at which fewer than
    half of the images are still read right; inf when none of the budgets gets there."""
    return next((float(b) for b, a in zip(budgets, accuracy) if a < 0.5), float("inf"))


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    text: str                   # what it teaches, with the true figures
    question: str               # asked before anything runs
    choices: tuple[str, ...]    # the answers offered: the experiments' labels when there are several
    answer: str                 # the right one: the label of the experiment that scores highest, or a range
    experiments: tuple[Experiment, ...]
    tutorial: str               # the tutorial's own figure, to read the result beside
    try_this: str               # a change to make next, on the Train page
    floor: float | None = None  # with one experiment: its test accuracy is at least this
    margin: float = 0.01        # with several: the answer's test accuracy beats each other one by this much
    measure: Measure | None = None  # with one experiment: a figure of its trained run that the answer rests on

    def verdict(self, test_acc: dict[str, float | None], measured: float | None = None) -> str | None:
        """None when the results (test accuracy per experiment label; None for a run that failed, as a
        learning rate that is far too large makes one diverge; for a lesson with a `measure`, the figure
        measured on its run) bear the answer out; else what does not hold, in words."""
        if self.floor is not None:
            (label,) = [e.label for e in self.experiments]
            got = test_acc.get(label)
            if got is None:
                return f"{label} did not complete"
            if got < self.floor:
                return f"{label} reached {got:.1%}, under the {self.floor:.0%} claimed"
            return None if self.measure is None else self.measure.verdict(measured)
        best = test_acc.get(self.answer)
        if best is None:
            return f"{self.answer} did not complete"
        beaten = [f"{k} {v:.1%}" for k, v in test_acc.items()
                  if k != self.answer and v is not None and v > best - self.margin]
        return None if not beaten else (f"{self.answer} ({best:.1%}) does not beat " + ", ".join(beaten)
                                        + f" by {self.margin:.0%}")


def _mnist(label: str, **values) -> Experiment:
    return Experiment(label, {"dataset": "mnist", "seed": 0, **values})


def _cifar2(label: str, **values) -> Experiment:
    return Experiment(label, {"dataset": "cifar2", "seed": 0, **values})


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "first-network", "A first network: a perceptron reads digits",
        "A multi-layer perceptron flattens each 28×28 digit into 784 numbers and passes them through two "
        "dense layers (109,386 weights). Training shows it digits in batches of 64 and nudges the weights "
        "against the loss; the loss curve falls fast, then flattens. Watch it on the Live tab: the falling part "
        "is learning, the flat part is what is left.",
        "After 2 epochs, how many of the test digits will it read right?",
        ("about half", "about 80 %", "over 90 %"), "over 90 %",
        (_mnist("perceptron", arch="mlp", epochs=2),),
        "The MNIST tutorial reached 98-99 % after 10 epochs, with a deep CNN and Adam at 0.005.",
        "Train it 6 epochs and compare the two loss curves on Compare: where does the second one flatten?",
        floor=0.90),
    Lesson(
        "conv-vs-dense", "Convolution against a dense layer",
        "A conv layer slides small filters over the image: its weights do not grow with the picture. From an "
        "RGB image to 16 channels, 3×3 filters have 16·3·3·3 = 432 weights; a dense layer from a 3×32×32 image "
        "to 16 units has 3,072·16 = 49,152 (one tutorial printed 1728 and 9216). On digits, LeNet has 21,840 "
        "weights, the perceptron 109,386: 5 times as many.",
        "After 2 epochs each, which reads more test digits right?",
        ("perceptron", "LeNet"), "LeNet",
        (_mnist("perceptron", arch="mlp", epochs=2), _mnist("LeNet", arch="lenet", epochs=2)),
        "Here: LeNet 96.5-96.7 %, the perceptron 93.5-93.7 % (2 epochs, seeds 0 and 1).",
        "Open the LeNet run on Inspect: its first layer's 10 filters are 5×5 pictures of what it looks for."),
    Lesson(
        "filters", "What a conv layer sees: its filters",
        "Each filter of a conv layer is a small picture of what it looks for (a stroke, an edge, a corner); its "
        "feature map lights up where the image holds it. With 2 filters in its first layer a net can look for "
        "2 things; with 16, for 16. The simple CNN's first conv has 16·1·3·3 = 144 weights with 16 filters, "
        "18 with 2.",
        "One epoch of the simple CNN: 2 filters or 16 in its first conv, which reads more digits right?",
        ("2 filters", "16 filters"), "16 filters",
        (_mnist("2 filters", arch="simple-cnn", arch_params={"width": 2}, epochs=1),
         _mnist("16 filters", arch="simple-cnn", arch_params={"width": 16}, epochs=1)),
        "Here: 16 filters read 95.0-95.5 % of the test digits, 2 filters 86.9-89.2 % (seeds 0 and 1). The "
        "tutorial's version of this net sized its dense layer as 32·12·12; the true size after two 3×3 convs "
        "and pools on 28×28 is 32·5·5 = 800, computed here from the input.",
        "Open the 16-filter run on Inspect: Filters shows the 16 pictures, Feature maps where each lights up "
        "on a digit.",
        margin=0.03),
    Lesson(
        "colour-pictures", "Colour pictures: CIFAR-2, airplanes and birds",
        "A CIFAR picture is 3×32×32: 3,072 numbers. The perceptron's first layer alone then has 3,072·128 = "
        "393,216 weights; the two-conv net with 16 channels first has 16·3·3·3 = 432 in its first layer and keeps "
        "the picture's layout, so a wing is a wing wherever it sits.",
        "After 3 epochs each, which tells airplanes from birds better?",
        ("perceptron", "conv net"), "conv net",
        (_cifar2("perceptron", arch="mlp", epochs=3),
         _cifar2("conv net", arch="cifar-net", arch_params={"n_chans1": 16, "activation": "tanh"}, epochs=3)),
        "The CIFAR-2 tutorial's two-conv tanh net reached 0.8995 validation accuracy after 100 epochs of SGD "
        "at 1e-2. Here, after 3: conv net 85.6-85.9 %, perceptron 83.9-84.1 % (seeds 0 and 1).",
        "Pick the tutorial preset of the conv net and train it 20 epochs: how close does it get to 0.8995?",
        margin=0.005),
    Lesson(
        "learning-rate", "The learning rate: too small, right, too large",
        "Each step moves the weights by the gradient times the learning rate. Too small and one epoch moves them "
        "almost nowhere; too large and the steps overshoot, the loss jumps up, and the net ends guessing.",
        "One epoch of LeNet at three rates: which learns most?",
        ("lr 0.0005", "lr 0.03", "lr 3"), "lr 0.03",
        (_mnist("lr 0.0005", arch="lenet", epochs=1, lr=0.0005), _mnist("lr 0.03", arch="lenet", epochs=1, lr=0.03),
         _mnist("lr 3", arch="lenet", epochs=1, lr=3.0)),
        "Here: 0.03 reads 94.5-94.7 % of the test digits; 0.0005 reads 12 %, 3 reads 10 %: guessing (seeds 0 "
        "and 1). Too small and too large end alike, for opposite reasons: the loss curves tell them apart.",
        "Put the three runs side by side on Compare and look at their loss curves from the first step."),
    Lesson(
        "batch-size", "Batch size: steps, not images",
        "An epoch shows every training image once, in batches; each batch is one step. 8,571 digits in batches "
        "of 32 are 268 steps; in batches of 1,024 only 9. At the same learning rate, fewer steps learn less.",
        "One epoch of LeNet, batch 32 against batch 1,024: which reads more digits right?",
        ("batch 32", "batch 1,024"), "batch 32",
        (_mnist("batch 32", arch="lenet", epochs=1, batch_size=32),
         _mnist("batch 1,024", arch="lenet", epochs=1, batch_size=1024)),
        "Here: batch 32 reads 95.9-96.6 %, batch 1,024 12-14 % after one epoch (seeds 0 and 1).",
        "Give batch 1,024 ten times the learning rate (0.3) and run it again: steps can be larger as well."),
    Lesson(
        "batch-norm", "Batch norm lets a deep net take a high learning rate",
        "Six convs deep, each layer's inputs shift as the layers before it learn. Batch norm rescales each "
        "channel over the batch after every conv, which keeps them steady: the net then trains at a rate that "
        "leaves the same net without it stuck.",
        "The deeper CNN, one epoch at learning rate 0.2: with or without batch norm, which learns?",
        ("without batch norm", "with batch norm"), "with batch norm",
        (_mnist("without batch norm", arch="deep-cnn", epochs=1, lr=0.2),
         _mnist("with batch norm", arch="deep-cnn", arch_params={"batch_norm": True}, epochs=1, lr=0.2)),
        "Here: with batch norm 76.8-88.6 %, without 11.3 % (seeds 0 and 1): the net without it never leaves "
        "guessing.",
        "Try the net without batch norm at 0.02: does it learn then? Compare the gradient sizes on Inspect.",
        margin=0.2),
    Lesson(
        "classes-separate", "Watch classes separate: the class map",
        "The layer before the last turns each digit into a few numbers, 50 in LeNet, and the last layer reads the "
        "class from them. Digits of one class that lie close together there are easy to tell apart. Count it: "
        "for each test digit, do its 5 nearest neighbours in those 50 numbers mostly share its class? Inspect's "
        "Class map draws the same points flattened to 2-D, epoch by epoch.",
        "Untrained, LeNet's random weights already keep classes a little apart: a digit's 5 nearest neighbours "
        "mostly share its class for about 77 % of test digits. How many points do 2 epochs of training add?",
        ("under 5 points: random features sort them as well", "10 to 30 points", "over 30 points"),
        "10 to 30 points",
        (_mnist("LeNet", arch="lenet", epochs=2),),
        "The tutorials look at filters, not at this map. Here (1,000 test digits; seeds 0 and 1): 76.5-76.9 % "
        "before training, 95.7-96.4 % after 2 epochs, 19 points more; flattened to 2-D (PCA) 32 % against 74-75 %.",
        "Open the run on Inspect's Class map and step through its epochs: the clouds of each digit pull apart. "
        "Then try the perceptron (mlp): 66-68 % untrained, 93 % after 2 epochs.",
        floor=0.90,
        measure=Measure("separate", "the rise in 5-nearest-neighbour accuracy of its last hidden features from "
                                    "epoch 0 to its best weights", at_least=0.10, at_most=0.30, n=1000)),
    Lesson(
        "fool-it", "Fool it: a change you cannot see",
        "A trained net reads a digit from its 784 pixels, and each of them can be nudged. An attack (PGD) moves "
        "every pixel a little, never more than a budget, each the way that most lowers the score of the right "
        "answer: a faint, scattered change that leaves the digit what a person reads. The budget is a share of "
        "black-to-white: 0.1 lets each pixel move a tenth of the way.",
        "One epoch of the simple CNN reads about 95 % of the test digits right. How large a change to every "
        "pixel makes it misread most of them?",
        ("a fifth of black-to-white or less", "about half of black-to-white",
         "it cannot be fooled: it is 95 % right"), "a fifth of black-to-white or less",
        (_mnist("simple CNN", arch="simple-cnn", epochs=1),),
        "The tutorials never attack their nets. Here: one epoch of the simple CNN reads 95.0-95.5 % of the test "
        "digits; letting every pixel move by 0.14 of black-to-white makes it misread most of the first 100 (42-44 "
        "% still right; 56-62 % at 0.12; seeds 0 and 1). The bundled deep CNN, 97 % right on them, falls sooner: "
        "at 0.08 (36 % right).",
        "Draw a digit on Draw with this run and press Find the smallest change, or pick a test digit on Inspect's "
        "Fool it tab. Then train it again with Augmentation: standard (shifts of 2 px) and set the two runs' "
        "robustness curves side by side on Compare.",
        floor=0.90,
        measure=Measure("fooled", "the smallest change that makes it misread most test digits", at_most=0.2)),
)


def get(lesson_id: str) -> Lesson:
    found = {lesson.id: lesson for lesson in LESSONS}
    if lesson_id not in found:
        raise ValueError(f"no lesson {lesson_id!r}; the lessons: {', '.join(found)}")
    return found[lesson_id]


def run_name(lesson: Lesson, experiment: Experiment) -> str:
    """The name of an experiment's run: the pages find a lesson's runs by it."""
    return f"lesson {lesson.id}: {experiment.label}"


def create_run(lesson: Lesson, experiment: Experiment, runs_dir=None, by=None):
    """The experiment as a run of the runs folder (made, not started: jobs.launch or engine.run_training);
    by: the Person it is made for in class mode (theirs)."""
    from cnn_core.config import TrainConfig
    from cnn_core.runs import store

    return store.create_run(TrainConfig(**experiment.config), run_name(lesson, experiment), runs_dir, by=by)


def launch(lesson: Lesson, by=None, runs_dir=None) -> list:
    """Each experiment as a run launched into the queue (they train one after another): the run folders. In
    class mode `by`'s, and all of them within their limits before the first is made (people.OverLimit)."""
    from cnn_core.runs import owners
    from cnn_core.train import jobs

    owners.check_room(by, runs_dir, epochs=max(int(e.config.get("epochs", 1)) for e in lesson.experiments),
                      count=len(lesson.experiments))
    made = []
    for e in lesson.experiments:
        made.append(create_run(lesson, e, runs_dir, by))
        jobs.launch(made[-1], by=by)
    return made


def latest_runs(lesson: Lesson, records: list) -> dict:
    """{label: the newest run of that experiment among `records`, or None}."""
    newest = {r.name: r for r in sorted(records, key=lambda r: r.created)}
    return {e.label: newest.get(run_name(lesson, e)) for e in lesson.experiments}


def ended(runs: dict) -> bool:
    """Every experiment ran to its end: completed, or failed, as a run that a lesson shows diverging may."""
    return all(r is not None and r.effective_status in ("completed", "failed") for r in runs.values())


def accuracies(runs: dict) -> dict[str, float | None]:
    """{label: test accuracy of a completed run, else None}: what verdict reads."""
    return {label: r.summary.get("test_acc") if r is not None and r.effective_status == "completed" else None
            for label, r in runs.items()}



def run_here(lesson: Lesson, runs_dir=None) -> dict[str, tuple]:
    """Train each of the lesson's experiments in this process, one after the other, as runs of the runs folder
    (run_name: the pages list them). {label: (run folder, test accuracy or None)}."""
    from cnn_core.runs import store
    from cnn_core.train import engine

    out = {}
    for e in lesson.experiments:
        path = create_run(lesson, e, runs_dir)
        engine.run_training(path)
        out[e.label] = (path, accuracies({e.label: store.read_run(path)})[e.label])
    return out
