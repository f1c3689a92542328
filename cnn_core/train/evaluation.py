"""How a batch meets the model (memory layout, precision) and what is measured between steps: loss and
accuracy on a split, each layer's gradient histogram and size."""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 1000
CHANNELS_LAST = True              # measured faster for the conv models on CPU (bench/train_speed.py)
GRAD_BINS = 30


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH,
             amp: bool = False, mirror: bool = False) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of `model` on (x, y), in eval mode, no gradients. `mirror`:
    the logits are the mean of each image's and its left-right mirror's (test-time augmentation)."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    with torch.no_grad(), autocast(x.device, amp):
        for start in range(0, len(x), batch_size):
            xb, yb = prep(x[start:start + batch_size]), y[start:start + batch_size]
            logits = model(xb).float()                       # (B, classes)
            if mirror:
                logits = (logits + model(xb.flip(3)).float()) / 2
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    model.train(was_training)
    n = max(len(x), 1)
    return loss_sum.item() / n, correct.item() / n


def gradient_histograms(model: nn.Module, bins: int = GRAD_BINS) -> dict:
    """Per weight tensor of each conv and linear layer: a histogram of its gradient after the last step
    (the epoch's last batch) and its root mean square, {name: {"lo", "hi", "counts", "rms"}}; for Inspect's
    histograms and gradient sizes over epochs."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None:
            g = m.weight.grad.detach().float().flatten().cpu()
            lo, hi = float(g.min()), float(g.max())
            if not (math.isfinite(lo) and math.isfinite(hi)):
                continue
            counts = torch.histc(g, bins=bins, min=lo, max=hi if hi > lo else lo + 1e-12)
            out[name] = {"lo": lo, "hi": hi, "counts": [int(c) for c in counts.tolist()],
                         "rms": float(g.square().mean().sqrt())}
    return out


def prep(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if CHANNELS_LAST and x.dim() == 4 else x


def autocast(device: torch.device, amp: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp and device.type == "cuda" else nullcontext()
