"""Augmentation of a whole normalized batch at once with torch ops (no per-sample transforms): shifts or
an affine warp for digits, crop from padding and a mirror for photos; seeded by a CPU generator."""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from cnn_core.config import AUGMENT_MODES

KINDS = ("digits", "cifar")       # DatasetInfo.kind: which augmentation a dataset gets


def _translate(x: torch.Tensor, pad: int, fill: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random integer shift of each image by -pad..pad px in x and y; uncovered pixels = fill."""
    B, C, H, W = x.shape
    xp = fill.expand(B, C, H + 2 * pad, W + 2 * pad).clone()  # (B, C, H+2p, W+2p)
    xp[:, :, pad:pad + H, pad:pad + W] = x
    off = torch.randint(0, 2 * pad + 1, (2, B), generator=g).to(x.device)
    rows = off[0, :, None] + torch.arange(H, device=x.device)  # (B, H)
    cols = off[1, :, None] + torch.arange(W, device=x.device)  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    return xp[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)


def _affine(x: torch.Tensor, fill: torch.Tensor, g: torch.Generator,
            degrees: float = 12.0, scale: tuple[float, float] = (0.9, 1.1), shift: float = 2.0) -> torch.Tensor:
    """Random rotation, scale and sub-pixel shift per image via affine_grid / grid_sample."""
    B, C, H, W = x.shape
    r = torch.rand(4, B, generator=g, dtype=torch.float64)
    angle = (r[0] * 2 - 1) * math.radians(degrees)
    s = scale[0] + r[1] * (scale[1] - scale[0])
    tx, ty = (r[2] * 2 - 1) * shift * 2 / W, (r[3] * 2 - 1) * shift * 2 / H  # px -> [-1, 1] units
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s  # output -> input mapping: inverse scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill


def augment_batch(x: torch.Tensor, kind: str, mode: str, generator: torch.Generator,
                  fill: float | Sequence[float] | None = None) -> torch.Tensor:
    """Augment a normalized batch (B, C, H, W) at once; same shape, dtype and device.

    kind: DatasetInfo.kind. mode "standard": digits shift by up to +-2 px, cifar random
    crop 32 from 4-px padding plus horizontal flip (p 0.5); "affine": digits rotate
    +-12 deg, scale 0.9-1.1, shift +-2 px (cifar: as standard). Uncovered pixels get
    `fill`, the normalized value of black per channel (Splits.black); None takes the
    batch's per-channel minimum, which is black in practice. Random numbers come from
    the CPU `generator`, so a seed reproduces the output on any device.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if mode not in AUGMENT_MODES:
        raise ValueError(f"unknown augmentation {mode!r}; choose one of: {', '.join(AUGMENT_MODES)}")
    if mode == "none" or len(x) == 0:
        return x
    if generator.device.type != "cpu":
        raise ValueError("augment_batch needs a CPU torch.Generator")
    if fill is None:
        fill_t = x.amin(dim=(0, 2, 3)).view(1, -1, 1, 1)
    else:
        fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(1, -1, 1, 1)
    if kind == "digits":
        return _translate(x, 2, fill_t, generator) if mode == "standard" else _affine(x, fill_t, generator)
    out = _translate(x, 4, fill_t, generator)  # crop 32 of the 40x40 padded image
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], out.flip(3), out)
