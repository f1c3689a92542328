"""Tests for cnn_core.nets.architectures: registry, parameter checks, shape-inferring builder, layer tables."""
from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.nets.architectures import (
    ARCHITECTURES,
    build_model,
    conv_layers,
    get_architecture,
    layer_table,
    param_errors,
    resolve_params,
)

IDS = list(ARCHITECTURES)          # every architecture the registry holds: a new one is tested with no edit here
SHAPES = [(1, 28, 28), (3, 32, 32)]
CASES = [(a, s, k) for a in IDS for s in SHAPES for k in (10, 2)]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _build(arch, shape=(1, 28, 28), k=10, **params):
    return build_model(arch, shape, k, params or None)


# ---------------------------------------------------------------- registry


def test_registry_ids_are_short_names_with_your_own_layers_last():
    """Ids are short lowercase names (they go into run ids and URLs); the tutorials' models come first and
    "custom" (your own layers, the layer editor) last, the order the Train page lists them in."""
    assert all(re.fullmatch(r"[a-z][a-z0-9-]{1,20}", a) for a in IDS), IDS
    assert IDS[:2] == ["mlp", "lenet"] and IDS[-1] == "custom" and len(IDS) >= 8


@pytest.mark.parametrize("arch", IDS)
def test_defaults_are_valid_and_documented(arch):
    """Every parameter's default passes its own check and has a help sentence."""
    a = get_architecture(arch)
    defaults = {p.name: p.default for p in a.params}
    assert param_errors(arch, defaults) == {}
    assert resolve_params(arch) == defaults
    assert all(p.help.strip() for p in a.params)
    assert a.title and a.teaches


def test_some_model_explains_softmax_twice():
    """At least one model's `fixes` says Softmax before CrossEntropyLoss is softmax twice, and we output logits."""
    texts = [a.fixes for a in ARCHITECTURES.values()]
    assert any("softmax twice" in t.lower() and "logits" in t for t in texts)


@pytest.mark.parametrize("call", [
    lambda: get_architecture("vgg"),
    lambda: build_model("vgg", (1, 28, 28), 10),
    lambda: param_errors("vgg", {}),
    lambda: resolve_params("vgg"),
])
def test_unknown_arch_named_with_allowed_ids(call):
    """An unknown id raises ValueError naming it and listing every allowed id."""
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert "'vgg'" in msg and ", ".join(IDS) in msg


# ---------------------------------------------------------------- forward / backward


@pytest.mark.parametrize("arch,shape,k", CASES)
def test_forward_gives_logits(arch, shape, k):
    """A batch of images gives (B, num_classes) finite logits, not probabilities."""
    model = _build(arch, shape, k)
    out = model(torch.randn(3, *shape))
    assert out.shape == (3, k)
    assert torch.isfinite(out).all()
    assert model.input_shape == shape and model.num_classes == k


@pytest.mark.parametrize("arch,shape,k", CASES)
def test_backward_reaches_every_parameter(arch, shape, k):
    """Cross-entropy backward gives a finite gradient on every parameter."""
    model = _build(arch, shape, k)
    loss = F.cross_entropy(model(torch.randn(3, *shape)), torch.arange(3) % k)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("arch", IDS)
@pytest.mark.parametrize("shape", [(1, 16, 16), (3, 64, 48)])
def test_other_input_shapes(arch, shape):
    """Sizes are inferred, so smaller and non-square inputs work too."""
    assert _build(arch, shape, 4)(torch.randn(2, *shape)).shape == (2, 4)


@pytest.mark.parametrize("arch", IDS)
def test_no_softmax_module(arch):
    """Models output logits: no Softmax or LogSoftmax layer anywhere."""
    model = _build(arch)
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in model.modules())


# ---------------------------------------------------------------- true figures


def test_cifar_net_first_conv_has_448_params():
    """A 3->16 3x3 conv has 16*3*3*3 = 432 weights + 16 biases = 448 (its layer-table row too)."""
    model = _build("cifar-net", (3, 32, 32), 2)
    name, conv = conv_layers(model)[0]
    assert conv.weight.numel() == 432 and conv.bias.numel() == 16
    rows, _ = layer_table(model, (3, 32, 32))
    row = next(r for r in rows if r.name == f"features.{name}" or r.name == name)
    assert (row.kind, row.params, row.output_shape) == ("Conv2d", 448, (16, 32, 32))


