"""A run as one file of plain PyTorch (`python -m cnn_core export script RUN -o FILE.py`): the model class
written out layer by layer, the data (the same prepared file the run read, torchvision's dataset class,
or an ImageFolder), and cnn_core/recipe.py copied in whole: the validation split and normalization, the
augmentation, initial weights, optimizer, schedule, training step and evaluation the trainer called. No
cnn_core import, and no second copy of the recipe to keep in step: the file holds the very code that
trained the run.

`python FILE.py --epochs N --data-dir DIR` prints one JSON line per epoch (epoch, train_loss, val_acc,
...). What is exact and what is not is said at the top of the file.
"""
from __future__ import annotations

import inspect
import json
import pprint
import re
import textwrap
from pathlib import Path

from torch import nn

from cnn_core import recipe
from cnn_core.config import TrainConfig
from cnn_core.core import devices
from cnn_core.data import catalog
from cnn_core.nets import blocks
from cnn_core.runs import metrics_log, store

_OWN = (blocks.ResBlock, blocks.NetResFeatures, blocks.NetResDeepFeatures, blocks.Residual, blocks.Whiten)
_PLAIN_FILE = re.compile(r"[A-Za-z0-9_.-]{1,100}")   # a file name the usage line may show as it is


def _ctor(m: nn.Module, indent: str = "") -> str:
    """The Python that builds module `m` (its constructor call)."""
    if isinstance(m, blocks.ResBlock):
        return f"ResBlock({m.conv.out_channels})"
    if isinstance(m, blocks.NetResFeatures):
        return f"NetResFeatures({m.conv1.in_channels}, {m.conv1.out_channels})"
    if isinstance(m, blocks.NetResDeepFeatures):
        return f"NetResDeepFeatures({m.conv1.in_channels}, {m.conv1.out_channels}, {len(m.blocks)})"
    if isinstance(m, blocks.Residual):
        return (f"Residual({m.conv.in_channels}, {m.conv.out_channels}, "
                f"{not isinstance(m.batch_norm, nn.Identity)})")
    if isinstance(m, blocks.Whiten):
        return f"Whiten({m.in_channels})"
    if type(m) is nn.Sequential:
        return _sequential(m, indent + "    ")
    if type(m).__module__.startswith("torch.nn"):
        return "nn." + repr(m)
    raise ValueError(f"{type(m).__name__} cannot be written out as plain PyTorch")


def _sequential(seq: nn.Sequential, indent: str, shapes: dict | None = None, prefix: str = "") -> str:
    if not len(seq):
        return "nn.Sequential()"
    lines = []
    for name, m in seq.named_children():
        shape = (shapes or {}).get(f"{prefix}{name}")
        note = f"  # -> {' x '.join(map(str, shape))}" if shape else ""
        lines.append(f'{indent}    ({json.dumps(name)}, {_ctor(m, indent)}),{note}')
    return "nn.Sequential(OrderedDict([\n" + "\n".join(lines) + f"\n{indent}]))"


def _used_classes(model: nn.Module) -> list[type]:
    found = {type(m) for m in model.modules()}
    if blocks.NetResDeepFeatures in found:
        found.add(blocks.ResBlock)
    return [c for c in _OWN if c in found]


def _source(*objects) -> str:
    return "\n\n".join(textwrap.dedent(inspect.getsource(o)).strip() for o in objects)


