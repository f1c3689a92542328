"""The optimizer and the learning-rate schedule a TrainConfig names, as torch objects."""
from __future__ import annotations

import math

import torch
from torch import nn

from cnn_core.config import TrainConfig


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    params, wd = model.parameters(), config.weight_decay
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov, weight_decay=wd)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=wd)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=wd)


def make_schedule(config: TrainConfig, optimizer, steps_per_epoch: int):
    """A per-step scheduler for every schedule, so a resume mid-epoch lands on the same rate."""
    total = steps_per_epoch * config.epochs
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    if config.schedule == "step":
        every = config.step_size * steps_per_epoch
        factor = lambda step: config.gamma ** (step // every)  # noqa: E731
    elif config.schedule == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    else:
        factor = lambda step: 1.0  # noqa: E731
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
