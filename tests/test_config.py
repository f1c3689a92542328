"""TrainConfig validation: every bad field is named with a message a person understands."""
from __future__ import annotations

import json

import pytest

from cnn_core.config import ConfigError, TrainConfig

BAD = [
    ("lr", 0, "learning rate"), ("lr", -0.1, "learning rate"), ("lr", float("nan"), "finite"),
    ("lr", 1e9, "learning rate"), ("lr", "fast", "number"), ("batch_size", 0, "batch size"),
    ("batch_size", 100_000, "batch size"), ("batch_size", 2.5, "whole number"), ("epochs", 0, "epochs"),
    ("epochs", 10**6, "epochs"), ("optimizer", "rmsprop", "sgd, adam, adamw"), ("momentum", 1.0, "momentum"),
    ("schedule", "warm", "none, step, cosine, onecycle"), ("weight_decay", -1, "weight decay"),
    ("label_smoothing", 1.0, "label smoothing"), ("augment", "lots", "none, standard, affine"),
    ("seed", -1, "seed"), ("device", "tpu", "device"), ("dataset", "imagenet", "imagenet"),
    ("arch", "vgg", "vgg"), ("val_size", 0, "validation size"), ("val_size", 600, "below the 600"),
    ("epochs", True, "whole number"), ("amp", "yes", "one of auto, on, off"),
]


@pytest.mark.parametrize("field,value,words", BAD)
def test_bad_field_is_named(field, value, words):
    """One bad field gives exactly that field's error, whose text says what is allowed."""
    errors = TrainConfig(**{field: value}).validate()
    assert field in errors, errors
    assert words in errors[field]


@pytest.mark.parametrize("params,key", [({"dropout": 1.5}, "arch_params.dropout"),
                                        ({"n_chans1": 0}, "arch_params.n_chans1"),
                                        ({"colour": 3}, "arch_params.colour")])
def test_bad_architecture_params_are_named(params, key):
    """Architecture parameters out of range or unknown are reported under arch_params.<name>."""
    errors = TrainConfig(arch="cifar-net", arch_params=params).validate()
    assert key in errors


def test_blocks_beyond_range_and_unfit_input():
    """n_blocks 1000 is out of range; lenet on an input it cannot fit names the shape."""
    assert "arch_params.n_blocks" in TrainConfig(arch="res-net-deep", arch_params={"n_blocks": 1000}).validate()


def test_batch_larger_than_dataset():
    """A batch larger than the training images left after validation is refused."""
    errors = TrainConfig(dataset="mnist", val_size=100, batch_size=4096).validate()
    assert "larger than the 500 training images" in errors["batch_size"]


def test_mixed_precision_on_a_cpu_follows_its_bfloat16(monkeypatch):
    """amp on the CPU is accepted where the CPU computes bfloat16 natively (this machine: avx512_bf16) and
    refused, with the reason, where it would be emulated. The second CPU is not here: its answer is given."""
    from cnn_core.core import devices

    native, _ = devices.cpu_bf16()
    assert ("amp" in TrainConfig(device="cpu", amp=True).validate()) is (not native)
    monkeypatch.setattr(devices, "cpu_bf16", lambda: (False, "this CPU has no native bfloat16 (...)"))
    assert TrainConfig(device="cpu", amp=True).validate()["amp"] == \
        "mixed precision on this CPU is refused: this CPU has no native bfloat16 (...)"
    assert "amp" not in TrainConfig(device="cpu", amp="auto").validate()    # auto is never refused: float32 there
    import torch

    got = devices.precision("auto", torch.device("cpu"))
    assert (got.bf16, got.why) == (False, "automatic: this CPU has no native bfloat16 (...); so float32")


def test_mixed_precision_keeps_the_runs_made_with_true_and_false():
    """Runs recorded before the automatic default said true or false; they read as on and off (a resume trains
    as before), and `--amp true` still means on. Without a choice it is auto."""
    assert TrainConfig.from_dict({"amp": True}).amp == "on"
    assert TrainConfig.from_dict({"amp": False}).amp == "off"
    assert TrainConfig().amp == "auto"


def test_every_error_reported_at_once():
    """Several bad fields are all reported together, not one at a time."""
    errors = TrainConfig(lr=0, batch_size=0, epochs=0, optimizer="x").validate()
    assert {"lr", "batch_size", "epochs", "optimizer"} <= set(errors)


def test_round_trip_through_json(tmp_path):
    """A config saved as JSON loads back into an equal TrainConfig."""
    cfg = TrainConfig(arch="cifar-net", arch_params={"n_chans1": 32}, lr=0.02, schedule="cosine", val_size=100)
    file = tmp_path / "c.json"
    file.write_text(json.dumps(cfg.to_dict()))
    assert TrainConfig.from_json_file(file) == cfg
    assert cfg.validate() == {}


def test_unknown_and_wrongly_typed_json(tmp_path):
    """Unknown fields, non-JSON files and non-object JSON raise ConfigError naming the problem."""
    with pytest.raises(ConfigError, match="unknown field 'learning_rate'"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    (tmp_path / "bad.json").write_text("{lr: 1}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="JSON object"):
        TrainConfig.from_dict([1, 2])
    assert "lr" in TrainConfig.from_dict({"lr": "0.1"}).validate()
