"""A run as one file of plain PyTorch (`python -m cnn_core export script RUN -o FILE.py`): the model class
written out layer by layer, the data (the same prepared file the run read, torchvision's dataset class,
or an ImageFolder), the validation split and normalization, the augmentation, optimizer, schedule and
loop, as the engine runs them on one process. No cnn_core import: the functions it needs are copied in
from this package's source, so the file stays true to the code that trained the run.

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

from cnn_core.data import catalog
from cnn_core.nets import blocks
from cnn_core.runs import metrics_log, store
from cnn_core.train import augment, evaluation

_OWN = (blocks.ResBlock, blocks.NetResFeatures, blocks.NetResDeepFeatures, blocks.Residual)
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
    config = dict(record.config)
    total = sum(p.numel() for p in model.parameters())
    shapes = _container_shapes(model, tuple(meta["input_shape"]))
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
        "\n".join([
        f"RUN_NAME = {record.title!r}      # the run's name in the dashboard",
        f"RUN_ID = {record.id!r}",
        "RUN = " + pprint.pformat(config, sort_dicts=False, width=110),
        f"CLASSES = {own_classes!r}",
        f"INPUT_SHAPE = {tuple(meta['input_shape'])}      # channels, height, width",
        f"TORCHVISION = {tv!r}      # the dataset class, where there is one",
        f"CLASS_SUBSET = {subset!r}      # official class numbers kept (CIFAR-2: airplane, bird)",
        f"KIND = {(info.kind if info else 'cifar')!r}      # digits or cifar: which augmentation",
        f"EVAL_BATCH = {evaluation.EVAL_BATCH}",
        f"LR_CHANGES = {changes!r}      # step -> base learning rate, changed while it trained"]),
        "\n# ---- the model " + "-" * 84,
    ]
    if (own := _used_classes(model)):
        parts.append(_source(*own))
    parts.append(_NET.format(features=_sequential(model.features, "        ", shapes, "features."),
                             classifier=_sequential(model.classifier, "        ", shapes, "classifier."),
                             total=f"{total:,}"))
    parts += ["\n# ---- the data " + "-" * 85, _DATA,
              _source(catalog._stratified_counts, catalog.channel_stats, catalog.normalize),
              _SPLITS,
              "\n# ---- augmentation (the engine's, batch at once on the normalized images) " + "-" * 26,
              _source(augment._translate, augment._affine, augment.augment_batch).replace(
                  "if kind not in KINDS:", f"if kind not in {augment.KINDS!r}:").replace(
                  "if mode not in AUGMENT_MODES:", f"if mode not in {augment.AUGMENT_MODES!r}:"),
              "\n# ---- training " + "-" * 84, _TRAIN]
    return "\n\n".join(parts) + "\n"


def _usage_name(file_name: str) -> str:
    """`file_name` when plain enough to stand in the docstring's usage line as it is, else FILE.py."""
    return file_name if _PLAIN_FILE.fullmatch(file_name) else "FILE.py"


def _container_shapes(model: nn.Module, input_shape: tuple) -> dict:
    """Output shape (no batch) of every direct child of features and classifier, by dotted name."""
    import torch

    from cnn_core.analysis.inspection import recording

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
"""A run (RUN_NAME, RUN_ID) exported by cnn_core as one file of plain PyTorch: the model, the data, the
split, normalization, augmentation, optimizer, schedule and training loop, as the run had them.

    python {file} --epochs 1 --data-dir DATA        # one JSON line per epoch: epoch, train_loss, val_acc, ...

Where the images come from (--source): `cache` (the default where it is there) reads the very file the
run trained on, DATA/cache/<dataset>.pt with the dataset RUN names (made by `python -m cnn_core data
prepare`); `torchvision` downloads the official set with torchvision's dataset class into DATA; `folder`
reads --folder, class subfolders of pictures (an ImageFolder), for a dataset of your own.

What is exact and what is not:
- With `cache`, the same seed and torch on the CPU, it draws the same validation split, the same initial
  weights, the same batches and augmentation, and the same learning rates as the run, so epoch 1 gives
  the run's epoch-1 figures up to floating-point order (the run may have used other threads or a GPU).
- With `torchvision` the images are the full official set, which is not what a run on an offline subset
  saw (MNIST here: 10,000 digits); with `folder` the pictures are decoded and resized by torchvision, not
  as `data add` fitted them. The figures then differ a little.
- Not written out: several processes (torchrun/DDP), mixed precision, early stopping, and the run's
  bookkeeping (checkpoints, snapshots, resume). {changes} learning-rate change(s) made while it trained
  are replayed at their steps (LR_CHANGES).
- The model has {total:,} parameters; its output is logits (CrossEntropyLoss applies the softmax).
"""'''

_IMPORTS = '''import argparse
import json
import math
import time
from collections import OrderedDict
from math import inf, nan  # noqa: F401  (a value the run kept may be one: RUN and LR_CHANGES are written by repr)
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn'''

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

_SPLITS = '''def splits(train_x, train_y, test_x, test_y, val_size: int, seed: int):
    """Validation: a seeded, class-stratified draw from the training images; everything normalized with
    the training part's mean and std (the product's load_splits)."""
    n = len(train_y)
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(train_y, minlength=len(CLASSES)).tolist()
    val_idx = []
    for c, k in enumerate(_stratified_counts(counts, val_size)):
        idx = torch.nonzero(train_y == c).flatten()
        val_idx.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    val_idx = torch.cat(val_idx)
    val_idx = val_idx[torch.randperm(len(val_idx), generator=g)]
    keep = torch.ones(n, dtype=torch.bool)
    keep[val_idx] = False
    mean, std = channel_stats(train_x[keep])
    black = [(0 - m) / s for m, s in zip(mean, std)]
    return (normalize(train_x[keep], mean, std), train_y[keep], normalize(train_x[val_idx], mean, std),
            train_y[val_idx], normalize(test_x, mean, std), test_y, black)'''

_TRAIN = '''def evaluate(model, x, y, mirror: bool = False):
    """Mean loss and accuracy in eval mode (mirror: average with the left-right flipped image's logits)."""
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), EVAL_BATCH):
            xb, yb = x[i:i + EVAL_BATCH].contiguous(memory_format=torch.channels_last), y[i:i + EVAL_BATCH]
            logits = model(xb)
            if mirror:
                logits = (logits + model(xb.flip(3))) / 2
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(1) == yb).sum().item()
    model.train()
    return loss / max(len(x), 1), correct / max(len(x), 1)