def script(path: Path, file_name: str | None = None) -> str:
    """The whole file for the run in `path` (its best.pt's model: the one the run kept), to be saved as
    `file_name` (default <run folder>.py). No data is pasted into code: the run's name, id and config go
    into constants through repr(), the docstring holds none of them, and a file name that is not plain
    (letters, digits, '.', '_', '-') is shown in the usage line as FILE.py."""
    from cnn_core.analysis.predict import load_model

    path = Path(path)
    record = store.read_run(path)
    model, meta = load_model(path, which="best")
    config = {**TrainConfig().to_dict(), **record.config}   # a setting newer than the run: its default, as a resume
    total = sum(p.numel() for p in model.parameters())
    shapes = _container_shapes(model, tuple(meta["input_shape"]))
    # What it trained in (recorded when it started: auto resolved), not the choice made: "off" is truthy.
    config["amp"] = bool(record.precision.get("amp", devices.amp_choice(config["amp"]) == "on"))
    if config.get("val_size") is None:        # the dataset's default, as the run resolved it
        config["val_size"] = record.summary.get("n_val")
    changes = {int(m["step"]): float(m["lr"]) for m in metrics_log.read_metrics(path) if m.get("kind") == "steer"}
    info = catalog.get_info(config["dataset"]) if config["dataset"] in catalog.datasets() else None
    tv = catalog.files_of(config["dataset"]).torchvision if info else None    # CIFAR-2's is CIFAR-10's class
    subset = list(info.class_subset) if info is not None and info.class_subset else None
    own_classes = [str(c) for c in meta["classes"]]
    parts = [
        _HEADER.format(file=_usage_name(file_name or f"{path.name}.py"), total=total, changes=len(changes)),
        _IMPORTS,
        "# ---- the training recipe: cnn_core/recipe.py as it trained this run " + "-" * 31,
        _recipe_source(),
        "\n# ---- the run " + "-" * 86,
        "\n".join([
        f"RUN_NAME = {record.title!r}      # the run's name in the dashboard",
        f"RUN_ID = {record.id!r}",
        "RUN = " + pprint.pformat(config, sort_dicts=False, width=110),
        f"CLASSES = {own_classes!r}",
        f"INPUT_SHAPE = {tuple(meta['input_shape'])}      # channels, height, width",
        f"TORCHVISION = {tv!r}      # the dataset class, where there is one",
        f"CLASS_SUBSET = {subset!r}      # official class numbers kept (CIFAR-2: airplane, bird)",
        f"KIND = {(info.kind if info else 'cifar')!r}      # digits or cifar: which augmentation",
        f"LR_CHANGES = {changes!r}      # step -> base learning rate, changed while it trained"]),
        "\n# ---- the model " + "-" * 84,
    ]
    if (own := _used_classes(model)):
        parts.append(_source(*own))
    parts.append(_NET.format(features=_sequential(model.features, "        ", shapes, "features."),
                             classifier=_sequential(model.classifier, "        ", shapes, "classifier."),
                             total=f"{total:,}"))
    parts += ["\n# ---- the data " + "-" * 85, _DATA, "\n# ---- training " + "-" * 84, _TRAIN]
    return "\n\n".join(parts) + "\n"


def _recipe_source() -> str:
    """cnn_core/recipe.py without its docstring and `from __future__` line (the file has its own)."""
    return inspect.getsource(recipe).split("from __future__ import annotations\n", 1)[1].strip()


def _usage_name(file_name: str) -> str:
    """`file_name` when plain enough to stand in the docstring's usage line as it is, else FILE.py."""
    return file_name if _PLAIN_FILE.fullmatch(file_name) else "FILE.py"


def _container_shapes(model: nn.Module, input_shape: tuple) -> dict:
    """Output shape (no batch) of every direct child of features and classifier, by dotted name."""
    import torch

    from cnn_core.nets.hooks import recording

    children = [(f"{part}.{name}", m) for part in ("features", "classifier")
                for name, m in getattr(model, part).named_children()]
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), recording(children, {}) as out:
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was)
    return {name: tuple(t.shape[1:]) for name, t in out.items()}


def write(path: Path, out: Path) -> Path:
    """script(path) saved as `out` (UTF-8: names and classes may hold any character)."""
    out = Path(out)
    out.write_text(script(path, out.name), encoding="utf-8")
    return out


_HEADER = '''#!/usr/bin/env python3
"""A run (RUN_NAME, RUN_ID) exported by cnn_core as one file of plain PyTorch: the model, the data, and
the training recipe (split, normalization, augmentation, initial weights, optimizer, schedule, step,
evaluation) in the very code that trained the run (cnn_core's recipe.py), with the loop around it.

    python {file} --data-dir DATA        # the run's epochs; one JSON line each: epoch, train_loss, val_acc, ...

Where the images come from (--source): `cache` (the default where it is there) reads the very file the
run trained on, DATA/cache/<dataset>.pt with the dataset RUN names (made by `python -m cnn_core data
prepare`); `torchvision` downloads the official set with torchvision's dataset class into DATA; `folder`
reads --folder, class subfolders of pictures (an ImageFolder), for a dataset of your own.

What is exact and what is not:
- With `cache`, the same seed and torch on the CPU, it draws the same validation split, the same initial
  weights, the same batches and augmentation, and the same learning rates as the run, so each epoch gives
  the run's figures up to floating-point order (the run may have used other threads or a GPU).
- --epochs other than the run's stretches or shrinks the schedule (step, cosine, onecycle run over all the
  epochs asked), so from epoch 1 the rates, and the figures, differ from the run's.
- With `torchvision` the images are the full official set, which is not what a run on an offline subset
  saw (MNIST here: 10,000 digits); with `folder` the pictures are decoded and resized by torchvision, not
  as `data add` fitted them. The figures then differ a little.
- Not written out: several processes (torchrun/DDP), mixed precision, early stopping, and the run's
  bookkeeping (checkpoints, snapshots, resume). {changes} learning-rate change(s) made while it trained
  are replayed at their steps (LR_CHANGES).
- The model has {total:,} parameters; its output is logits (CrossEntropyLoss applies the softmax).
"""'''

_IMPORTS = '''from __future__ import annotations

import argparse
import json
import math
import time
from collections import OrderedDict
from math import inf, nan  # noqa: F401  (a value the run kept may be one: RUN and LR_CHANGES are written by repr)
from pathlib import Path'''

