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


def test_the_form_fills_from_a_preset_and_keeps_the_seed():
    """Pick CIFAR-2, then its tutorial-resdeep preset: the purpose shows; Fill puts the preset's values in
    the form (architecture, its knobs, the loop) and leaves the seed the person set."""
    at = AppTest.from_function(_form, default_timeout=90).run()
    at.selectbox(key="train.dataset").set_value("cifar2").run()
    at.number_input(key="train.seed").set_value(7).run()
    at.selectbox(key="train.preset").set_value("tutorial-resdeep").run()
    assert any("NetResDeep with 10 distinct residual blocks" in c.value for c in at.caption)
    at.button(key="train.preset_btn").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="train.arch").value == "res-net-deep"
    assert at.number_input(key="train.p.res-net-deep.n_blocks").value == 10
    assert (at.number_input(key="train.lr").value, at.number_input(key="train.epochs").value) == (0.003, 100)
    assert at.number_input(key="train.seed").value == 7
    assert "Form filled from the tutorial-resdeep preset." in [s.value for s in at.success]