def schedule(optimizer, steps_per_epoch: int, epochs: int):
    """A per-step learning-rate schedule: none, step, cosine or onecycle."""
    total = steps_per_epoch * epochs
    if RUN["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=RUN["lr"], total_steps=total)
    if RUN["schedule"] == "step":
        every = RUN["step_size"] * steps_per_epoch
        factor = lambda step: RUN["gamma"] ** (step // every)  # noqa: E731
    elif RUN["schedule"] == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    else:
        factor = lambda step: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def main():
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
    train_x, train_y, val_x, val_y, test_x, test_y, black = splits(train_x, train_y, test_x, test_y, val_size,
                                                                    RUN["seed"])
    model = Net().to(memory_format=torch.channels_last)   # channels_last: as the run trained on the CPU
    params, wd = model.parameters(), RUN["weight_decay"]
    if RUN["optimizer"] == "sgd":
        optimizer = torch.optim.SGD(params, lr=RUN["lr"], momentum=RUN["momentum"], nesterov=RUN["nesterov"],
                                    weight_decay=wd)
    elif RUN["optimizer"] == "adam":
        optimizer = torch.optim.Adam(params, lr=RUN["lr"], weight_decay=wd)
    else:
        optimizer = torch.optim.AdamW(params, lr=RUN["lr"], weight_decay=wd)
    batch = RUN["batch_size"]
    steps_per_epoch = math.ceil(len(train_x) / batch)
    sched = schedule(optimizer, steps_per_epoch, args.epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=RUN["label_smoothing"])
    shuffle = torch.Generator().manual_seed(RUN["seed"])
    aug = torch.Generator().manual_seed(RUN["seed"] + 1)
    step, scale = 0, 1.0
    for epoch in range(1, args.epochs + 1):
        t0, loss_sum, correct, seen = time.time(), 0.0, 0, 0
        perm = torch.randperm(len(train_x), generator=shuffle)
        for b in range(steps_per_epoch):
            idx = perm[b * batch:(b + 1) * batch]
            x = augment_batch(train_x[idx], KIND, RUN["augment"], aug, black)
            y = train_y[idx]
            logits = model(x.contiguous(memory_format=torch.channels_last))
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            sched.step()
            for group in optimizer.param_groups:          # a base rate changed while the run trained
                group["lr"] *= scale
            step += 1
            if step in LR_CHANGES:
                new = LR_CHANGES[step] / RUN["lr"]
                for group in optimizer.param_groups:
                    group["lr"] *= new / scale
                scale = new
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        val_loss, val_acc = evaluate(model, val_x, val_y, RUN["tta"])
        print(json.dumps({"epoch": epoch, "train_loss": loss_sum / seen, "train_acc": correct / seen,
                          "val_loss": val_loss, "val_acc": val_acc, "seconds": round(time.time() - t0, 2)}),
              flush=True)
    test_loss, test_acc = evaluate(model, test_x, test_y, RUN["tta"])
    print(json.dumps({"test_loss": test_loss, "test_acc": test_acc}), flush=True)


if __name__ == "__main__":
    main()'''