def test_simple_cnn_fc_input_is_800_on_mnist():
    """conv3-pool-conv3-pool on 28x28 leaves 5x5, so the fc takes 32*5*5 = 800 (not 32*12*12)."""
    model = _build("simple-cnn", (1, 28, 28), 10)
    assert model.classifier.fc.in_features == 800


@pytest.mark.parametrize("shape,flat", [((1, 28, 28), 320), ((3, 32, 32), 500)])
def test_lenet_fc_input_computed(shape, flat):
    """LeNet's fc input is 20*4*4 = 320 on 28x28 and 20*5*5 = 500 on 32x32 (the example hard-codes 320)."""
    assert _build("lenet", shape).classifier.fc1.in_features == flat


def test_simple_cnn_layer_shapes_follow_formula():
    """Each row's output shape follows (H + 2P - K) / S + 1: 26, 13, 11, 5."""
    rows, _ = layer_table(_build("simple-cnn"), (1, 28, 28))
    shapes = {r.name.split(".")[-1]: r.output_shape for r in rows}
    assert shapes["conv1"] == (16, 26, 26) and shapes["pool1"] == (16, 13, 13)
    assert shapes["conv2"] == (32, 11, 11) and shapes["pool2"] == (32, 5, 5)
    assert shapes["flatten"] == (800,) and shapes["fc"] == (10,)


# ---------------------------------------------------------------- layer table / conv layers


@pytest.mark.parametrize("arch,shape,k", CASES[::2] + CASES[1::4])
def test_layer_table_counts_every_parameter(arch, shape, k):
    """The total equals sum(p.numel()), the rows sum to it, and the last row is (num_classes,)."""
    model = _build(arch, shape, k)
    rows, total = layer_table(model, shape)
    assert total == sum(p.numel() for p in model.parameters())
    assert sum(r.params for r in rows) == total
    assert rows[-1].output_shape == (k,)
    assert len({r.name for r in rows}) == len(rows)


def test_layer_table_keeps_mode_and_batch_norm_stats():
    """layer_table restores training mode and leaves BatchNorm running stats untouched."""
    model = _build("res-net-deep", (3, 32, 32), 2, n_blocks=2)
    bn = model.features.blocks[0].batch_norm
    before = bn.running_mean.clone()
    layer_table(model, (3, 32, 32))
    assert model.training
    assert torch.equal(bn.running_mean, before) and int(bn.num_batches_tracked) == 0


@pytest.mark.parametrize("arch", IDS)
def test_conv_layers_in_forward_order(arch):
    """conv_layers lists every Conv2d in the order a forward pass calls them."""
    model = _build(arch)
    called = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    model(torch.zeros(2, 1, 28, 28))
    for h in hooks:
        h.remove()
    assert [m for _, m in conv_layers(model)] == called


def test_res_net_small_matches_manual_netres():
    """res-net-small's features equal the book's NetRes forward written out by hand."""
    model = _build("res-net-small", (3, 32, 32), 2)
    f, x = model.features, torch.randn(2, 3, 32, 32)
    out = F.max_pool2d(torch.relu(F.conv2d(x, f.conv1.weight, f.conv1.bias, padding=1)), 2)
    out1 = F.max_pool2d(torch.relu(F.conv2d(out, f.conv2.weight, f.conv2.bias, padding=1)), 2)
    out = F.max_pool2d(torch.relu(F.conv2d(out1, f.conv3.weight, f.conv3.bias, padding=1)) + out1, 2)
    assert torch.allclose(f(x), out, atol=1e-6)
    assert model.classifier.fc1.in_features == 4 * 4 * 16


# ---------------------------------------------------------------- res-net-deep blocks


def test_res_net_deep_blocks_are_distinct():
    """The n blocks are n objects with their own weight storage."""
    blocks = list(_build("res-net-deep", n_blocks=5).features.blocks)
    assert len({id(b) for b in blocks}) == 5
    assert len({b.conv.weight.data_ptr() for b in blocks}) == 5


