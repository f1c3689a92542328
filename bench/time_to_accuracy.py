"""Time to accuracy: each dataset's tutorial loop against the product's `fast` preset, in one call.

The tutorial loop is the tutorials' own code path: images handed out one at a time by a torch Dataset
(a PIL image through transforms.ToTensor and Normalize per sample), a shuffled DataLoader of 64, the
tutorial's model and optimizer. Its data are the product's decoded cache, so both sides read the same
pixels (the stock torchvision CIFAR10 class refuses the offline copy used here: its md5 differs).
It is timed over `--tutorial-epochs` epochs; the CIFAR targets compare with its whole run, its epoch
time times the tutorial's epoch count (100), which the print says.

The fast preset runs as a person runs it: `python -m cnn_core train --dataset D --preset fast`, a fresh
process, its training time and test accuracy read from run.json; `--seeds` runs give the spread.

    python bench/time_to_accuracy.py                      # every prepared dataset
    python bench/time_to_accuracy.py --datasets cifar2 fashion-mnist --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TUTORIAL_EPOCHS = {"cifar2": 100, "cifar10": 100, "fashion-mnist": 1, "mnist": 10}   # the tutorial's own count
TARGETS = {   # (test accuracy, time limit as a multiple of the tutorial loop's whole run, or seconds)
    "cifar2": "fast >= 0.90 test in <= 1/10 of the tutorial's 100 epochs",
    "fashion-mnist": "fast >= 0.91 test in <= 2.5 x the tutorial loop's one epoch",
    "cifar10": "fast >= 0.85 test in <= 10 minutes",
    "mnist": ">= 0.99 test, in the least time",
}


def tutorial_loop(dataset: str, epochs: int) -> tuple[float, float]:
    """Seconds per epoch and the validation accuracy after `epochs` epochs of the tutorial's loop."""
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from cnn_core.data import catalog
    from cnn_core.nets import architectures
    from cnn_core.train import presets

    torch.manual_seed(0)
    raw, info = catalog.load_raw(dataset), catalog.get_info(dataset)
    mean, std = catalog.channel_stats(raw.train_x)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    class Images(Dataset):                     # what torchvision's dataset classes do: one PIL image at a time
        def __init__(self, x, y):
            self.x, self.y = x.permute(0, 2, 3, 1).squeeze(-1).numpy(), y.tolist()

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return tf(Image.fromarray(self.x[i])), self.y[i]

    train = DataLoader(Images(raw.train_x, raw.train_y), batch_size=64, shuffle=True)
    val = DataLoader(Images(raw.test_x, raw.test_y), batch_size=64, shuffle=False)
    preset = presets.values("tutorial", dataset)
    model = architectures.build_model(preset["arch"], info.input_shape, len(info.classes), preset["arch_params"])
    opt = (torch.optim.Adam(model.parameters(), lr=preset["lr"]) if preset["optimizer"] == "adam"
           else torch.optim.SGD(model.parameters(), lr=preset["lr"]))
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    per_epoch = (time.perf_counter() - t0) / epochs
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in val:
            correct += int((model(x).argmax(1) == y).sum())
    return per_epoch, correct / len(raw.test_y)


def fast_run(dataset: str, seed: int, runs_dir: Path) -> tuple[float, float]:
    """(training seconds, test accuracy) of the fast preset, run from the command line as a person would."""
    from cnn_core.runs import store

    folders = lambda: {p for p in runs_dir.glob("*") if (p / store.RUN_JSON).is_file()}  # noqa: E731
    before = folders()
    cmd = [sys.executable, "-m", "cnn_core", "--runs-dir", str(runs_dir), "train", "--dataset", dataset,
           "--preset", "fast", "--seed", str(seed), "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    (path,) = folders() - before
    record = store.read_run(path)
    assert record.status == "completed", record.error
    return record.summary["wall_time"], record.summary["test_acc"]


def main() -> int:
    from cnn_core.data import catalog
    from cnn_core.train import presets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(TARGETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--tutorial-epochs", type=int, default=2, help="epochs of the tutorial loop to time")
    args = ap.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="tta-runs-"))
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS') or os.cpu_count()}; runs in {runs_dir}")
    for dataset in args.datasets:
        if catalog.dataset_status(dataset).state == "missing" or "fast" not in presets.for_dataset(dataset):
            print(f"{dataset}: skipped (not prepared, or no fast preset)")
            continue
        epoch_s, tut_acc = tutorial_loop(dataset, min(args.tutorial_epochs, TUTORIAL_EPOCHS[dataset]))
        whole = epoch_s * TUTORIAL_EPOCHS[dataset]
        results = [fast_run(dataset, seed, runs_dir) for seed in args.seeds]
        times, accs = [t for t, _ in results], [a for _, a in results]
        t = statistics.median(times)
        print(f"{dataset}: tutorial loop {epoch_s:.1f} s/epoch, {TUTORIAL_EPOCHS[dataset]} epochs = {whole:.0f} s "
              f"(its accuracy after {min(args.tutorial_epochs, TUTORIAL_EPOCHS[dataset])} epochs: {tut_acc:.4f})")
        print(f"  fast: {t:.1f} s of training (median of {len(times)}), test accuracy "
              f"{min(accs):.4f}-{max(accs):.4f} (mean {statistics.mean(accs):.4f}); "
              f"time ratio fast / tutorial run {t / whole:.3f}, / one tutorial epoch {t / epoch_s:.2f}")
        print(f"  target: {TARGETS[dataset]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
