"""What the trainer measures of the gradients at each epoch's end: each conv and linear layer's gradient
histogram and size (Inspect's Histograms and gradient sizes over epochs)."""
from __future__ import annotations

import math

import torch
from torch import nn

GRAD_BINS = 30


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
