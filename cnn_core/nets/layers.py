"""Your own network as a list of layers: each a dict such as {"type": "conv", "out": 16, "kernel": 3,
"stride": 1, "padding": 1}. `plan` walks the list for an input shape without torch: after every layer its
output shape, its parameters and the running total, the output-size formula with this layer's numbers,
the receptive field, and in words what does not fit. `build` makes the torch model (a ClassifierNet, like
every registry model), `from_model` turns a registry model into its layer list (the editor's starting
points). A custom run stores its list in run.json (arch "custom", arch_params {"layers": [...]}), so it
trains, resumes, inspects and exports like the presets.

The editor adds two layers itself, marked `auto`: a flatten before the first linear layer when the
features are still an image, and the output layer (linear to the number of classes, logits, no softmax).

Size limits (nets/limits.py) are checked from counts alone, before anything is allocated:
`problem` refuses a list whose parameters pass the limit whatever the image, `size_problems` a plan whose
parameters or one training batch's activations do.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from cnn_core.core.settings import Setting
from cnn_core.nets.limits import activations_problem, params_problem

MAX_LAYERS = 200
# name -> its torch.nn class (looked up only when a model is built: `plan` needs no torch)
TORCH_ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "sigmoid": "Sigmoid", "leaky_relu": "LeakyReLU",
                     "elu": "ELU", "silu": "SiLU"}
ACTIVATIONS = tuple(TORCH_ACTIVATIONS)

_I = lambda name, default, low, high, help: Setting(name, "int", default, low, high, help=help)  # noqa: E731
_KERNEL = _I("kernel", 3, 1, 31, "side of the square kernel, in pixels")
_STRIDE = _I("stride", 1, 1, 16, "step between two kernel positions")
_PAD = _I("padding", 0, 0, 15, "zeros added on every side first")
_BIAS = Setting("bias", "bool", True, help="a learned offset per output")
_P = Setting("p", "float", 0.5, 0.0, 1.0, high_open=True, help="fraction zeroed at random in training")
_POOL = (_I("kernel", 2, 1, 31, "window side"), _I("stride", 2, 1, 16, "step between windows"),
         _I("padding", 0, 0, 15, "zeros added on every side (at most half the window)"))

# type -> (its fields, what it does in one line)
TYPES: dict[str, tuple[tuple[Setting, ...], str]] = {
    "conv": ((_I("out", 16, 1, 2048, "filters (output channels)"), _KERNEL, _STRIDE, _PAD, _BIAS),
             "slides out filters of in x K x K weights over the image"),
    "maxpool": (_POOL, "keeps the largest value of each window"),
    "avgpool": (_POOL, "averages each window"),
    "batchnorm": ((), "normalises each channel over the batch, then scales and shifts it (2 weights a channel)"),
    "dropout": ((_P,), "zeroes values at random in training"),
    "dropout2d": ((Setting("p", "float", 0.2, 0.0, 1.0, high_open=True, help="fraction of channels zeroed"),),
                  "zeroes whole channels at random in training"),
    "activation": ((Setting("fn", "choice", "relu", choices=ACTIVATIONS, help="the non-linearity"),),
                   "a non-linearity, value by value"),
    "residual": ((_I("channels", 32, 1, 2048, "output channels"),
                  Setting("batch_norm", "bool", True, help="batch norm after the conv")),
                 "conv 3x3 (padding 1), batch norm, relu, plus its input (the shortcut: a 1x1 conv when the "
                 "channels change)"),
    "flatten": ((), "lays the feature maps out as one vector"),
    "globalpool": ((Setting("mode", "choice", "avg", choices=("avg", "max"), help="average or largest value"),),
                   "one value per channel: the average (or largest) over the whole map"),
    "linear": ((_I("out", 64, 1, 65536, "units"), _BIAS), "every input to every unit: in x out weights"),
}
PREFIX = {"conv": "conv", "maxpool": "pool", "avgpool": "pool", "batchnorm": "bn", "dropout": "drop",
          "dropout2d": "drop", "activation": "act", "residual": "res", "flatten": "flatten",
          "globalpool": "gpool", "linear": "fc"}
FLAT = ("flatten", "globalpool", "linear")        # after one of these the features are a vector
NOT_REACHED = "not reached: a layer above does not fit"   # the problem of every layer after one that does not

DEFAULT = [{"type": "conv", "out": 16, "kernel": 3, "padding": 1}, {"type": "activation", "fn": "relu"},
           {"type": "maxpool"}, {"type": "conv", "out": 32, "kernel": 3, "padding": 1},
           {"type": "activation", "fn": "relu"}, {"type": "maxpool"}, {"type": "flatten"},
           {"type": "linear", "out": 64}, {"type": "activation", "fn": "relu"}]


def full(layer: dict) -> dict:
    """The layer with every field: the defaults filled in (a pool's stride defaults to its kernel)."""
    out = {"type": layer["type"]}
    for s in TYPES[layer["type"]][0]:
        out[s.name] = layer.get(s.name, s.default)
    if layer["type"] in ("maxpool", "avgpool") and "stride" not in layer:
        out["stride"] = out["kernel"]
    return out


def problem(layers) -> str | None:
    """What is wrong with the list itself (not a list, an unknown type or field, a bad value), each
    layer named by its place; None when every layer is well formed. Shapes are `plan`'s."""
    if not isinstance(layers, list) or not layers:
        return "layers must be a non-empty list of layers, each like {\"type\": \"conv\", \"out\": 16}"
    if len(layers) > MAX_LAYERS:
        return f"at most {MAX_LAYERS} layers, got {len(layers)}"
    found = []
    for i, layer in enumerate(layers, start=1):
        if not isinstance(layer, dict) or layer.get("type") not in TYPES:
            kind = layer.get("type") if isinstance(layer, dict) else layer
            found.append(f"layer {i}: {kind!r} is not a layer type; choose among: {', '.join(TYPES)}")
            continue
        known = {s.name: s for s in TYPES[layer["type"]][0]}
        for key, value in layer.items():
            if key == "type":
                continue
            if key not in known:
                found.append(f"layer {i} ({layer['type']}): {key!r} is not one of its settings"
                             + (f" ({', '.join(known)})" if known else " (it has none)"))
            elif (msg := known[key].check(value)) is not None:
                found.append(f"layer {i} ({layer['type']}): {msg}")
    if not found and (why := params_problem(params_at_least(layers), at_least=True)):
        found.append(why)
    return "; ".join(found) or None


def move_layer(rows: list, i: int, j: int) -> list:
    """A copy of `rows` with the item at index i moved to index j, the others in their order: the editor's
    "Move to position" (a layer list, or its row ids alongside). The moved list is `problem`'s and `plan`'s
    to judge like any other (a conv moved below the flatten is said not to fit)."""
    if not (0 <= i < len(rows) and 0 <= j < len(rows)):
        raise ValueError(f"cannot move the layer at position {i + 1} to position {j + 1}: "
                         f"positions run from 1 to {len(rows)}")
    out = list(rows)
    out.insert(j, out.pop(i))
    return out


def read_file(path: Path) -> list:
    """A layer list from a JSON file: the list itself, or an object with "layers" (a run's arch_params)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    layers = data.get("layers") if isinstance(data, dict) else data
    if (why := problem(layers)) is not None:
        raise ValueError(f"{path}: {why}")
    return layers


# ---- the plan: shapes, parameters, formulas, receptive fields --------------------------------------------

@dataclass
class Step:
    name: str                   # conv1, pool2, fc1, output
    type: str
    text: str                   # "conv 3x3, 16 filters, stride 1, pad 1"
    shape: tuple | None         # after this layer: (C, H, W) or (N,); None once something did not fit
    params: int
    total: int                  # parameters up to and including this layer
    formula: str = ""           # conv, pool: out = floor((H + 2P - K) / S) + 1 with this layer's numbers
    receptive: int | None = None  # the input pixels (a side) one output value sees; None: the whole image
    problem: str | None = None
    auto: bool = False          # added by the editor (a flatten before a linear layer, the output layer)
    values: int = 0             # activations of one image it keeps for the backward pass (its outputs)


def _side(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def shape_text(shape: tuple) -> str:
    """(1, 28, 28) -> "1x28x28"."""
    return "x".join(map(str, shape))


def plan(layers: list, input_shape: tuple, num_classes: int) -> list[Step]:
    """One Step per layer (and the editor's own), in order. Once a layer does not fit, the ones after it
    have no shape. Call `problem(layers)` first: this expects well-formed layers."""
    shape, total, field, jump = tuple(input_shape), 0, 1, 1
    counts: dict[str, int] = {}
    steps: list[Step] = []

    def add(step: Step) -> None:
        nonlocal total
        total += step.params
        step.total = total
        steps.append(step)

    def name_of(kind: str) -> str:
        prefix = PREFIX[kind]
        counts[prefix] = counts.get(prefix, 0) + 1
        return prefix if kind in ("flatten", "globalpool") and counts[prefix] == 1 else f"{prefix}{counts[prefix]}"

    def flatten(auto: bool, why: str = "") -> None:
        nonlocal shape
        n = math.prod(shape)
        add(Step(name_of("flatten"), "flatten", f"flatten ({why})" if auto else "flatten", (n,), 0, 0,
                 f"{' x '.join(map(str, shape))} = {n:,} values", None, auto=auto))
        shape = (n,)

    for raw in layers:
        layer = full(raw)
        kind = layer["type"]
        if shape is None:
            steps.append(Step(name_of(kind), kind, _describe(layer), None, 0, total,
                              problem=NOT_REACHED))
            continue
        image = len(shape) == 3
        if kind == "flatten" and image:
            flatten(False)
            continue
        if kind == "linear" and image:
            flatten(True, "added: a linear layer takes a vector")
            image = False
        name = name_of(kind)
        step = Step(name, kind, _describe(layer), shape, 0, 0, receptive=field if image else None)
        copies = 1                      # outputs of this size it makes (a residual block: several)
        if kind in ("conv", "maxpool", "avgpool", "residual", "dropout2d", "globalpool") and not image:
            step.problem = (f"{name} comes after the image was flattened: a {kind} needs feature maps "
                            "(channels x height x width); move it above the flatten (or global pool)")
        elif kind in ("conv", "maxpool", "avgpool"):
            c, h, w = shape
            k, s, p = layer["kernel"], layer["stride"], layer["padding"]
            oh, ow = _side(h, k, s, p), _side(w, k, s, p)
            step.formula = f"out = floor(({h} + 2*{p} - {k}) / {s}) + 1 = {oh}" + (
                "" if h == w else f"; width: floor(({w} + 2*{p} - {k}) / {s}) + 1 = {ow}")
            if kind != "conv" and 2 * p > k:
                step.problem = f"{name}'s padding {p} is more than half its {k}x{k} window; torch refuses it"
            elif oh < 1 or ow < 1:
                size = f"{max(oh, 0)}x{max(ow, 0)}"
                step.problem = (f"after {name} the image is {size}: its {k}x{k} {'kernel' if kind == 'conv' else 'window'}"
                                f" does not fit the {h}x{w} input; " + ("use a smaller kernel, pad it, or remove a "
                                "pool above" if kind == "conv" else "remove a pool or pad the convs"))
            else:
                out_c = layer["out"] if kind == "conv" else c
                step.params = out_c * c * k * k + (out_c if layer["bias"] else 0) if kind == "conv" else 0
                shape = (out_c, oh, ow)
                field, jump = field + (k - 1) * jump, jump * s
        elif kind == "residual":
            c, h, w = shape
            ch, bn = layer["channels"], layer["batch_norm"]
            step.params = ch * c * 9 + (0 if bn else ch) + (2 * ch if bn else 0) + (0 if ch == c else c * ch + 2 * ch)
            step.formula = f"3x3 conv, padding 1: out = floor(({h} + 2*1 - 3) / 1) + 1 = {h}; plus the input" + (
                "" if ch == c else f" through a 1x1 conv ({c} -> {ch} channels)")
            shape, field = (ch, h, w), field + 2 * jump
            copies = 2 + bn + (0 if ch == c else 2)      # conv, (BN), ReLU; the shortcut's conv and BN
        elif kind == "batchnorm":
            step.params = 2 * shape[0]
        elif kind == "globalpool":
            step.formula = f"{shape_text(shape)} -> {shape[0]} values, one per channel"
            shape = (shape[0],)
        elif kind == "linear":
            n = shape[0]
            step.params = n * layer["out"] + (layer["out"] if layer["bias"] else 0)
            step.formula = f"{n:,} x {layer['out']:,} weights" + (f" + {layer['out']:,} biases" if layer["bias"] else "")
            shape = (layer["out"],)
        if step.problem:
            shape = None
        step.shape = shape
        step.receptive = field if shape is not None and len(shape) == 3 else None
        step.values = copies * math.prod(shape) if shape is not None and kind != "flatten" else 0  # a view: none
        add(step)
    if shape is not None:
        if len(shape) == 3:
            flatten(True, "added before the output layer")
        n = shape[0]
        add(Step("output", "linear", f"linear to {num_classes} classes (logits; the loss applies the softmax)",
                 (num_classes,), n * num_classes + num_classes, 0,
                 f"{n:,} x {num_classes} weights + {num_classes} biases", None, auto=True, values=num_classes))
    return steps


def problems(steps: list[Step]) -> list[str]:
    return [s.problem for s in steps if s.problem and s.problem != NOT_REACHED]


# ---- size: parameters and activations against the limits (nets/limits.py) -----------------------------

def params_at_least(layers: list) -> int:
    """The parameters the (well-formed) list has whatever the image: each layer's input counted as the
    fewest values it can have (one channel, a 1x1 image, two classes). 25 linear layers of 65,536 units
    have over 10^11 with no input shape known."""
    width, total = 1, 0                 # the fewest channels (or values) reaching this layer
    for raw in layers:
        layer = full(raw)
        kind = layer["type"]
        if kind == "conv":
            total += layer["out"] * width * layer["kernel"] ** 2 + (layer["out"] if layer["bias"] else 0)
            width = layer["out"]
        elif kind == "residual":        # its shortcut left out: with the true channels it may be none
            ch = layer["channels"]
            total += ch * width * 9 + (2 * ch if layer["batch_norm"] else ch)
            width = ch
        elif kind == "batchnorm":
            total += 2 * width
        elif kind == "linear":
            total += width * layer["out"] + (layer["out"] if layer["bias"] else 0)
            width = layer["out"]
    return total + width * 2 + 2        # the output layer


def activation_values(steps: list[Step], input_shape: tuple) -> int:
    """Activations of one image a training step keeps: the input and every layer's outputs."""
    return math.prod(input_shape) + sum(s.values for s in steps)


def size_problems(steps: list[Step], input_shape: tuple, batch_size: int | None = None) -> list[str]:
    """What of a plan that fits is over the size limits (parameters; with batch_size, activations)."""
    if not steps or steps[-1].shape is None:
        return []
    found = [params_problem(steps[-1].total)]
    if batch_size:
        found.append(activations_problem(activation_values(steps, input_shape), batch_size))
    return [f for f in found if f]


def _describe(layer: dict) -> str:
    kind = layer["type"]
    if kind == "conv":
        return (f"conv {layer['kernel']}x{layer['kernel']}, {layer['out']} filters, stride {layer['stride']}, "
                f"pad {layer['padding']}" + ("" if layer["bias"] else ", no bias"))
    if kind in ("maxpool", "avgpool"):
        return f"{kind[:3]} pool {layer['kernel']}x{layer['kernel']}, stride {layer['stride']}" + (
            f", pad {layer['padding']}" if layer["padding"] else "")
    if kind in ("dropout", "dropout2d"):
        return f"{kind} p={layer['p']:g}"
    if kind == "activation":
        return layer["fn"]
    if kind == "residual":
        return f"residual block, {layer['channels']} channels" + ("" if layer["batch_norm"] else ", no batch norm")
    if kind == "globalpool":
        return f"global {layer['mode']} pool"
    if kind == "linear":
        return f"linear, {layer['out']} units" + ("" if layer["bias"] else ", no bias")
    return kind


# ---- torch ---------------------------------------------------------------------------------------------

def build(layers: list, input_shape: tuple, num_classes: int):
    """The model (a blocks.ClassifierNet: `features` up to the first flat layer, `classifier` after it,
    ending in the output layer). ValueError with the plan's first problem when something does not fit."""
    from torch import nn

    from cnn_core.nets.blocks import ClassifierNet, Residual, seq

    if (why := problem(layers)) is not None:
        raise ValueError(why)
    steps = plan(layers, input_shape, num_classes)
    if found := problems(steps):
        raise ValueError(found[0])
    features, classifier = {}, {}
    shape = tuple(input_shape)
    raw = iter(full(layer) for layer in layers)
    for step in steps:
        layer = next(raw) if not step.auto else {"type": step.type}
        kind, image = step.type, len(shape) == 3
        if step.name == "output":
            module = nn.Linear(shape[0], num_classes)
        elif kind == "conv":
            module = nn.Conv2d(shape[0], layer["out"], layer["kernel"], layer["stride"], layer["padding"],
                               bias=layer["bias"])
        elif kind in ("maxpool", "avgpool"):
            cls = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            module = cls(layer["kernel"], layer["stride"], layer["padding"])
        elif kind == "batchnorm":
            module = nn.BatchNorm2d(shape[0]) if image else nn.BatchNorm1d(shape[0])
        elif kind in ("dropout", "dropout2d"):
            module = (nn.Dropout if kind == "dropout" else nn.Dropout2d)(layer["p"])
        elif kind == "activation":
            module = getattr(nn, TORCH_ACTIVATIONS[layer["fn"]])()
        elif kind == "residual":
            module = Residual(shape[0], layer["channels"], layer["batch_norm"])
        elif kind == "flatten":
            module = nn.Flatten()
        elif kind == "globalpool":
            module = seq(pool=nn.AdaptiveAvgPool2d(1) if layer["mode"] == "avg" else nn.AdaptiveMaxPool2d(1),
                         flatten=nn.Flatten())
        else:   # linear
            module = nn.Linear(shape[0], layer["out"], bias=layer["bias"])
        (features if image and kind not in FLAT else classifier)[step.name] = module
        shape = step.shape
    head = seq(**classifier)
    return ClassifierNet(tuple(input_shape), num_classes, seq(**features), lambda n: head)


def from_model(model) -> list[dict]:
    """A registry model as a layer list (the output layer left out: the editor adds it), so that the
    editor can start from it. Every registry model but fast-cnn rebuilds to the same parameter count
    (fast-cnn's output layer has no bias; the editor's has one)."""
    from torch import nn

    from cnn_core.nets.blocks import NetResFeatures, ResBlock

    acts = {getattr(nn, cls): name for name, cls in TORCH_ACTIVATIONS.items()}
    out: list[dict] = []

    def walk(m) -> None:
        first = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731
        if isinstance(m, ResBlock):
            out.append({"type": "residual", "channels": m.conv.out_channels, "batch_norm": True})
        elif isinstance(m, NetResFeatures):     # its forward adds conv3's input: a residual block without BN
            for part in (m.conv1, m.act1, m.pool1, m.conv2, m.act2, m.pool2):
                walk(part)
            out.append({"type": "residual", "channels": m.conv3.out_channels, "batch_norm": False})
            walk(m.pool3)
        elif isinstance(m, nn.Conv2d):
            out.append({"type": "conv", "out": m.out_channels, "kernel": first(m.kernel_size),
                        "stride": first(m.stride), "padding": first(m.padding), "bias": m.bias is not None})
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            out.append({"type": "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool",
                        "kernel": first(m.kernel_size), "stride": first(m.stride), "padding": first(m.padding)})
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            out.append({"type": "batchnorm"})
        elif isinstance(m, (nn.Dropout, nn.Dropout2d)):
            out.append({"type": "dropout2d" if isinstance(m, nn.Dropout2d) else "dropout", "p": m.p})
        elif type(m) in acts:
            out.append({"type": "activation", "fn": acts[type(m)]})
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            out.append({"type": "globalpool", "mode": "avg" if isinstance(m, nn.AdaptiveAvgPool2d) else "max"})
        elif isinstance(m, nn.Flatten):
            if not out or out[-1]["type"] != "globalpool":
                out.append({"type": "flatten"})
        elif isinstance(m, nn.Linear):
            out.append({"type": "linear", "out": m.out_features, "bias": m.bias is not None})
        else:
            for child in m.children():
                walk(child)

    walk(model.features)
    walk(model.classifier)
    if out and out[-1]["type"] == "linear":
        out.pop()                       # the output layer
    return out


# ---- the tutorial's figures --------------------------------------------------------------------------

def conv_vs_dense(input_shape: tuple, out: int = 16, kernel: int = 3) -> dict:
    """A conv of `out` KxK filters against a dense layer of `out` units, on the same input: the true
    weight counts (the tutorial writes 16*3*3*3 = 1728 and 3*32*32 = 9216; both are wrong)."""
    c, h, w = input_shape
    conv = out * c * kernel * kernel
    dense = c * h * w * out
    return {"conv": conv, "conv_formula": f"{out} filters x {c} channels x {kernel} x {kernel} = {conv:,}",
            "dense": dense, "dense_formula": f"{c} x {h} x {w} inputs x {out} units = {dense:,}",
            "ratio": dense / conv}