def test_res_net_deep_changing_one_block_leaves_others():
    """Editing block 0's conv weight changes no other block."""
    blocks = _build("res-net-deep", n_blocks=3).features.blocks
    before = [b.conv.weight.detach().clone() for b in blocks]
    with torch.no_grad():
        blocks[0].conv.weight.add_(1.0)
    assert not torch.equal(blocks[0].conv.weight, before[0])
    assert all(torch.equal(b.conv.weight, w) for b, w in zip(list(blocks)[1:], before[1:]))


def test_res_net_deep_params_grow_per_block():
    """Each extra block adds its own 9*n*n conv weights + 2*n BN params (shared weights would add none)."""
    n = 8
    counts = [sum(p.numel() for p in _build("res-net-deep", n_chans1=n, n_blocks=b).parameters()) for b in (1, 4)]
    assert counts[1] - counts[0] == 3 * (9 * n * n + 2 * n)


def test_res_net_deep_init():
    """BN weights start at 0.5, BN biases at 0, and block convs have no bias."""
    for b in _build("res-net-deep", n_blocks=4).features.blocks:
        assert torch.all(b.batch_norm.weight == 0.5) and torch.all(b.batch_norm.bias == 0)
        assert b.conv.bias is None


# ---------------------------------------------------------------- parameter switches


def test_dropout_adds_layers_only_when_on():
    """lenet with dropout 0.5 has Dropout2d and Dropout layers; with 0 it has none."""
    kinds = lambda m: {type(x) for x in m.modules()}  # noqa: E731
    assert not kinds(_build("lenet")) & {nn.Dropout, nn.Dropout2d}
    assert {nn.Dropout, nn.Dropout2d} <= kinds(_build("lenet", dropout=0.5))


@pytest.mark.parametrize("arch,n_bn", [("deep-cnn", 6), ("cifar-net", 2)])
def test_batch_norm_after_each_conv(arch, n_bn):
    """batch_norm=True puts one BatchNorm2d after each conv."""
    names = [n for n, _ in _build(arch, batch_norm=True).features.named_children()]
    bns = [i for i, n in enumerate(names) if n.startswith("bn")]
    assert len(bns) == n_bn and all(names[i - 1].startswith("conv") for i in bns)


def test_cifar_net_activation_choice():
    """activation='relu' replaces every Tanh with ReLU."""
    model = _build("cifar-net", (3, 32, 32), 2, activation="relu")
    assert not any(isinstance(m, nn.Tanh) for m in model.modules())
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 3


def test_deep_cnn_kernel_five_keeps_size():
    """kernel_size 5 with padding 2 keeps the size, so the fc input equals the 3x3 version's."""
    small, big = _build("deep-cnn", kernel_size=3), _build("deep-cnn", kernel_size=5)
    assert small.classifier.fc.in_features == big.classifier.fc.in_features == 64 * 7 * 7


# ---------------------------------------------------------------- bad parameters


@pytest.mark.parametrize("arch,params,field,fragments", [
    ("lenet", {"dropout": 1.5}, "dropout", ["dropout must be between 0 and 0.9", "1.5"]),
    ("mlp", {"hidden1": 4}, "hidden1", ["between 8 and 1,024", "4"]),
    ("mlp", {"hidden1": True}, "hidden1", ["whole number", "between 8 and 1,024"]),
    ("mlp", {"hidden1": 3.5}, "hidden1", ["whole number", "3.5"]),
    ("mlp", {"hidden1": "128"}, "hidden1", ["whole number", "'128'"]),
    ("cifar-net", {"dropout": float("nan")}, "dropout", ["number", "nan"]),
    ("res-net-deep", {"n_blocks": 0}, "n_blocks", ["between 1 and 100"]),
    ("deep-cnn", {"kernel_size": 4}, "kernel_size", ["one of 3, 5", "4"]),
    ("deep-cnn", {"batch_norm": 1}, "batch_norm", ["true or false"]),
    ("cifar-net", {"activation": "gelu"}, "activation", ["tanh, relu", "'gelu'"]),
    ("simple-cnn", {"depth": 3}, "depth", ["unknown parameter 'depth'", "allowed: width"]),
])
def test_param_errors_name_field_and_allowed(arch, params, field, fragments):
    """Each bad value gives one message, keyed by the field, naming it and what is allowed."""
    errors = param_errors(arch, params)
    assert list(errors) == [field]
    assert field in errors[field]
    for frag in fragments:
        assert frag in errors[field]