_NET = '''class Net(nn.Module):
    """Features (image -> feature maps), then the classifier (-> logits). {total} parameters."""

    def __init__(self):
        super().__init__()
        self.features = {features}
        self.classifier = {classifier}

    def forward(self, x):
        return self.classifier(self.features(x))          # (B, C, H, W) -> (B, classes)'''

_DATA = '''def load_images(source: str, data_dir: Path, folder: Path | None):
    """(train_x, train_y, test_x, test_y): uint8 images (N, C, H, W) and int64 labels."""
    name = RUN["dataset"]
    if source == "cache":
        t = torch.load(data_dir / "cache" / f"{name}.pt", weights_only=True)
        return t["train_x"], t["train_y"].long(), t["test_x"], t["test_y"].long()
    if source == "torchvision":
        import torchvision

        if TORCHVISION is None:
            raise SystemExit(f"{name} has no torchvision dataset class: use --source cache or folder")
        cls = getattr(torchvision.datasets, TORCHVISION)
        out = []
        for train in (True, False):
            ds = cls(str(data_dir), train=train, download=True)
            x = torch.as_tensor(ds.data)
            x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)      # (N, C, H, W)
            y = torch.as_tensor(ds.targets).long()
            if CLASS_SUBSET:
                keep = torch.isin(y, torch.tensor(CLASS_SUBSET))
                x, y = x[keep], torch.searchsorted(torch.tensor(sorted(CLASS_SUBSET)), y[keep])
            out += [x.contiguous(), y]
        return tuple(out)
    import torchvision
    from torchvision.transforms import v2

    c, h, w = INPUT_SHAPE
    tf = v2.Compose([v2.PILToTensor(), v2.Grayscale(1) if c == 1 else v2.RGB(), v2.Resize((h, w))])
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = torch.tensor([CLASSES.index(ds.classes[t]) for t in ds.targets])
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g)
    n_test = max(len(y) // 5, 1)                   # a fifth held out for the test
    return x[order[n_test:]], y[order[n_test:]], x[order[:n_test]], y[order[:n_test]]'''

_TRAIN = '''def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=RUN["epochs"])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--source", choices=("cache", "torchvision", "folder"), default=None,
                        help="default: cache when DATA/cache/<dataset>.pt is there, else torchvision")
    parser.add_argument("--folder", type=Path, help="--source folder: class subfolders of pictures")
    args = parser.parse_args()
    source = args.source or ("cache" if (args.data_dir / "cache" / f"{RUN['dataset']}.pt").is_file() else
                             "torchvision" if TORCHVISION else "folder")
    torch.manual_seed(RUN["seed"])
    train_x, train_y, test_x, test_y = load_images(source, args.data_dir, args.folder)
    val_size = RUN["val_size"] if RUN["val_size"] is not None else len(train_y) // 10
    parts = split(train_x, train_y, test_x, len(CLASSES), val_size, RUN["seed"])
    train_x, train_y, val_x, val_y, test_x = (parts[k] for k in ("train_x", "train_y", "val_x", "val_y", "test_x"))
    black = tuple(-m / s for m, s in zip(parts["mean"], parts["std"]))     # the normalized black: the fill
    model = Net()
    init_weights(model, RUN, train_x)                     # the run's init (default: as PyTorch drew them)
    if CHANNELS_LAST:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), RUN)
    batch = RUN["batch_size"]
    steps_per_epoch = math.ceil(len(train_x) / batch)
    schedule = make_schedule(optimizer, RUN, steps_per_epoch, args.epochs)
    loss_fn = make_loss(RUN)
    shuffle = torch.Generator().manual_seed(RUN["seed"])
    aug = torch.Generator().manual_seed(RUN["seed"] + 1)
    step, scale = 0, 1.0
    for epoch in range(1, args.epochs + 1):
        t0, loss_sum, correct, seen = time.time(), 0.0, 0, 0
        perm = torch.randperm(len(train_x), generator=shuffle)
        for b in range(steps_per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            x = augment_batch(train_x[idx], KIND, RUN["augment"], aug, black)      # (B, C, H, W)
            y = train_y[idx]
            loss, logits = train_step(model, x, y, loss_fn, optimizer, schedule, RUN)
            scale_lr(optimizer, scale)
            step += 1
            if step in LR_CHANGES:                        # a base rate changed at this step while the run trained
                scale = change_lr(optimizer, LR_CHANGES[step], RUN["lr"], scale)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        val_loss, val_acc = evaluate(model, val_x, val_y, amp=bool(RUN["amp"]), mirror=bool(RUN["tta"]))
        print(json.dumps({"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                          "val_loss": val_loss, "val_acc": val_acc, "seconds": round(time.time() - t0, 2)}),
              flush=True)
    test_loss, test_acc = evaluate(model, test_x, test_y, amp=bool(RUN["amp"]), mirror=bool(RUN["tta"]))
    print(json.dumps({"test_loss": test_loss, "test_acc": test_acc}), flush=True)


if __name__ == "__main__":
    main()'''
