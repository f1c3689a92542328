"""Training speed: the tutorial loop vs the engine vs a compute-only bound, in one process.

Same data (fashion-mnist), model (lenet) and optimizer (SGD 0.01, momentum 0.9, batch 64), one
epoch each of
  (a) the tutorial loop: torchvision dataset + ToTensor()/Normalize per sample + DataLoader(shuffle)
  (b) the engine (cnn_core.train.engine, as `python -m cnn_core train` runs it)
  (c) the bound: the same model stepping on one pre-made batch, no data movement.
Prints images/s of each, engine/tutorial, bound/engine, and both test accuracies after the epoch.
Then the measurements behind the engine's defaults (memory format, batch size).

    .venv/bin/python bench/train_speed.py [--quick]
"""
from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cnn_core import recipe
from cnn_core.config import TrainConfig  # noqa: E402
from cnn_core.data import catalog
from cnn_core.nets.architectures import build_model  # noqa: E402
from cnn_core.runs import store  # noqa: E402
from cnn_core.train import engine

BATCH, LR, MOMENTUM = 64, 0.01, 0.9


def _write_idx(path: Path, x: torch.Tensor) -> None:
    """Uncompressed IDX, the layout torchvision's FashionMNIST reads from raw/."""
    dims = x.shape
    magic = 2051 if x.dim() == 3 else 2049
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims))
        f.write(x.numpy().tobytes())


def tutorial_epoch(raw, root: Path, limit: int | None) -> tuple[float, float]:
    """(images/s, test accuracy) of one epoch of the classic per-sample-transform loop."""
    import torchvision
    from torchvision import transforms

    folder = root / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    for split, x, y in (("train", raw.train_x, raw.train_y), ("t10k", raw.test_x, raw.test_y)):
        _write_idx(folder / f"{split}-images-idx3-ubyte", x[:, 0])
        _write_idx(folder / f"{split}-labels-idx1-ubyte", y.to(torch.uint8))
    mean, std = (raw.train_x.float() / 255).mean().item(), (raw.train_x.float() / 255).std().item()
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
    train = torchvision.datasets.FashionMNIST(root, train=True, transform=tf)
    test = torchvision.datasets.FashionMNIST(root, train=False, transform=tf)
    loader = torch.utils.data.DataLoader(train, batch_size=BATCH, shuffle=True)
    torch.manual_seed(0)
    model = build_model("lenet", (1, 28, 28), 10)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    seen, t0 = 0, time.perf_counter()
    model.train()
    for i, (xb, yb) in enumerate(loader):
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        opt.step()
        seen += len(yb)
        if limit and i + 1 >= limit:
            break
    ips = seen / (time.perf_counter() - t0)
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in torch.utils.data.DataLoader(test, batch_size=1000):
            correct += (model(xb).argmax(1) == yb).sum().item()
    return ips, correct / len(test)


def engine_epoch(runs_root: Path, limit: int | None) -> tuple[float, float]:
    cfg = TrainConfig(dataset="fashion-mnist", arch="lenet", optimizer="sgd", lr=LR, momentum=MOMENTUM,
                      batch_size=BATCH, epochs=1, device="cpu", dry_run_batches=limit or 0, seed=0)
    path = store.create_run(cfg, runs_dir=runs_root)
    record = engine.run_training(path)
    assert record.status == "completed", record.error
    return record.summary["images_per_sec"], record.summary["final_test_acc"]


def bound(steps: int, batch: int = BATCH, channels_last: bool = recipe.CHANNELS_LAST) -> float:
    """images/s of the model stepping on one pre-made batch: the compute-only ceiling."""
    torch.manual_seed(0)
    model = build_model("lenet", (1, 28, 28), 10)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()
    for i in range(steps + 20):
        if i == 20:
            t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 batches per loop instead of a full epoch")
    args = parser.parse_args()
    limit = 200 if args.quick else None
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; loading fashion-mnist ...")
    raw = catalog.load_raw("fashion-mnist")
    print(f"fashion-mnist: {len(raw.train_x):,} train / {len(raw.test_x):,} test from {raw.source}")
    with tempfile.TemporaryDirectory() as tmp:
        tut_ips, tut_acc = tutorial_epoch(raw, Path(tmp) / "tv", limit)
        eng_ips, eng_acc = engine_epoch(Path(tmp) / "runs", limit)
    steps = 200 if args.quick else 600
    bound_ips = bound(steps)
    print(f"\n(a) tutorial loop   {tut_ips:9.0f} images/s   test accuracy {tut_acc:.4f}")
    print(f"(b) engine          {eng_ips:9.0f} images/s   test accuracy {eng_acc:.4f}")
    print(f"(c) compute bound   {bound_ips:9.0f} images/s")
    print(f"engine/tutorial = {eng_ips / tut_ips:.2f}x   (target >= 3, aim 5)")
    print(f"bound/engine    = {bound_ips / eng_ips:.2f}    (target <= 1.2)")
    print("\nwhat the defaults rest on (compute bound, images/s):")
    for batch in (64, 128, 256):
        plain, last = bound(steps // 2, batch, False), bound(steps // 2, batch, True)
        print(f"  batch {batch:>3}: contiguous {plain:8.0f}   channels_last {last:8.0f}   ({last / plain:.2f}x)")


if __name__ == "__main__":
    main()