def test_param_errors_collects_every_error():
    """Several bad values give several messages; resolve_params and build_model raise with all of them."""
    bad = {"n_chans1": 1, "dropout": -0.1, "activation": "x"}
    assert set(param_errors("cifar-net", bad)) == set(bad)
    for call in (lambda: resolve_params("cifar-net", bad), lambda: _build("cifar-net", **bad)):
        with pytest.raises(ValueError) as e:
            call()
        assert all(name in str(e.value) for name in bad)


def test_resolve_params_coerces_kinds():
    """Integral floats become ints, ints become floats for float params, and defaults fill the rest."""
    got = resolve_params("deep-cnn", {"kernel_size": 5.0, "dropout": 0})
    assert got == {"kernel_size": 5, "dropout": 0.0, "batch_norm": False}
    assert type(got["kernel_size"]) is int and type(got["dropout"]) is float
    assert type(resolve_params("mlp", {"hidden1": 256.0})["hidden1"]) is int


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("arch,shape", [
    ("res-net-deep", (1, 2, 2)), ("deep-cnn", (1, 2, 2)), ("lenet", (1, 8, 8)),
    ("simple-cnn", (1, 4, 4)), ("res-net-small", (3, 7, 7)), ("cifar-net", (3, 3, 3)),
])
def test_input_too_small_names_arch_shape_and_minimum(arch, shape):
    """Too small an input names the arch, the shape and the layer; the minimum it suggests really builds."""
    with pytest.raises(ValueError) as e:
        _build(arch, shape)
    msg = str(e.value)
    assert msg.startswith(f"{arch} cannot take input {'x'.join(map(str, shape))}:")
    assert re.search(r"after \w+|at the input", msg) and "needs at least" in msg
    s = int(re.search(r"smallest square input it takes is (\d+)x\1", msg).group(1))
    _build(arch, (shape[0], s, s))
    with pytest.raises(ValueError):
        _build(arch, (shape[0], s - 1, s - 1))


@pytest.mark.parametrize("arch", ["res-net-deep", "deep-cnn"])
def test_four_by_four_still_fits_with_one_pixel_maps(arch):
    """Two 2x pools on 4x4 leave 1x1 maps, which is still a valid (if tiny) network."""
    model = _build(arch, (1, 4, 4), 3)
    assert model.features(torch.zeros(2, 1, 4, 4)).shape[-2:] == (1, 1)
    assert model(torch.randn(2, 1, 4, 4)).shape == (2, 3)


@pytest.mark.parametrize("k", [1, 0, -3, 2.5, True, "10"])
def test_bad_num_classes_refused(k):
    """num_classes must be an integer of at least 2."""
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", (1, 28, 28), k)


@pytest.mark.parametrize("shape", [(28, 28), (1, 0, 28), (1, 28.0, 28), "1x28x28", (1, 28, 28, 1), None])
def test_bad_input_shape_refused(shape):
    """input_shape must be three positive integers (C, H, W)."""
    with pytest.raises(ValueError, match="input_shape"):
        build_model("lenet", shape, 10)


# ---------------------------------------------------------------- boundaries


def test_build_leaves_batch_norm_untouched():
    """Building runs its shape probe in eval mode: BN stats stay at their initial values."""
    model = _build("deep-cnn", batch_norm=True)
    bn = model.features.bn1
    assert model.training
    assert torch.all(bn.running_mean == 0) and int(bn.num_batches_tracked) == 0


def test_library_does_not_import_streamlit():
    """cnn_core.nets.architectures imports without pulling in Streamlit."""
    code = "import sys, cnn_core.nets.architectures; assert 'streamlit' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_float_params_reject_infinity():
    """An infinite dropout is out of range, not accepted."""
    assert "dropout" in param_errors("lenet", {"dropout": math.inf})
