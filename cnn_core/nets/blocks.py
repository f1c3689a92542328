"""Building blocks for the model registry: the shape-inferring net, the residual parts, and the fit check."""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn
from torch.nn.modules.utils import _pair


class InputTooSmallError(ValueError):
    """The feature part would shrink the input below 1x1; the message says where."""


def seq(**layers: nn.Module | None) -> nn.Sequential:
    """nn.Sequential with readable names in keyword order; a None entry is left out."""
    return nn.Sequential(OrderedDict((k, v) for k, v in layers.items() if v is not None))


# ---------------------------------------------------------------- fit check

_SPATIAL = (nn.Conv2d, nn.MaxPool2d)


def spatial_layers(features: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d and MaxPool2d modules of `features`, in registration order (= forward order here)."""
    return [(name, m) for name, m in features.named_modules() if isinstance(m, _SPATIAL)]


def _geometry(m: nn.Module) -> tuple[tuple[int, int], ...]:
    """(kernel, stride, padding, dilation) of a conv or max-pool, each as an (h, w) pair."""
    kernel, stride, dilation = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
    padding = m.padding
    if padding == "valid":
        padding = 0
    elif padding == "same":  # only allowed with stride 1: pads so the size is kept
        padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation))
    return kernel, stride, _pair(padding), dilation


def _out_hw(m: nn.Module, h: int, w: int) -> tuple[int, int]:
    """Output size of a conv or max-pool: (H + 2P - D*(K-1) - 1) // S + 1, per axis."""
    if getattr(m, "padding", None) == "same":
        return h, w
    kernel, stride, padding, dilation = _geometry(m)
    return tuple(  # type: ignore[return-value]
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip((h, w), kernel, stride, padding, dilation)
    )


def _describe(m: nn.Module) -> str:
    kernel, stride, padding, _ = _geometry(m)
    return f"{kernel[0]}x{kernel[1]} kernel, stride {stride[0]}, padding {padding[0]}"


def _needs(m: nn.Module) -> tuple[int, int]:
    """Smallest input size (h, w) this one layer accepts."""
    kernel, _, padding, dilation = _geometry(m)
    return tuple(max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation))  # type: ignore


def _fits(layers: list[tuple[str, nn.Module]], h: int, w: int) -> bool:
    for _, m in layers:
        h, w = _out_hw(m, h, w)
        if h < 1 or w < 1:
            return False
    return True


def smallest_square_input(features: nn.Module, limit: int = 4096) -> int | None:
    """Smallest side s such that an s x s input survives every conv and pool (None past `limit`)."""
    layers = spatial_layers(features)
    return next((s for s in range(1, limit + 1) if _fits(layers, s, s)), None)


def check_fits(features: nn.Module, input_shape: tuple[int, int, int]) -> None:
    """Raise InputTooSmallError naming the layer where the feature map would fall below 1x1."""
    _, h, w = input_shape
    where = "at the input"
    for name, m in spatial_layers(features):
        nh, nw = _out_hw(m, h, w)
        if nh < 1 or nw < 1:
            need_h, need_w = _needs(m)
            smallest = smallest_square_input(features)
            hint = f"; the smallest square input it takes is {smallest}x{smallest}" if smallest else ""
            raise InputTooSmallError(
                f"the feature map is {h}x{w} {where}, and {name} ({_describe(m)}) "
                f"needs at least {need_h}x{need_w}{hint}"
            )
        h, w = nh, nw
        where = f"after {name}"


# ---------------------------------------------------------------- the net


@torch.no_grad()
def feature_size(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Number of values per example that `features` outputs: one dummy forward in eval mode."""
    was_training = features.training
    features.eval()  # BatchNorm must not update its running stats on the dummy input
    try:
        return features(torch.zeros(1, *input_shape)).numel()
    finally:
        features.train(was_training)


class ClassifierNet(nn.Module):
    """`features` (image -> feature maps) then `classifier` (flatten -> logits); sizes inferred from the input.

    Every registry model is one of these, so hooks can find `model.features` and
    `model.classifier`; the output is raw logits (no softmax).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        features: nn.Module,
        make_classifier: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        check_fits(features, self.input_shape)
        self.features = features
        self.flat_features = feature_size(features, self.input_shape)  # e.g. 32*5*5 = 800
        self.classifier = make_classifier(self.flat_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))  # (B, C, H, W) -> (B, num_classes)


