"""One spec per setting: a field added to TrainConfig with its Setting is validated, becomes a CLI flag and
a Train form widget, with nothing else edited. The Setting's own checks are the ones every setting uses."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from pagekit import shown
from streamlit.testing.v1 import AppTest

from cnn_core.cli import entry, flags
from cnn_core.config import TrainConfig
from cnn_core.core.settings import Setting, setting, specs


@dataclass
class WarmupConfig(TrainConfig):
    """TrainConfig as it would read once someone adds learning-rate warm-up: one field, nothing else."""
    warmup_epochs: int = setting("int", 0, low=0, high=10, label="Warm-up epochs", unit="epochs",
                                 section="optimizer", step=1, help="Epochs of linear warm-up before the schedule.")


def test_a_new_setting_is_validated():
    """Its kind and range are checked with the message every setting gives."""
    assert WarmupConfig(warmup_epochs=20).validate()["warmup_epochs"] == \
        "warmup_epochs must be between 0 and 10, got 20"
    assert "whole number" in WarmupConfig(warmup_epochs=1.5).validate()["warmup_epochs"]
    assert "warmup_epochs" not in WarmupConfig(warmup_epochs=2).validate()
    assert WarmupConfig(warmup_epochs=2.0).check().warmup_epochs == 2   # a JSON 2.0 becomes the int 2
    assert type(WarmupConfig(warmup_epochs=2.0).check().warmup_epochs) is int


def test_a_new_setting_is_a_cli_flag():
    """`--warmup-epochs` exists, says its range and default, and reaches the config (and its errors)."""
    parser = entry.build_parser(WarmupConfig)
    train = next(a for a in parser._subparsers._group_actions[0].choices["train"]._actions
                 if a.dest == "warmup_epochs")
    assert train.option_strings == ["--warmup-epochs"]
    assert "Whole number between 0 and 10 epochs (default: 0)" in train.help
    config = flags.config_from_args(parser.parse_args(["train", "--warmup-epochs", "3", "--lr", "0.1"]),
                                    WarmupConfig)
    assert (config.warmup_epochs, config.lr) == (3, 0.1)
    bad = flags.config_from_args(parser.parse_args(["train", "--warmup-epochs", "11"]), WarmupConfig)
    assert "between 0 and 10, got 11" in bad.validate()["warmup_epochs"]


def _form_with_warmup():
    from dataclasses import dataclass

    from cnn_core.config import TrainConfig
    from cnn_core.core.settings import setting
    from ui.train import form as train_form

    @dataclass
    class WarmupConfig(TrainConfig):
        warmup_epochs: int = setting("int", 0, low=0, high=10, label="Warm-up epochs", unit="epochs",
                                     section="optimizer", step=1, help="Epochs of linear warm-up.")

    train_form.init_state(WarmupConfig)
    train_form.new_run(WarmupConfig)


def test_a_new_setting_is_a_form_widget():
    """The Train form draws it in its section with its label and help, and shows its error under it."""
    at = AppTest.from_function(_form_with_warmup, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.number_input(key="train.warmup_epochs")
    assert (box.label, box.value) == ("Warm-up epochs", 0)
    assert "Allowed: between 0 and 10 epochs; default 0." in box.help
    box.set_value(12).run()
    assert "warmup_epochs must be between 0 and 10, got 12" in [shown(e.value)   # views.md
                                                                for e in at.error]
    assert at.button(key="train.launch").disabled


def test_every_setting_has_words_and_a_place():
    """Each TrainConfig setting has a label and help; each one the form draws names a section it has."""
    from ui.train import form as train_form

    for name, spec in specs(TrainConfig).items():
        assert spec.label and spec.help, name
        assert spec.section in ("", *train_form.DRAWN), (name, spec.section)
        if spec.kind in ("int", "float"):
            assert spec.low is not None and spec.high is not None, name
            assert spec.check(spec.default) is None, name


@pytest.mark.parametrize("spec,value,message", [
    (Setting("lr", "float", low=0, high=10, low_open=True, noun="learning rate"), 0,
     "learning rate must be in (0, 10], got 0"),
    (Setting("lr", "float", low=0, high=10, low_open=True), math.inf, "lr must be a finite number, got inf"),
    (Setting("lr", "float", low=0, high=10, low_open=True), True, "lr must be a number in (0, 10], got True"),
    (Setting("n", "int", low=1, high=8192), 9000, "n must be between 1 and 8,192, got 9,000"),
    (Setting("n", "int", low=1, high=8192), "4", "n must be a whole number between 1 and 8,192, got '4'"),
    (Setting("k", "choice", choices=(3, 5)), 4, "k must be one of 3, 5; got 4"),
    (Setting("k", "choice", choices=(3, 5)), True, "k must be one of 3, 5; got True"),
    (Setting("b", "bool"), 1, "b must be true or false, got 1"),
    (Setting("d", "text"), 3, "d must be text, got 3"),
])
def test_setting_messages(spec, value, message):
    assert spec.check(value) == message


def test_widget_values_and_what_a_widget_cannot_hold():
    """What the form does with a hand-edited run.json: 1 -> 1.0 for a float box, 2.0 -> 2 for an int box,
    text for a number refused by kind (its range is checked later, under the widget)."""
    lr, n = Setting("lr", "float", low=0, high=1), Setting("n", "int", low=1, high=9, optional=True)
    assert (lr.widget_value(1), type(lr.widget_value(1))) == (1.0, float)
    assert (n.widget_value(2.0), type(n.widget_value(2.0))) == (2, int)
    assert lr.kind_problem("fast") == "is not a number" and lr.kind_problem(5.0) is None
    assert n.kind_problem(2.5) == "is not a whole number" and n.kind_problem(None) is None
    assert Setting("k", "choice", choices=("a", "b")).kind_problem("c") == "is not one of a, b"
