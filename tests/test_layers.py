"""Your own network (cnn_core/nets/layers.py): the plan's shapes, parameters, formulas and receptive fields;
what does not fit, in words; every registry model as a layer list that rebuilds to the same model; the
tutorial's conv-versus-dense figures; and `train --layers FILE.json` training, storing and reloading a
custom network like a preset."""
from __future__ import annotations

import json

import pytest
import torch

from cnn_core.cli.entry import main
from cnn_core.nets import architectures, layers
from cnn_core.runs import store
from cnn_core.runs.checkpoints import load_checkpoint, model_from_checkpoint


def test_the_plan_gives_each_layers_shape_parameters_formula_and_receptive_field():
    steps = layers.plan(layers.DEFAULT, (3, 32, 32), 10)
    table = [(s.name, s.shape, s.params, s.total, s.receptive, s.auto) for s in steps]
    assert table == [
        ("conv1", (16, 32, 32), 16 * 3 * 9 + 16, 448, 3, False),
        ("act1", (16, 32, 32), 0, 448, 3, False),
        ("pool1", (16, 16, 16), 0, 448, 4, False),
        ("conv2", (32, 16, 16), 32 * 16 * 9 + 32, 5088, 8, False),
        ("act2", (32, 16, 16), 0, 5088, 8, False),
        ("pool2", (32, 8, 8), 0, 5088, 10, False),
        ("flatten", (2048,), 0, 5088, None, False),
        ("fc1", (64,), 2048 * 64 + 64, 136224, None, False),
        ("act3", (64,), 0, 136224, None, False),
        ("output", (10,), 650, 136874, None, True)]
    assert steps[0].formula == "out = floor((32 + 2*1 - 3) / 1) + 1 = 32"
    assert steps[2].formula == "out = floor((32 + 2*0 - 2) / 2) + 1 = 16"
    model = layers.build(layers.DEFAULT, (3, 32, 32), 10)
    assert sum(p.numel() for p in model.parameters()) == 136874
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_linear_layer_on_feature_maps_gets_a_flatten_and_a_residual_block_its_shortcut():
    steps = layers.plan([{"type": "residual", "channels": 8}, {"type": "linear", "out": 5}], (1, 4, 4), 3)
    assert [(s.name, s.shape, s.auto) for s in steps] == [
        ("res1", (8, 4, 4), False), ("flatten", (128,), True), ("fc1", (5,), False), ("output", (3,), True)]
    assert steps[0].params == 8 * 1 * 9 + 2 * 8 + (1 * 8 + 2 * 8)     # conv (no bias), BN, 1x1 shortcut + BN
    assert steps[0].receptive == 3
    model = layers.build([{"type": "residual", "channels": 8}, {"type": "linear", "out": 5}], (1, 4, 4), 3)
    assert sum(p.numel() for p in model.parameters()) == steps[-1].total


@pytest.mark.parametrize("stack, words", [
    ([{"type": "conv", "out": 8, "kernel": 5}] + [{"type": "maxpool"}] * 5,
     "after pool5 the image is 0x0: its 2x2 window does not fit the 1x1 input; remove a pool or pad the convs"),
    ([{"type": "conv", "out": 8, "kernel": 31}],
     "after conv1 the image is 0x0: its 31x31 kernel does not fit the 28x28 input; use a smaller kernel"),
    ([{"type": "flatten"}, {"type": "conv"}],
     "conv1 comes after the image was flattened: a conv needs feature maps (channels x height x width); move it "
     "above the flatten"),
    ([{"type": "globalpool"}, {"type": "dropout2d"}], "drop1 comes after the image was flattened"),
    ([{"type": "maxpool", "kernel": 2, "padding": 2}], "pool1's padding 2 is more than half its 2x2 window"),
])
def test_what_does_not_fit_is_said_in_words_and_refused(stack, words):
    steps = layers.plan(stack, (1, 28, 28), 10)
    assert words in layers.problems(steps)[0]
    assert all(s.shape is None for s in steps[[i for i, s in enumerate(steps) if s.problem][0]:])
    with pytest.raises(ValueError) as refused:
        architectures.build_model("custom", (1, 28, 28), 10, {"layers": stack})
    assert words in str(refused.value)


@pytest.mark.parametrize("bad, words", [
    ([], "layers must be a non-empty list"),
    ([{"type": "pool"}], "layer 1: 'pool' is not a layer type; choose among: conv, maxpool"),
    ([{"type": "conv", "kernl": 3}], "layer 1 (conv): 'kernl' is not one of its settings (out, kernel, stride"),
    ([{"type": "conv"}, {"type": "conv", "out": 0}], "layer 2 (conv): out must be between 1 and 2,048, got 0"),
    ([{"type": "dropout", "p": 1}], "p must be in [0, 1), got 1"),
    ([{"type": "activation", "fn": "softmax"}], "fn must be one of relu, tanh, gelu"),
])
def test_a_malformed_list_is_refused_with_its_reason(bad, words):
    assert words in layers.problem(bad)
    from cnn_core.config import TrainConfig

    assert words in str(TrainConfig(dataset="mnist", arch="custom", arch_params={"layers": bad}).validate())


