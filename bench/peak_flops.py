"""How close training comes to what this CPU can do (issue 31's yardstick), in one process.

  1. the machine's peak: a square matrix product (torch.mm; the best of sides 1024, 2048, 3072) in float32 and
     in bfloat16, GFLOP/s
  2. one training step (forward, backward, Nesterov SGD; batch 128, channels_last) of fast-cnn (widths 16 and
     32; width 16 with the full-size stem and 3 blocks, the fast presets' layout) and the tutorial
     nets on their dataset's shape, in float32 and under bfloat16 autocast: images/s, GFLOP/s (FLOPs counted
     with torch.utils.flop_counter on one step) and that as a share of the peak of the precision used
  3. the engine itself (`cnn_core.train.engine`, as `python -m cnn_core train` runs it: the real dataset,
     shuffling, augmentation off, logging) over `--engine-batches` batches of 128 in each precision: its
     images/s and share of the peak, where the dataset is prepared

Whether the CPU computes bfloat16 natively (x86 avx512_bf16 or AMX, ARM bf16) is read from /proc/cpuinfo;
without it bfloat16 is emulated and the ratio says so. Random data: speed does not depend on it. Measured here: float32 fast-cnn width 32 counts 105-109 % of torch.mm's
float32 rate (oneDNN's convolutions outrun MKL's square product on this CPU), so "of peak" is against the
product's rate, not the silicon's.

    .venv/bin/python bench/peak_flops.py [--steps 20] [--engine-batches 60] [--nets fast-cnn:16,fast-cnn:32,fast-cnn:16:full:3,lenet,cifar-net]
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_core.config import TrainConfig
from cnn_core.core import devices
from cnn_core.data import catalog
from cnn_core.nets.architectures import build_model
from cnn_core.runs import store
from cnn_core.train import engine

BATCH = 128
SHAPE = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
DATASET = {"lenet": "mnist", "simple-cnn": "mnist", "deep-cnn": "mnist", "mlp": "mnist",
           "cifar-net": "cifar10", "res-net-small": "cifar10", "res-net-deep": "cifar10", "fast-cnn": "cifar10"}


def net_params(spec: str) -> dict:
    """`fast-cnn:16:full:3` -> {"width": 16, "stem": "full", "blocks": 3}: fast-cnn's width, stem and blocks; a
    tutorial net's name alone takes its defaults."""
    _, *knobs = spec.split(":")
    return {k: (int(v) if v.isdigit() else v) for k, v in zip(("width", "stem", "blocks"), knobs)}


def gemm_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        done += 1
    return 2 * n ** 3 * done / (time.perf_counter() - t0) / 1e9


def _step(model, opt, x, y, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def train_speed(arch: str, params: dict, bf16: bool, steps: int) -> tuple[float, float]:
    """(images/s, FLOPs per image) of training steps at batch 128."""
    shape = SHAPE[DATASET[arch]]
    torch.manual_seed(0)
    classes = len(catalog.get_info(DATASET[arch]).classes)
    model = build_model(arch, shape, classes, params).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(BATCH, *shape).to(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (BATCH,))
    with FlopCounterMode(display=False) as counter:
        _step(model, opt, x, y, False)                     # FLOPs of the float32 step: the same maths in bf16
    flops = counter.get_total_flops() / BATCH
    for _ in range(3):
        _step(model, opt, x, y, bf16)                      # warm-up: oneDNN builds its kernels
    t0 = time.perf_counter()
    for _ in range(steps):
        _step(model, opt, x, y, bf16)
    return BATCH * steps / (time.perf_counter() - t0), flops


def engine_speed(arch: str, params: dict, bf16: bool, batches: int, runs: Path) -> float | None:
    """Training images/s of the engine over `batches` batches of 128 of the real dataset; None where the
    dataset is not prepared."""
    dataset = DATASET[arch]
    if catalog.dataset_status(dataset).state == "missing":
        return None
    config = TrainConfig(dataset=dataset, arch=arch, arch_params=params, batch_size=BATCH,
                         epochs=1, dry_run_batches=batches, lr=0.01, nesterov=True, device="cpu",
                         amp="on" if bf16 else "off", log_every=1000)
    record = engine.run_training(store.create_run(config, runs_dir=runs))
    return record.summary["images_per_sec"] if record.status == "completed" else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--nets", default="fast-cnn:16,fast-cnn:32,fast-cnn:16:full:3,lenet,cifar-net")
    ap.add_argument("--engine-batches", type=int, default=60, help="batches of the engine's run per net and "
                    "precision (0: skip the engine)")
    args = ap.parse_args()
    _, why = devices.cpu_bf16()
    peak32, peak16 = (max(gemm_gflops(dtype, n, 1.0) for n in (1024, 2048, 3072))
                      for dtype in (torch.float32, torch.bfloat16))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); {why}")
    print(f"peak (mm, the best of 1024, 2048, 3072): float32 {peak32:.0f} GFLOP/s, bfloat16 {peak16:.0f} GFLOP/s ({peak16 / peak32:.2f}x)\n")
    print(f"{'net':<20}{'FLOPs/img':>11}{'fp32 img/s':>12}{'GFLOP/s':>9}{'of peak':>9}"
          f"{'bf16 img/s':>12}{'GFLOP/s':>9}{'of peak':>9}{'bf16/fp32':>11}")
    rows, runs = [], Path(tempfile.mkdtemp(prefix="peak-runs-"))
    for spec in args.nets.split(","):
        params = net_params(spec)
        arch = spec.split(":")[0]
        fp32, flops = train_speed(arch, params, False, args.steps)
        bf16, _ = train_speed(arch, params, True, args.steps)
        g32, g16 = fp32 * flops / 1e9, bf16 * flops / 1e9
        print(f"{spec:<20}{flops / 1e6:>10.1f}M{fp32:>12,.0f}{g32:>9.0f}{g32 / peak32:>9.0%}"
              f"{bf16:>12,.0f}{g16:>9.0f}{g16 / peak16:>9.0%}{bf16 / fp32:>10.2f}x")
        rows.append((spec, arch, params, flops))
    if not args.engine_batches:
        return
    print(f"\nthe engine ({args.engine_batches} batches of {BATCH} of the real dataset, as `python -m cnn_core "
          "train` runs it; images/s of its training steps)")
    print(f"{'net':<20}{'fp32 img/s':>12}{'of peak':>9}{'bf16 img/s':>12}{'of peak':>9}{'bf16/fp32':>11}")
    for spec, arch, params, flops in rows:
        fp32, bf16 = (engine_speed(arch, params, amp, args.engine_batches, runs) for amp in (False, True))
        if fp32 is None or bf16 is None:
            print(f"{spec:<20} skipped: {DATASET[arch]} is not prepared (python -m cnn_core data prepare)")
            continue
        print(f"{spec:<20}{fp32:>12,.0f}{fp32 * flops / 1e9 / peak32:>9.0%}{bf16:>12,.0f}"
              f"{bf16 * flops / 1e9 / peak16:>9.0%}{bf16 / fp32:>10.2f}x")


if __name__ == "__main__":
    main()
