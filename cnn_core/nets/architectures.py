"""Architecture registry: the tutorials' seed models, their parameters, a shape-inferring builder, and layer tables.

A model's size (parameters, one batch's activations) is measured on PyTorch's meta device, where tensors
have shapes and no memory: a model over the limits (cnn_core.nets.limits) is
refused before any of it is allocated."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from cnn_core.core.settings import Setting
from cnn_core.nets import layers as layer_list
from cnn_core.nets import limits
from cnn_core.nets.blocks import (
    ClassifierNet,
    InputTooSmallError,
    NetResDeepFeatures,
    NetResFeatures,
    Whiten,
    seq,
)

Shape = tuple[int, int, int]  # (channels, height, width), no batch dimension


Param = Setting  # one knob of an architecture: Param(name, kind, default, low, high, choices, help, label)


@dataclass(frozen=True)
class Architecture:
    """A registry entry: what the model teaches, what it fixes, its parameters and its builder."""

    id: str
    title: str
    teaches: str  # one sentence: what this model teaches
    fixes: str  # what the tutorial got wrong and what this build does instead ("" if nothing)
    params: tuple[Param, ...]
    builder: Callable[..., nn.Module]  # builder(input_shape, num_classes, **params)


def _dropout(p: float, cls: type[nn.Module] = nn.Dropout) -> nn.Module | None:
    """A dropout layer, or None (left out of the model) when p is 0."""
    return cls(p) if p > 0 else None


def _act(name: str) -> nn.Module:
    return {"tanh": nn.Tanh, "relu": nn.ReLU}[name]()


# ---------------------------------------------------------------- builders


def _build_mlp(input_shape: Shape, num_classes: int, hidden1: int, hidden2: int) -> nn.Module:
    head = lambda n: seq(  # noqa: E731  n = C*H*W pixels
        flatten=nn.Flatten(),
        fc1=nn.Linear(n, hidden1), act1=nn.ReLU(),
        fc2=nn.Linear(hidden1, hidden2), act2=nn.ReLU(),
        fc3=nn.Linear(hidden2, num_classes),
    )
    return ClassifierNet(input_shape, num_classes, nn.Sequential(), head)  # no features: raw pixels


def _build_lenet(
    input_shape: Shape, num_classes: int,
    conv1_channels: int, conv2_channels: int, fc_width: int, dropout: float,
) -> nn.Module:
    # Order as in pytorch/examples: relu(max_pool(conv(x))), Dropout2d right after conv2.
    features = seq(
        conv1=nn.Conv2d(input_shape[0], conv1_channels, kernel_size=5), pool1=nn.MaxPool2d(2), act1=nn.ReLU(),
        conv2=nn.Conv2d(conv1_channels, conv2_channels, kernel_size=5), drop2=_dropout(dropout, nn.Dropout2d),
        pool2=nn.MaxPool2d(2), act2=nn.ReLU(),
    )
    head = lambda n: seq(  # noqa: E731  n = 20*4*4 = 320 on 1x28x28
        flatten=nn.Flatten(), fc1=nn.Linear(n, fc_width), act3=nn.ReLU(),
        drop3=_dropout(dropout), fc2=nn.Linear(fc_width, num_classes),
    )
    return ClassifierNet(input_shape, num_classes, features, head)


def _build_simple_cnn(input_shape: Shape, num_classes: int, width: int) -> nn.Module:
    features = seq(
        conv1=nn.Conv2d(input_shape[0], width, kernel_size=3), act1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(width, 2 * width, kernel_size=3), act2=nn.ReLU(), pool2=nn.MaxPool2d(2),
    )
    head = lambda n: seq(flatten=nn.Flatten(), fc=nn.Linear(n, num_classes))  # noqa: E731  n = 32*5*5 on 28x28
    return ClassifierNet(input_shape, num_classes, features, head)


def _build_deep_cnn(
    input_shape: Shape, num_classes: int, kernel_size: int, dropout: float, batch_norm: bool,
) -> nn.Module:
    layers: dict[str, nn.Module | None] = {}
    in_ch = input_shape[0]
    # (out_channels, pool after?) per conv; three stacks: [16, pool], [16, 32, 32, pool], [64, 64]
    plan = [(16, True), (16, False), (32, False), (32, True), (64, False), (64, False)]
    n_pools = 0
    for i, (out_ch, pool) in enumerate(plan, start=1):
        layers[f"conv{i}"] = nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2)  # 'same' size
        layers[f"bn{i}"] = nn.BatchNorm2d(out_ch) if batch_norm else None
        layers[f"act{i}"] = nn.ReLU()
        if pool:
            n_pools += 1
            layers[f"pool{n_pools}"] = nn.MaxPool2d(2)
        in_ch = out_ch
    head = lambda n: seq(  # noqa: E731  n = 64*7*7 on 28x28
        flatten=nn.Flatten(), drop=_dropout(dropout), fc=nn.Linear(n, num_classes),
    )
    return ClassifierNet(input_shape, num_classes, seq(**layers), head)


def _build_cifar_net(
    input_shape: Shape, num_classes: int,
    n_chans1: int, dropout: float, batch_norm: bool, activation: str,
) -> nn.Module:
    half = n_chans1 // 2
    features = seq(
        conv1=nn.Conv2d(input_shape[0], n_chans1, kernel_size=3, padding=1),
        bn1=nn.BatchNorm2d(n_chans1) if batch_norm else None,
        act1=_act(activation), pool1=nn.MaxPool2d(2), drop1=_dropout(dropout, nn.Dropout2d),
        conv2=nn.Conv2d(n_chans1, half, kernel_size=3, padding=1),
        bn2=nn.BatchNorm2d(half) if batch_norm else None,
        act2=_act(activation), pool2=nn.MaxPool2d(2), drop2=_dropout(dropout, nn.Dropout2d),
    )
    head = lambda n: seq(  # noqa: E731  n = 8*8*n_chans1//2 on 32x32
        flatten=nn.Flatten(), fc1=nn.Linear(n, 32), act3=_act(activation), fc2=nn.Linear(32, num_classes),
    )
    return ClassifierNet(input_shape, num_classes, features, head)


def _residual_head(num_classes: int) -> Callable[[int], nn.Module]:
    return lambda n: seq(flatten=nn.Flatten(), fc1=nn.Linear(n, 32), act=nn.ReLU(), fc2=nn.Linear(32, num_classes))


def _build_res_net_small(input_shape: Shape, num_classes: int, n_chans1: int) -> nn.Module:
    features = NetResFeatures(input_shape[0], n_chans1)
    return ClassifierNet(input_shape, num_classes, features, _residual_head(num_classes))


def _build_res_net_deep(input_shape: Shape, num_classes: int, n_chans1: int, n_blocks: int) -> nn.Module:
    features = NetResDeepFeatures(input_shape[0], n_chans1, n_blocks)
    return ClassifierNet(input_shape, num_classes, features, _residual_head(num_classes))


def _build_fast_cnn(input_shape: Shape, num_classes: int, width: int, stem: str, blocks: int) -> nn.Module:
    # After cifar10-airbench: a stem, then two or three blocks of conv, 2x2 max-pool, batch norm, GELU, conv,
    # batch norm, GELU (widths 2w, 4w, 4w); a global max-pool and one linear layer. Convs have no bias (the
    # batch norm after each one has it). The stems: patch and conv halve the image (w channels); full keeps
    # it (31x31, w channels); whiten is airbench's whitening conv (24 fixed filters for colour, 8 for grey)
    # and a 2x2 max-pool.
    c = input_shape[0]
    stems = {"patch": lambda: {"stem": nn.Conv2d(c, width, 2, stride=2, bias=False)},
             "conv": lambda: {"stem": nn.Conv2d(c, width, 3, padding=1, bias=False), "pool0": nn.MaxPool2d(2)},
             "full": lambda: {"stem": nn.Conv2d(c, width, 2, bias=False)},
             "whiten": lambda: {"stem": Whiten(c), "pool0": nn.MaxPool2d(2)}}
    layers = stems[stem]()
    out = layers["stem"].out_channels
    layers.update(bn0=nn.BatchNorm2d(out), act0=nn.GELU())
    pairs = ((out, 2 * width), (2 * width, 4 * width), (4 * width, 4 * width))[:blocks]
    for i, (a, b) in enumerate(pairs, start=1):
        layers.update({f"conv{i}a": nn.Conv2d(a, b, 3, padding=1, bias=False), f"pool{i}": nn.MaxPool2d(2),
                       f"bn{i}a": nn.BatchNorm2d(b), f"act{i}a": nn.GELU(),
                       f"conv{i}b": nn.Conv2d(b, b, 3, padding=1, bias=False), f"bn{i}b": nn.BatchNorm2d(b),
                       f"act{i}b": nn.GELU()})
    layers["gpool"] = nn.AdaptiveMaxPool2d(1)
    head = lambda n: seq(flatten=nn.Flatten(), fc=nn.Linear(n, num_classes, bias=False))  # noqa: E731  n = 4w
    return ClassifierNet(input_shape, num_classes, seq(**layers), head)


def _build_custom(input_shape: Shape, num_classes: int, layers: list) -> nn.Module:
    return layer_list.build(layers, input_shape, num_classes)


# ---------------------------------------------------------------- registry

_DROPOUT_HELP = "Fraction of {what} zeroed at random during training (0 = off); fights overfitting."


def _dropout_param(what: str) -> Param:
    return Param("dropout", "float", 0.0, 0.0, 0.9, help=_DROPOUT_HELP.format(what=what), label="Dropout")


_ARCHS = [
    Architecture(
        "mlp", "Multi-layer perceptron (no convolutions)",
        "An image flattened into a vector loses its 2-D layout; a dense net still learns MNIST, with many weights.",
        "Tutorials end the model with nn.Softmax and then train with CrossEntropyLoss, which applies "
        "(log-)softmax again: softmax twice. This model outputs logits; CrossEntropyLoss does the softmax "
        "(log_softmax pairs with NLLLoss).",
        (
            Param("hidden1", "int", 128, 8, 1024, help="Units (neurons) in the first hidden layer.",
                  label="Hidden units, layer 1"),
            Param("hidden2", "int", 64, 8, 1024, help="Units (neurons) in the second hidden layer.",
                  label="Hidden units, layer 2"),
        ),
        _build_mlp,
    ),
    Architecture(
        "lenet", "LeNet-style CNN (PyTorch MNIST example)",
        "Two conv+pool stages find local patterns with far fewer weights than a dense layer.",
        "The example hard-codes x.view(-1, 320), which fits only 28x28 inputs; here the fc input is "
        "computed from the input (320 on 1x28x28, 500 on 3x32x32).",
        (
            Param("conv1_channels", "int", 10, 1, 128, help="Filters in the first conv layer (5x5 each).",
                  label="Conv1 filters"),
            Param("conv2_channels", "int", 20, 1, 256, help="Filters in the second conv layer (5x5 each).",
                  label="Conv2 filters"),
            Param("fc_width", "int", 50, 8, 1024, help="Units in the hidden fully connected layer.",
                  label="Hidden units (fc1)"),
            _dropout_param("conv2 channels (Dropout2d) and hidden units (Dropout before the last layer)"),
        ),
        _build_lenet,
    ),
    Architecture(
        "simple-cnn", "Simple CNN (two 3x3 convs)",
        "Each 3x3 conv trims 2 pixels and each pool halves: (H + 2P - K) / S + 1 sets the fc input size.",
        "The tutorial sizes the fc input as 32*12*12; the true size after conv3-pool-conv3-pool on 28x28 "
        "is 32*5*5 = 800, computed here from the input.",
        (Param("width", "int", 16, 1, 128, help="Filters in the first conv; the second conv has twice as many.",
               label="Conv1 filters (width)"),),
        _build_simple_cnn,
    ),
    Architecture(
        "deep-cnn", "Deeper CNN (six convs, three stacks)",
        "Stacking convs with 'same' padding grows the receptive field without shrinking the image.",
        "",
        (
            Param("kernel_size", "choice", 3, choices=(3, 5),
                  help="Side of each square conv kernel in pixels; padding k//2 keeps the size.", label="Kernel size"),
            _dropout_param("flattened features (Dropout before the final layer)"),
            Param("batch_norm", "bool", False, help="Add BatchNorm2d after every conv to steady training.",
                  label="Batch norm"),
        ),
        _build_deep_cnn,
    ),
    Architecture(
        "cifar-net", "CIFAR net (two convs, width n_chans1)",
        "A small width-parameterised conv net; try tanh vs relu, dropout and batch norm on CIFAR-2.",
        "The tutorial's forward read `n_chans1` instead of `self.n_chans1` (NameError), and its "
        "Sequential version lacked nn.Flatten before the first Linear; both are correct here.",
        (
            Param("n_chans1", "int", 16, 2, 256, label="Conv1 filters (n_chans1)",
                  help="Filters in the first conv; the second conv has half as many."),
            _dropout_param("channels after each conv block (Dropout2d)"),
            Param("batch_norm", "bool", False, help="Add BatchNorm2d after each conv to steady training.",
                  label="Batch norm"),
            Param("activation", "choice", "tanh", choices=("tanh", "relu"), label="Activation",
                  help="Non-linearity after each layer: tanh (as in the book) or relu."),
        ),
        _build_cifar_net,
    ),
    Architecture(
        "res-net-small", "Small residual net (the book's NetRes)",
        "A skip connection adds a layer's input to its output, so gradients reach early layers more easily.",
        "The book hard-codes the fc input as 4*4*n_chans1//2, which fits only 32x32; here it is computed "
        "from the input.",
        (Param("n_chans1", "int", 32, 2, 256, label="Conv1 filters (n_chans1)",
               help="Filters in the first conv; the later convs have half as many."),),
        _build_res_net_small,
    ),
    Architecture(
        "res-net-deep", "Deep residual net (n ResBlocks with batch norm)",
        "Residual blocks with batch norm let a net be many layers deep and still train.",
        "`n_blocks * [ResBlock(n)]` repeats ONE block (one set of weights) n times; here n distinct blocks "
        "are built (`nn.Sequential(*(ResBlock(n) for _ in range(n_blocks)))`). The fc input "
        "(`8*8*n_chans1` in the book) is computed from the input.",
        (
            Param("n_chans1", "int", 32, 2, 256, label="Channels (n_chans1)",
                  help="Channels in the stem conv and in every residual block."),
            Param("n_blocks", "int", 10, 1, 100, label="Residual blocks",
                  help="Number of residual blocks (each one conv + batch norm)."),
        ),
        _build_res_net_deep,
    ),
    Architecture(
        "fast-cnn", "Fast CNN (after cifar10-airbench)",
        "Batch norm after every conv, GELU and a global max-pool let a small net take a high learning rate and "
        "learn in a few epochs: the fast presets use it.",
        "",
        (Param("width", "int", 16, 8, 128, label="Width",
               help="Channels of the stem; the two blocks after it have 2x and 4x as many."),
         Param("stem", "choice", "patch", choices=("patch", "conv", "full", "whiten"), label="Stem",
               help="patch: a 2x2 conv with stride 2; conv: a 3x3 conv, then a 2x2 max-pool (both halve the "
                    "image); full: a 2x2 conv that keeps the size (32x32 becomes 31x31); whiten: airbench's "
                    "2x2 whitening filters, set from the training images and not learned, then a 2x2 max-pool."),
         Param("blocks", "int", 2, 2, 3, label="Blocks",
               help="Blocks after the stem, each two convs and a 2x2 max-pool (widths 2x, 4x, then 4x again)."),),
        _build_fast_cnn,
    ),
    Architecture(
        "custom", "Your own layers (layer editor)",
        "Build the network layer by layer: after each one you see its output shape, its parameters and how "
        "much of the image one value sees; what does not fit is said in words.",
        "",
        (Param("layers", "layers", layer_list.DEFAULT, checker=layer_list.problem, label="Layers",
               help="The layer list: conv, pools, batch norm, dropout, activations, residual blocks, flatten, "
                    "global pooling, linear. The output layer (to the classes) is added for you."),),
        _build_custom,
    ),
]

ARCHITECTURES: dict[str, Architecture] = {a.id: a for a in _ARCHS}  # insertion order = UI order


def get_architecture(arch_id: str) -> Architecture:
    """The registry entry for `arch_id`; ValueError naming the allowed ids otherwise."""
    if arch_id not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch_id!r}; choose one of: {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch_id]


# ---------------------------------------------------------------- parameters


def param_errors(arch_id: str, params: dict | None) -> dict[str, str]:
    """Field -> message for every bad parameter (unknown, wrong type, NaN, out of range); {} when all fine."""
    arch = get_architecture(arch_id)
    if params is None:
        return {}
    if not isinstance(params, dict):
        return {"params": f"params must be a dict of name -> value, got {type(params).__name__}"}
    known = {p.name: p for p in arch.params}
    errors: dict[str, str] = {}
    for name, value in params.items():
        if name not in known:
            allowed = ", ".join(known) or "none"
            errors[str(name)] = f"unknown parameter {name!r} for {arch_id}; allowed: {allowed}"
        elif (msg := known[name].check(value)) is not None:
            errors[name] = msg
    return errors


def resolve_params(arch_id: str, params: dict | None = None) -> dict:
    """All parameters of `arch_id` in declared order: defaults filled in, values coerced to their kind."""
    arch = get_architecture(arch_id)
    errors = param_errors(arch_id, params)
    if errors:
        raise ValueError(f"bad parameters for {arch_id}: " + "; ".join(errors.values()))
    given = params or {}
    return {p.name: p.coerce(given.get(p.name, p.default)) for p in arch.params}


# ---------------------------------------------------------------- building


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def on_meta():
    """A `with` block in which models are built on the meta device: shapes and counts, no memory. The
    default device is per thread, so other threads (other Streamlit sessions) are not affected."""
    return torch.device("meta")


def build_model(
    arch_id: str, input_shape: Shape, num_classes: int, params: dict | None = None, meta: bool = False,
) -> nn.Module:
    """A fresh model of `arch_id` for (C, H, W) inputs; it outputs logits of shape (B, num_classes).
    meta (or inside `on_meta()`): on the meta device, shapes and counts only. Otherwise the parameters are
    counted on meta first, and a model over the limit is refused (ValueError) before it is allocated."""
    with on_meta():
        shapes = _build(arch_id, input_shape, num_classes, params)
    if meta or torch.get_default_device().type == "meta":
        return shapes
    if why := limits.params_problem(sum(p.numel() for p in shapes.parameters())):
        raise ValueError(why)
    return _build(arch_id, input_shape, num_classes, params)


def _build(arch_id: str, input_shape: Shape, num_classes: int, params: dict | None) -> nn.Module:
    arch = get_architecture(arch_id)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3 or not all(_is_int(s) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (channels, height, width) of positive integers, got {input_shape!r}")
    if not _is_int(num_classes) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}")
    shape = tuple(int(s) for s in shape)
    resolved = resolve_params(arch_id, params)
    try:
        return arch.builder(shape, int(num_classes), **resolved)
    except InputTooSmallError as e:
        raise ValueError(f"{arch_id} cannot take input {layer_list.shape_text(shape)}: {e}") from None


def count_params(arch_id: str, input_shape: Shape, num_classes: int, params: dict | None = None) -> int:
    """The number of weights and biases of the model build_model makes (counted on meta: nothing allocated)."""
    return sum(p.numel() for p in build_model(arch_id, input_shape, num_classes, params, meta=True).parameters())


def activation_values(model: nn.Module, input_shape: Shape) -> int:
    """Activations of one image a training step keeps for the backward pass, as layers.activation_values
    counts them from a plan: the input and the output of every leaf module but the views (Flatten,
    Identity, an empty Sequential). `model` on meta: one forward there, nothing allocated."""
    counted = [math.prod(input_shape)]
    hook = lambda _m, _in, out: counted.append(out.numel()) if isinstance(out, torch.Tensor) else None  # noqa: E731
    handles = [m.register_forward_hook(hook) for m in model.modules()
               if next(m.children(), None) is None and not isinstance(m, (nn.Flatten, nn.Identity, *_CONTAINERS))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device="meta"))    # (1, C, H, W): one image
    finally:
        for h in handles:
            h.remove()
    return sum(counted)


def size_problems(arch_id: str, input_shape: Shape, num_classes: int, params: dict | None = None,
                  batch_size: int | None = None) -> list[str]:
    """What is over the size limits (parameters; with batch_size, one training batch's activations), in
    words; [] when the model is within them. Measured on meta. ValueError when the model cannot be built."""
    model = build_model(arch_id, input_shape, num_classes, params, meta=True)
    found = [limits.params_problem(sum(p.numel() for p in model.parameters()))]
    if batch_size:
        found.append(limits.activations_problem(activation_values(model, tuple(input_shape)), batch_size))
    return [f for f in found if f]


# ---------------------------------------------------------------- inspection


@dataclass
class LayerRow:
    """One leaf layer: its dotted name, class, output shape (no batch dim) and own parameter count."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    trainable: bool = True
    settings: str = ""  # conv and pool: "5×5, stride 1, pad 0"


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def layer_settings(module: nn.Module) -> str:
    """Kernel, stride and padding of a conv or pooling layer, as the output-size formula uses them."""
    if not isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        return ""
    (kh, kw), (sh, sw), (ph, pw) = _pair(module.kernel_size), _pair(module.stride), _pair(module.padding)
    text = lambda a, b: f"{a}" if a == b else f"{a}×{b}"  # noqa: E731
    return f"{kh}×{kw}, stride {text(sh, sw)}, pad {text(ph, pw)}"


_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def layer_table(model: nn.Module, input_shape: Shape | None = None) -> tuple[list[LayerRow], int]:
    """One row per leaf module in forward order, and the model's total parameter count.

    Runs one (1, *input_shape) zeros input in eval mode under no_grad (torchinfo.summary); the model's
    mode is restored. `input_shape` defaults to `model.input_shape`.
    """
    # Imported here so that training and the CLI neither need nor load it; it costs ~4 ms once torch
    # is loaded (python -X importtime: torchinfo 3.7-4.6 ms cumulative, torch ~2.1 s).
    import torchinfo
    from torchinfo.torchinfo import clear_cached_forward_pass

    shape = tuple(input_shape if input_shape is not None else model.input_shape)
    first = next(model.parameters(), None)
    # input_data, not input_size: torchinfo then neither moves the model to cuda nor draws torch.rand.
    x = torch.zeros(1, *shape, device=first.device if first is not None else "cpu",
                    dtype=first.dtype if first is not None else torch.float32)
    layers = torchinfo.summary(model, input_data=x, verbose=0).summary_list
    clear_cached_forward_pass()  # summary keeps the last summary_list (and so the model) in a global
    names = {id(m): name for name, m in model.named_modules() if name}
    rows: list[LayerRow] = []
    for info in layers:  # one entry per call: a module called twice gets one row
        if info.layer_id in names and info.is_leaf_layer and not isinstance(info.module, _CONTAINERS):
            rows.append(LayerRow(
                names.pop(info.layer_id), info.class_name, tuple(info.output_size[1:]), info.num_params,
                info.trainable_params == info.num_params, layer_settings(info.module),
            ))
    return rows, sum(p.numel() for p in model.parameters())


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """The named Conv2d modules in forward order (registry models register layers in forward order)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]