@pytest.mark.parametrize("arch", [a for a in architectures.ARCHITECTURES if a != "custom"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_registry_model_as_a_layer_list_rebuilds_to_the_same_size(arch, shape):
    model = architectures.build_model(arch, shape, 10)
    rebuilt = layers.build(layers.from_model(model), shape, 10)
    n, m = (sum(p.numel() for p in x.parameters()) for x in (model, rebuilt))
    assert m == n + (10 if arch == "fast-cnn" else 0)      # fast-cnn's output layer has no bias; the editor's has
    assert rebuilt(torch.zeros(2, *shape)).shape == (2, 10)


def test_the_tutorials_conv_and_dense_figures_are_the_true_ones():
    f = layers.conv_vs_dense((3, 32, 32))
    assert (f["conv"], f["dense"]) == (432, 49152)            # not 1728 and 9216
    conv = torch.nn.Conv2d(3, 16, 3)
    dense = torch.nn.Linear(3 * 32 * 32, 16)
    assert (conv.weight.numel(), dense.weight.numel()) == (432, 49152)


def test_train_with_a_layer_file_stores_the_list_and_reloads_the_model(tmp_path, runs_dir, capsys):
    stack = [{"type": "conv", "out": 8, "kernel": 3, "padding": 1}, {"type": "batchnorm"},
             {"type": "activation", "fn": "gelu"}, {"type": "maxpool"}, {"type": "residual", "channels": 12},
             {"type": "maxpool", "kernel": 3, "stride": 2, "padding": 1}, {"type": "dropout", "p": 0.1},
             {"type": "linear", "out": 32}, {"type": "activation", "fn": "relu"}]
    (tmp_path / "net.json").write_text(json.dumps(stack))
    code = main(["train", "--dataset", "mnist", "--layers", str(tmp_path / "net.json"), "--epochs", "2",
                 "--val-size", "100", "--batch-size", "32", "--lr", "0.05", "--quiet"])
    assert code == 0, capsys.readouterr().err
    (record,) = store.readable(store.list_runs(runs_dir))
    assert record.arch == "custom" and record.config["arch_params"] == {"layers": stack}
    assert record.summary["test_acc"] > 0.5, record.summary
    model = model_from_checkpoint(load_checkpoint(record.path / store.BEST))
    assert sum(p.numel() for p in model.parameters()) == layers.plan(stack, (1, 28, 28), 10)[-1].total
    (tmp_path / "bad.json").write_text(json.dumps([{"type": "conv", "kernel": 40}]))
    assert main(["train", "--dataset", "mnist", "--layers", str(tmp_path / "bad.json")]) == 2
    assert "layers: " in capsys.readouterr().err and len(store.list_runs(runs_dir)) == 1


def test_the_editor_adds_feature_map_layers_before_the_flatten_and_vector_layers_at_the_end():
    """Add in the layer editor: a conv, pool or batch norm goes in before the first flatten (or global pool),
    where the image still has its height and width; a linear or dropout layer at the end."""
    from ui.train.layer_editor import _add_at

    items = [{"type": "conv"}, {"type": "maxpool"}, {"type": "flatten"}, {"type": "linear"}]
    assert [_add_at(items, k) for k in ("maxpool", "conv", "batchnorm", "activation", "linear", "dropout")] == \
        [2, 2, 2, 2, 4, 4]
    assert _add_at([{"type": "conv"}, {"type": "globalpool"}], "conv") == 1 and _add_at([], "conv") == 0


@pytest.mark.parametrize("i, j, order", [
    (5, 1, "a f b c d e g"), (0, 6, "b c d e f g a"), (3, 3, "a b c d e f g"), (6, 0, "g a b c d e f"),
    (2, 3, "a b d c e f g")])
def test_move_layer_takes_one_item_to_any_position_and_keeps_the_others_in_order(i, j, order):
    """move_layer(rows, i, j): the item at i lands at j, in one move; the list given is left as it was."""
    rows = list("abcdefg")
    assert layers.move_layer(rows, i, j) == order.split()
    assert rows == list("abcdefg")


@pytest.mark.parametrize("i, j", [(0, 7), (7, 0), (-1, 2), (2, -1)])
def test_move_layer_refuses_a_position_outside_the_list_in_words(i, j):
    with pytest.raises(ValueError, match=r"positions run from 1 to 7"):
        layers.move_layer(list("abcdefg"), i, j)


def test_a_moved_list_is_planned_and_refused_like_any_other():
    """pool2 moved up four places keeps fitting (same parameters, smaller maps); the flatten moved to the
    top leaves the convs after it, which the plan says in words and build refuses."""
    up = layers.move_layer(layers.DEFAULT, 5, 1)
    steps = layers.plan(up, (1, 28, 28), 10)
    assert [s.name for s in steps] == ["conv1", "pool1", "act1", "pool2", "conv2", "act2", "flatten", "fc1", "act3",
                                       "output"]
    assert steps[4].shape == (32, 7, 7) and steps[-1].total == layers.plan(layers.DEFAULT, (1, 28, 28), 10)[-1].total
    top = layers.move_layer(layers.DEFAULT, 6, 0)
    assert layers.problem(top) is None
    assert "conv1 comes after the image was flattened" in layers.problems(layers.plan(top, (1, 28, 28), 10))[0]
    with pytest.raises(ValueError, match="conv1 comes after the image was flattened"):
        layers.build(top, (1, 28, 28), 10)
