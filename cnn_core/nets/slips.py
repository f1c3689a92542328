"""Where the tutorials slip, computed with the true figures for the model at hand (shared/DESIGN.md): the
deep residual net's `n_blocks * [ResBlock(n)]` (one block's weights, shared) against n blocks of their own,
and Softmax before CrossEntropyLoss (softmax applied twice). The Train page shows them beside the model."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.nets.architectures import build_model
from cnn_core.nets.blocks import ResBlock


def shared_blocks(input_shape: tuple, num_classes: int, n_chans1: int = 32, n_blocks: int = 10) -> dict:
    """Parameters of the deep residual net as the tutorial wrote it (`n_blocks * [ResBlock(n)]`: ONE
    block listed n times, so one set of weights) and as built here (n blocks, each its own)."""
    fixed = build_model("res-net-deep", input_shape, num_classes, {"n_chans1": n_chans1, "n_blocks": n_blocks})
    n_fixed = sum(p.numel() for p in fixed.parameters())
    fixed.features.blocks = nn.Sequential(*(n_blocks * [ResBlock(n_chans1)]))   # the tutorial's line
    n_tutorial = sum(p.numel() for p in fixed.parameters())        # parameters() counts a shared one once
    block = sum(p.numel() for p in ResBlock(n_chans1).parameters())
    return {"tutorial": n_tutorial, "fixed": n_fixed, "block": block, "n_blocks": n_blocks,
            "distinct_blocks_tutorial": len({id(b) for b in fixed.features.blocks})}


def softmax_twice(num_classes: int, logits: tuple = (4.0, 1.0, -2.0)) -> dict:
    """CrossEntropyLoss on logits (right) and on softmax(logits) (the tutorial's Softmax layer before it):
    the loss, the gradient reaching the logits, and the lowest loss the second can ever reach (a
    one-hot probability vector still goes through a softmax)."""
    z = torch.zeros(num_classes)
    z[:len(logits)] = torch.tensor(logits[:num_classes])
    y = torch.tensor([0])
    out = {}
    for name, f in (("logits", lambda t: t), ("softmax first", lambda t: torch.softmax(t, 1))):
        x = z.clone()[None].requires_grad_(True)
        loss = F.cross_entropy(f(x), y)
        loss.backward()
        out[name] = {"loss": loss.item(), "grad": x.grad.norm().item()}
    out["floor"] = -math.log(math.e / (math.e + num_classes - 1))   # softmax of a perfect one-hot
    return out
