"""What a class or a filter looks like to the model: start from grey with a little noise and follow the
gradient to the picture that gives one class (or one conv filter) the highest score (Simonyan et al. 2013,
with the regularisers of Yosinski et al. 2015 that keep it readable on 28x28 and 32x32: random jitter of
a pixel or two each step, a light blur every few steps, a small L2 pull to grey). Pictures stay in 0..1
and are normalized as in training. Written here because no maintained library does it (torch-lucent is
stale since 2021). Numbers only, no Streamlit; the model is left untouched.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnn_core.analysis.adversarial import InPixels
from cnn_core.nets.hooks import recording

STEPS = 64
LR = 0.05           # Adam's rate on pixels 0..1
JITTER = 2          # px, each way
BLUR_EVERY = 8      # steps
L2 = 1e-3
POLISH = 4          # the last quarter of the steps: no jitter, no blur. Without it the picture shown (unjittered)
                    # scored as low as 0.09 for its class on some seeds; with it >= 0.96 over seeds 0-3 (bundled model)
_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU)


@dataclass
class Dreams:
    """One picture per class (or filter) and how strongly the model answers it."""

    pictures: np.ndarray     # (K, C, H, W) 0..1
    confidence: np.ndarray   # (K,) classes: the model's probability of class k on picture k; filters: mean activation
    labels: list[str]


def _blur(x: torch.Tensor) -> torch.Tensor:
    """A 3x3 binomial blur per channel (edges replicated)."""
    k = torch.tensor([1.0, 2.0, 1.0], device=x.device)
    k = (k[:, None] * k[None, :] / 16).expand(x.shape[1], 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k, groups=x.shape[1])


def _climb(score, shape: tuple, device, steps: int, seed: int) -> torch.Tensor:
    """Pictures (B, C, H, W) in 0..1 that maximise score(pictures) -> (B,), from grey plus noise."""
    gen = torch.Generator().manual_seed(seed)
    x = (0.5 + 0.05 * torch.randn(shape, generator=gen)).clamp(0, 1).to(device).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=LR)
    shifts = torch.randint(-JITTER, JITTER + 1, (steps, 2), generator=gen).tolist()
    shifts[steps - steps // POLISH:] = [[0, 0]] * (steps // POLISH)    # the last steps still: the picture as shown
    with torch.enable_grad():
        for step, (dy, dx) in enumerate(shifts):
            moved = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = -score(moved).sum() + L2 * ((x - 0.5) ** 2).sum()
            x.grad, = torch.autograd.grad(loss, [x])    # the picture's gradient only: the model's .grad untouched
            opt.step()
            with torch.no_grad():
                if (step + 1) % BLUR_EVERY == 0 and step < steps - steps // POLISH:
                    x.copy_(_blur(x))
                x.clamp_(0, 1)
    return x.detach()


def classes(model: nn.Module, meta: dict, which=None, steps: int = STEPS, seed: int = 0) -> Dreams:
    """The picture each class in `which` (default: all) scores highest on, all climbed in one batch."""
    k = int(meta["num_classes"])
    which = list(range(k)) if which is None else [int(c) for c in which]
    if any(not 0 <= c < k for c in which):
        raise ValueError(f"classes are 0..{k - 1}; got {which}")
    net = InPixels(model, meta)
    target = torch.tensor(which, device=net.mean.device)
    shape = (len(which), *map(int, meta["input_shape"]))
    x = _climb(lambda p: net(p).gather(1, target[:, None])[:, 0], shape, net.mean.device, steps, seed)
    with torch.no_grad():
        probs = torch.softmax(net(x), 1).gather(1, target[:, None])[:, 0]
    names = list(meta.get("classes") or range(k))
    return Dreams(x.cpu().numpy(), probs.cpu().numpy(), [str(names[c]) for c in which])


def filters(model: nn.Module, meta: dict, layer: str, which=None, steps: int = STEPS, seed: int = 0) -> Dreams:
    """The picture each chosen filter (output channel) of conv feature layer `layer` responds to most:
    its mean activation over the map, maximised (before the layer's activation function, when it is one)."""
    from cnn_core.analysis.inspection import feature_layers

    layers = feature_layers(model)
    names = [n for n, _ in layers]
    if layer not in names:
        raise ValueError(f"no feature layer {layer!r}; choose one of: {', '.join(names) or 'none'}")
    # An activation's output is climbed before it: a unit that a ReLU holds at 0 on grey has no gradient
    # there and would never move (the same channels, one layer earlier).
    at = names.index(layer)
    while at > 0 and isinstance(layers[at][1], _ACTIVATIONS):
        at -= 1
    named = {layer: layers[at][1]}
    net = InPixels(model, meta)
    with torch.no_grad(), recording([(layer, named[layer])], {}) as out:
        net(torch.full((1, *map(int, meta["input_shape"])), 0.5, device=net.mean.device))
        channels = out[layer].shape[1]
    which = list(range(min(channels, 16))) if which is None else [int(c) for c in which]
    if any(not 0 <= c < channels for c in which):
        raise ValueError(f"layer {layer} has filters 0..{channels - 1}; got {which}")
    chosen = torch.tensor(which, device=net.mean.device)

    def score(p: torch.Tensor) -> torch.Tensor:
        with recording([(layer, named[layer])], {}) as acts:
            net(p)
            a = acts[layer]                                         # (B, channels, h, w)
        return a[torch.arange(len(chosen)), chosen].mean((1, 2))

    shape = (len(which), *map(int, meta["input_shape"]))
    x = _climb(score, shape, net.mean.device, steps, seed)
    with torch.no_grad():
        strength = score(x)
    return Dreams(x.cpu().numpy(), strength.cpu().numpy(), [f"{layer}[{c}]" for c in which])