# ---------------------------------------------------------------- residual parts


class NetResFeatures(nn.Module):
    """The book's NetRes feature part: two conv-relu-pool stages, then a conv whose output adds to its input."""

    def __init__(self, in_chans: int, n_chans1: int) -> None:
        super().__init__()
        half = n_chans1 // 2
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=3, padding=1)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(n_chans1, half, kernel_size=3, padding=1)
        self.act2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(half, half, kernel_size=3, padding=1)
        self.act3 = nn.ReLU()
        self.pool3 = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool1(self.act1(self.conv1(x)))  # (B, n, H/2, W/2)
        out1 = self.pool2(self.act2(self.conv2(out)))  # (B, n/2, H/4, W/4)
        return self.pool3(self.act3(self.conv3(out1)) + out1)  # skip connection; (B, n/2, H/8, W/8)


class ResBlock(nn.Module):
    """conv3x3 (no bias) -> BatchNorm -> ReLU, plus the input; initialised as in the book."""

    def __init__(self, n_chans: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_chans, n_chans, kernel_size=3, padding=1, bias=False)
        self.batch_norm = nn.BatchNorm2d(n_chans)
        self.act = nn.ReLU()
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        nn.init.constant_(self.batch_norm.weight, 0.5)
        nn.init.zeros_(self.batch_norm.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.batch_norm(self.conv(x))) + x  # (B, n, H, W), same shape in and out


class NetResDeepFeatures(nn.Module):
    """Stem conv-relu-pool, then n_blocks DISTINCT ResBlocks (own weights each), then a pool."""

    def __init__(self, in_chans: int, n_chans1: int, n_blocks: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, n_chans1, kernel_size=3, padding=1)
        self.act1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        # Not `n_blocks * [ResBlock(n)]`: that lists ONE block n times (one set of weights).
        self.blocks = nn.Sequential(*(ResBlock(n_chans1) for _ in range(n_blocks)))
        self.pool2 = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pool1(self.act1(self.conv1(x)))  # (B, n, H/2, W/2)
        return self.pool2(self.blocks(out))  # (B, n, H/4, W/4)


class Residual(nn.Module):
    """The layer editor's residual block: conv 3x3 (padding 1) -> batch norm -> ReLU, plus the input.
    The input passes unchanged when the channels stay (the book's ResBlock, with batch_norm), else
    through a 1x1 conv and batch norm (the shortcut). Without batch norm the conv has a bias (NetRes's
    skip)."""

    def __init__(self, in_chans: int, n_chans: int, batch_norm: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chans, n_chans, kernel_size=3, padding=1, bias=not batch_norm)
        self.batch_norm = nn.BatchNorm2d(n_chans) if batch_norm else nn.Identity()
        self.act = nn.ReLU()
        self.shortcut = nn.Identity() if in_chans == n_chans else nn.Sequential(
            nn.Conv2d(in_chans, n_chans, kernel_size=1, bias=False), nn.BatchNorm2d(n_chans))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.batch_norm(self.conv(x))) + self.shortcut(x)  # (B, n, H, W)


class Whiten(nn.Conv2d):
    """Patch whitening (after cifar10-airbench): a 2x2 conv (no padding: 32x32 becomes 31x31) whose filters
    are not learned but set from the training images, before the first step (recipe.init_weights): each
    2x2 patch's principal directions, scaled to unit variance, and their negatives (2 x channels x 4 of them,
    24 for colour images), so what the next layer sees is decorrelated from the first step on. The bias
    learns."""

    whitens = True     # what recipe.init_weights looks for (an exported script holds this class, not blocks)

    def __init__(self, in_chans: int) -> None:
        super().__init__(in_chans, 2 * in_chans * 4, kernel_size=2, bias=True)
