"""Time to accuracy: each dataset's tutorial loop against the product's `fast` preset, at equal accuracy.

The baseline is the tutorial loop, the tutorials' own code path: images handed out one at a time by a torch
Dataset (a PIL image through transforms.ToTensor and Normalize per sample), a shuffled DataLoader of 64, the
tutorial preset's model and optimizer (presets.py: for MNIST and Fashion-MNIST the MNIST tutorial's deep CNN
with Adam at 0.005; for CIFAR-2 and CIFAR-10 the CIFAR-2 tutorial's first net with plain SGD at 0.01; the
tutorials train no CIFAR-10: its run is the CIFAR-2 one on ten classes). Its data are the product's decoded
cache, so both sides read the same pixels. It trains for the tutorial's epoch count, or `--tutorial-epochs`
(a shorter baseline: then its target is what it reached by then) and is tested on the test split after
each epoch, as the tutorials do.

The target is the tutorial loop's own final test accuracy. The tutorial's time to it is the time of its first
epoch at that accuracy (the clock stops while it is tested). The fast preset runs as a person runs it,
`python -m cnn_core train --dataset D --preset fast` in a fresh process; its time to the target is the
training time, from its metrics, of its first epoch whose validation accuracy (images held out of the
training set: the engine does not look at the test split while it trains) reaches it, and its final test
accuracy is read from run.json. `--seeds` runs give the spread.

    python bench/time_to_accuracy.py                                 # every prepared dataset
    python bench/time_to_accuracy.py --datasets cifar2 mnist --seeds 0 1 2
    python bench/time_to_accuracy.py --datasets cifar10 --tutorial-epochs 10 --seeds 0
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TUTORIAL_EPOCHS = {"cifar2": 100, "cifar10": 100, "fashion-mnist": 10, "mnist": 10}   # the tutorial preset's
REPORTED = {"cifar2": "0.8995 validation (the CIFAR-2 tutorial's first net)",           # what the tutorial said
            "mnist": "98-99 % (the MNIST tutorial)"}


def tutorial_loop(dataset: str, epochs: int) -> list[tuple[float, float]]:
    """(training seconds so far, test accuracy) after each of `epochs` epochs of the tutorial's loop."""
    import torch
    from PIL import Image
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from cnn_core import recipe
    from cnn_core.data import catalog
    from cnn_core.nets import architectures
    from cnn_core.train import presets

    torch.manual_seed(0)
    raw, info = catalog.load_raw(dataset), catalog.get_info(dataset)
    mean, std = recipe.channel_stats(raw.train_x)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    class Images(Dataset):                     # what torchvision's dataset classes do: one PIL image at a time
        def __init__(self, x, y):
            self.x, self.y = x.permute(0, 2, 3, 1).squeeze(-1).numpy(), y.tolist()

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return tf(Image.fromarray(self.x[i])), self.y[i]

    train = DataLoader(Images(raw.train_x, raw.train_y), batch_size=64, shuffle=True)
    test = DataLoader(Images(raw.test_x, raw.test_y), batch_size=64, shuffle=False)
    preset = presets.values("tutorial", dataset)
    model = architectures.build_model(preset["arch"], info.input_shape, len(info.classes), preset["arch_params"])
    opt = (torch.optim.Adam(model.parameters(), lr=preset["lr"]) if preset["optimizer"] == "adam"
           else torch.optim.SGD(model.parameters(), lr=preset["lr"], weight_decay=preset["weight_decay"]))
    loss_fn = nn.CrossEntropyLoss()
    trained, out = 0.0, []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for x, y in train:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        trained += time.perf_counter() - t0
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test:
                correct += int((model(x).argmax(1) == y).sum())
        out.append((trained, correct / len(raw.test_y)))
        print(f"    tutorial loop epoch {epoch + 1}: {trained:.0f} s, test {out[-1][1]:.4f}", flush=True)
    return out


def fast_run(dataset: str, seed: int, runs_dir: Path) -> tuple[list[tuple[float, float]], float, float]:
    """The fast preset from the command line, as a person runs it: ((training seconds, validation accuracy)
    after each epoch, its training seconds in all, its test accuracy)."""
    from cnn_core.runs import metrics_log, store

    folders = lambda: {p for p in runs_dir.glob("*") if (p / store.RUN_JSON).is_file()}  # noqa: E731
    before = folders()
    cmd = [sys.executable, "-m", "cnn_core", "--runs-dir", str(runs_dir), "train", "--dataset", dataset,
           "--preset", "fast", "--seed", str(seed), "--quiet"]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    (path,) = folders() - before
    record = store.read_run(path)
    assert record.status == "completed", record.error
    epochs = [(m["time"], m["val_acc"]) for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]
    return epochs, record.summary["wall_time"], record.summary["test_acc"]


def first_at(curve: list[tuple[float, float]], target: float) -> float | None:
    """The time of the first point of (time, accuracy) at `target` or above; None if none is."""
    return next((t for t, acc in curve if acc >= target), None)


def main() -> int:
    from cnn_core.data import catalog
    from cnn_core.train import presets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=list(TUTORIAL_EPOCHS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--tutorial-epochs", type=int, default=None,
                    help="epochs of the tutorial loop (default: the tutorial's own count)")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="tta-runs-"))
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS') or os.cpu_count()}; runs in {runs_dir}")
    found = {}
    for dataset in args.datasets:
        if catalog.dataset_status(dataset).state == "missing" or "fast" not in presets.for_dataset(dataset):
            print(f"{dataset}: skipped (not prepared, or no fast preset)")
            continue
        epochs = min(args.tutorial_epochs or TUTORIAL_EPOCHS[dataset], TUTORIAL_EPOCHS[dataset])
        print(f"{dataset}: the tutorial loop ({presets.get('tutorial', dataset).purpose}), {epochs} epochs")
        tutorial = tutorial_loop(dataset, epochs)
        target = tutorial[-1][1]
        tut_s = first_at(tutorial, target)
        runs = [fast_run(dataset, seed, runs_dir) for seed in args.seeds]
        reach = [first_at(curve, target) for curve, _, _ in runs]
        accs, whole = [acc for _, _, acc in runs], [t for _, t, _ in runs]
        reached = [t for t in reach if t is not None]
        cut = "" if epochs == TUTORIAL_EPOCHS[dataset] else f" (cut short from its {TUTORIAL_EPOCHS[dataset]})"
        print(f"  target: the tutorial loop's final test accuracy after {epochs} epochs{cut}: {target:.4f}"
              + (f"; the tutorial reported {REPORTED[dataset]}" if dataset in REPORTED else ""))
        print(f"  tutorial loop: {tut_s:.0f} s of training to reach it")
        if reached:
            t = statistics.median(reached)
            print(f"  fast preset: {t:.1f} s to reach it (median; {len(reached)} of {len(runs)} seeds reached it), "
                  f"{tut_s / t:.1f}x sooner; its whole run {statistics.median(whole):.1f} s to test accuracy "
                  f"{min(accs):.4f}-{max(accs):.4f}")
        else:
            print(f"  fast preset: did not reach it; its whole run {statistics.median(whole):.1f} s to test "
                  f"accuracy {min(accs):.4f}-{max(accs):.4f}")
        found[dataset] = {"tutorial_epochs": epochs, "target": target, "tutorial_s": tut_s, "fast_reach_s": reach,
                          "fast_whole_s": whole, "fast_test_acc": accs}
    if args.json:
        args.json.write_text(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
