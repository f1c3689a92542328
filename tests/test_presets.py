"""Presets: every one is a valid config for its dataset; the CLI starts from one and the flags given win;
the Train page fills its form from one and says what it is for."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from cnn_core.cli import entry, flags
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.train import presets


@pytest.mark.parametrize("preset", presets.PRESETS, ids=lambda p: f"{p.dataset}-{p.name}")
def test_every_preset_is_a_valid_config(preset):
    """Its values build a config that validates, on its own dataset, with a purpose to read."""
    config = TrainConfig(**presets.values(preset.name, preset.dataset))
    assert config.validate(check_data=False) == {}
    assert config.dataset == preset.dataset and preset.purpose.endswith(".")


def test_each_dataset_has_its_tutorial_and_cifar2_one_per_tutorial_model():
    for dataset in ("mnist", "fashion-mnist", "cifar10", "cifar2"):
        assert "tutorial" in presets.for_dataset(dataset), dataset
    archs = {p.values["arch"] for p in presets.for_dataset("cifar2").values() if p.name.startswith("tutorial")}
    assert archs == {"cifar-net", "res-net-small", "res-net-deep"}


def _config(*argv):
    return flags.config_from_args(entry.build_parser().parse_args(["train", *argv]))


def test_cli_preset_then_flags_win():
    """--preset fills the tutorial's loop; a flag given with it wins; another --arch drops its knobs."""
    config = _config("--dataset", "cifar2", "--preset", "tutorial", "--epochs", "3")
    assert (config.arch, config.arch_params, config.optimizer, config.lr, config.momentum, config.epochs) == \
        ("cifar-net", {"n_chans1": 16, "activation": "tanh"}, "sgd", 0.01, 0.0, 3)
    other = _config("--dataset", "cifar2", "--preset", "tutorial", "--arch", "res-net-small")
    assert other.arch == "res-net-small" and other.arch_params == {} and other.validate(check_data=False) == {}
    with pytest.raises(ConfigError, match="no preset 'fastest' for mnist; its presets: tutorial"):
        _config("--preset", "fastest")


def _form():
    from ui.train import form as train_form

    train_form.init_state()
    train_form.new_run()


def test_picking_a_preset_fills_the_form_at_once_and_keeps_the_seed():
    """Pick CIFAR-2, then its tutorial-resdeep preset: with no other click the form holds the preset's values
    (architecture, its knobs, the loop), the fields it changed are marked, the seed the person set stays."""
    at = AppTest.from_function(_form, default_timeout=90).run()
    at.selectbox(key="train.dataset").set_value("cifar2").run()
    at.number_input(key="train.seed").set_value(7).run()
    at.selectbox(key="train.preset").set_value("tutorial-resdeep").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("NetResDeep with 10 distinct residual blocks" in c.value for c in at.caption)
    assert at.selectbox(key="train.arch").value == "res-net-deep"
    assert at.number_input(key="train.p.res-net-deep.n_blocks").value == 10
    assert (at.number_input(key="train.lr").value, at.number_input(key="train.epochs").value) == (0.003, 100)
    assert at.number_input(key="train.seed").value == 7 and not at.number_input(key="train.seed").label.endswith("✦")
    assert at.number_input(key="train.lr").label.endswith("✦") and at.selectbox(key="train.arch").label.endswith("✦")
    told = [s.value for s in at.success]
    assert any(t.startswith("Applied the tutorial\\-resdeep preset: ") and "Learning rate 0\\.03 → 0\\.003" in t for t in told), told


def test_undo_puts_the_form_back_as_it_was_before_the_preset():
    """Two presets in a row, then Undo: every value is the one before the first preset, nothing marked."""
    at = AppTest.from_function(_form, default_timeout=90).run()
    at.selectbox(key="train.dataset").set_value("fashion-mnist").run()
    at.number_input(key="train.lr").set_value(0.07).run()
    before = {k: at.session_state[k] for k in ("train.arch", "train.lr", "train.epochs", "train.schedule",
                                               "train.batch_size", "train.optimizer")}
    for name in presets.for_dataset("fashion-mnist"):
        at.selectbox(key="train.preset").set_value(name).run()
    assert at.session_state["train.lr"] != 0.07
    at.button(key="train.preset.undo").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert {k: at.session_state[k] for k in before} == before
    assert at.selectbox(key="train.preset").value is None and not at.number_input(key="train.lr").label.endswith("✦")
    assert at.button(key="train.preset.undo").disabled


def test_another_dataset_after_a_preset_takes_its_values_back_and_says_so():
    """The fast preset of Fashion-MNIST, then MNIST: its learning rate, schedule and the rest go back to
    what they were (the new dataset stays), and a message names them; nothing of it reaches the next run."""
    at = AppTest.from_function(_form, default_timeout=90).run()
    at.selectbox(key="train.dataset").set_value("fashion-mnist").run()
    lr, schedule = at.session_state["train.lr"], at.session_state["train.schedule"]
    at.selectbox(key="train.preset").set_value("fast").run()
    assert (at.session_state["train.lr"], at.session_state["train.schedule"]) != (lr, schedule)
    at.selectbox(key="train.dataset").set_value("mnist").run()
    assert not at.exception, [e.value for e in at.exception]
    assert (at.session_state["train.dataset"], at.session_state["train.lr"], at.session_state["train.schedule"]) == \
        ("mnist", lr, schedule)
    assert any("fast preset was for fashion\\-mnist" in i.value and "went back" in i.value for i in at.info)
