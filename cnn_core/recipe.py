"""The training recipe, written once: the validation split and normalization, augmentation of a whole
batch, the initial weights, the optimizer and learning-rate schedule a run names, one training step, and
evaluation. Plain functions over tensors and plain values (`run`: a run's settings as a dict,
TrainConfig.to_dict()) that import nothing from cnn_core: the trainer calls them, and a run exported as one
file of plain PyTorch (cnn_core/export/standalone.py) holds this very source, so the file trains as the run
did. A new optimizer, schedule, augmentation or training setting is written here, and only here (with its
field in config.py)."""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 1000                 # images per forward pass when evaluating
CHANNELS_LAST = True              # measured faster for the conv models on CPU (bench/train_speed.py)
KINDS = ("digits", "cifar")       # DatasetInfo.kind: which augmentation a dataset gets


# ---- the validation split and normalization --------------------------------------------------------
def stratified_counts(counts: list[int], total: int) -> list[int]:
    """Per-class sizes summing to `total`, proportional to `counts`, at least 1 each if total allows."""
    n = sum(counts)
    quota = [c * total / n for c in counts]
    k = [min(int(q), c) for q, c in zip(quota, counts)]
    if total >= len(counts):
        k = [max(ki, 1) if c > 1 else ki for ki, c in zip(k, counts)]
    while sum(k) < total:
        k[max((i for i in range(len(k)) if k[i] < counts[i]), key=lambda i: quota[i] - k[i])] += 1
    while sum(k) > total:
        k[max((i for i in range(len(k)) if k[i] > 1), key=lambda i: k[i] - quota[i])] -= 1
    return k


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of uint8 images, in 0..1 units, exact via histograms."""
    v = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(x.shape[1]):
        h = torch.bincount(x[:, c].reshape(-1), minlength=256).double()
        m = float((h * v).sum() / h.sum())
        means.append(m)
        stds.append(math.sqrt(max(float((h * v * v).sum() / h.sum()) - m * m, 0.0)))
    return tuple(means), tuple(stds)


def normalize(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(..., C, H, W) uint8 -> float32 (x/255 - mean) / std, on x's device."""
    if x_uint8.dtype != torch.uint8:
        raise ValueError(f"normalize expects uint8 pixels 0..255, got {x_uint8.dtype}")
    m = torch.tensor(mean, dtype=torch.float32, device=x_uint8.device).view(-1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=x_uint8.device).view(-1, 1, 1)
    return x_uint8.to(torch.float32).div_(255).sub_(m).div_(s)


def split(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, num_classes: int, val_size: int,
          seed: int) -> dict:
    """Validation: a seeded, class-stratified draw of `val_size` of the training images (uint8 (N, C, H, W),
    labels (N,)); every part normalized with the remaining training part's per-channel mean and std.
    {"train_x", "train_y", "val_x", "val_y", "test_x"} (float32 images) with "mean" and "std"."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(train_y, minlength=num_classes).tolist()
    val_idx = []
    for c, k in enumerate(stratified_counts(counts, val_size)):
        idx = torch.nonzero(train_y == c).flatten()
        val_idx.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    val_idx = torch.cat(val_idx)
    val_idx = val_idx[torch.randperm(len(val_idx), generator=g)]
    keep = torch.ones(len(train_y), dtype=torch.bool)
    keep[val_idx] = False
    mean, std = channel_stats(train_x[keep])
    return {"train_x": normalize(train_x[keep], mean, std), "train_y": train_y[keep],
            "val_x": normalize(train_x[val_idx], mean, std), "val_y": train_y[val_idx],
            "test_x": normalize(test_x, mean, std), "mean": mean, "std": std}


# ---- augmentation of a whole normalized batch, with torch ops ------------------------------------------
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
    if mode not in ("none", "standard", "affine"):
        raise ValueError(f"unknown augmentation {mode!r}; choose one of: none, standard, affine")
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


# ---- the initial weights ----------------------------------------------------------------------------------
# What the run's `init` does to every conv and linear layer's weights and biases, once, on the model as built.
# The bad ones scale PyTorch's own draw (U(+-1/sqrt(fan_in)): kaiming_uniform_ with a=sqrt(5)) rather than draw
# anew: the same seed gives the same pattern, only its size differs, and no random number is used, so a run's
# batches, dropout and augmentation are those of its default twin. 0.01 and 10 (the factors of the classic
# "small random numbers" and "randn * 10" demonstrations) compound layer by layer; measured on the MNIST
# subset, one epoch of the defaults (tests/test_init.py): LeNet with default reaches 95.9% validation (94.7% test), its
# conv gradients ~1e-2. x0.01: the logits start at 0 (loss ln 10 = 2.30), the gradients reaching the convs
# are ~5e-9, the loss stays at 2.30 and accuracy at chance (11.2%). x10: the loss starts at 902 and averages
# 1,950 over the first 20 steps (the trainer stops it as diverged). Batch norm undoes a conv's scale:
# fast-cnn reaches 98.0% (default), 97.9% (x0.01) and 90.4% (x10, from a loss of 34,700).
INIT_SCALES = {"too-small": 0.01, "too-large": 10.0}
INITS = ("default", "zeros", *INIT_SCALES)


def init_weights(model: nn.Module, run: dict, images: torch.Tensor | None = None) -> None:
    """The run's initial weights, in place, on a model just built (a resumed run loads its checkpoint over
    them): default leaves PyTorch's (and the architecture's own); zeros sets every conv and linear weight
    and bias to 0; too-small / too-large multiply them by INIT_SCALES. Batch norm keeps its scale and shift
    (not drawn at random). Zeros cannot learn: every unit of a layer computes the same, so gets the same gradient
    and stays the same, and with all weights 0 the gradient reaching every earlier layer is 0 (only the last
    bias learns: the commonest class). A whitening layer's filters (a module with `whitens`) are then set
    from `images`, the normalized training images (N, C, H, W): whiten()."""
    how = run["init"]
    if how not in INITS:
        raise ValueError(f"unknown init {how!r}; choose one of: {', '.join(INITS)}")
    with torch.no_grad():
        for m in model.modules() if how != "default" else ():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                for p in (m.weight, m.bias):
                    if p is None:
                        continue
                    if how == "zeros":
                        p.zero_()
                    else:
                        p.mul_(INIT_SCALES[how])
    for m in model.modules():
        if getattr(m, "whitens", False):
            if images is None:
                raise ValueError("a whitening layer is set from the training images: none were given")
            whiten(m, images)


WHITEN_IMAGES = 5000       # the training images whose patches set a whitening layer (airbench's count)


def whiten(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> None:
    """Set `conv`'s filters (2k of them for k = channels x kernel area) to the principal directions of the
    patches of the first WHITEN_IMAGES images, each divided by the square root of its variance (+ eps), and
    their negatives; the filters are then kept (not learned). After cifar10-airbench."""
    c, (h, w) = images.shape[1], conv.kernel_size
    x = images[:WHITEN_IMAGES].float()
    patches = x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w)   # (P, C*h*w)
    values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))                 # ascending
    filters = (vectors.T / (values + eps).sqrt()[:, None]).reshape(-1, c, h, w).flip(0)    # (C*h*w, C, h, w)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([filters, -filters]).to(conv.weight))
    conv.weight.requires_grad_(False)


# ---- the optimizer and the learning-rate schedule --------------------------------------------------------
def make_optimizer(params, run: dict) -> torch.optim.Optimizer:
    """The run's optimizer over `params`: sgd (with momentum, Nesterov or not), adam or adamw."""
    name, lr, wd = run["optimizer"], run["lr"], run["weight_decay"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=run["momentum"], nesterov=run["nesterov"], weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: sgd, adam, adamw")


def make_schedule(optimizer: torch.optim.Optimizer, run: dict, steps_per_epoch: int, epochs: int):
    """The run's per-step scheduler over `epochs` (none; step: times gamma every step_size epochs; cosine
    to 0; onecycle peaking at lr). Per step for every schedule, so a resume mid-epoch lands on the same rate."""
    name, total = run["schedule"], steps_per_epoch * epochs
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=run["lr"], total_steps=total)
    if name == "step":
        every, gamma = run["step_size"] * steps_per_epoch, run["gamma"]
        factor = lambda step: gamma ** (step // every)  # noqa: E731
    elif name == "cosine":
        factor = lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / total))  # noqa: E731
    elif name == "none":
        factor = lambda step: 1.0  # noqa: E731
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of: none, step, cosine, onecycle")
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def change_lr(optimizer: torch.optim.Optimizer, lr: float, base_lr: float, scale: float) -> float:
    """A new base rate `lr` asked for while training (steering; `base_lr` the configured one, `scale` the
    change in force): the current rates are rescaled to it. Returns the new scale, lr / base_lr, which
    scale_lr applies to the schedule's rate at every later step."""
    for group in optimizer.param_groups:
        group["lr"] *= lr / (base_lr * scale)
    return lr / base_lr


def scale_lr(optimizer: torch.optim.Optimizer, scale: float) -> None:
    """A base rate changed while the run trained: the schedule set each group's rate from the configured
    one, this scales it (from the step the change was made)."""
    if scale != 1.0:
        for group in optimizer.param_groups:
            group["lr"] *= scale


# ---- a training step and evaluation ---------------------------------------------------------------------
def prep(x: torch.Tensor) -> torch.Tensor:
    """A batch as the model takes it: channels_last for images."""
    return x.contiguous(memory_format=torch.channels_last) if CHANNELS_LAST and x.dim() == 4 else x


def autocast(device: torch.device, amp: bool):
    """bfloat16 autocast where mixed precision is asked for (CUDA, or a CPU: the run's check allows it on CPUs
    that compute bfloat16 natively), else nothing. The weights stay float32; the loss is taken in float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if amp and device.type in ("cuda", "cpu") \
        else nullcontext()


def make_loss(run: dict) -> nn.Module:
    """Cross-entropy on the logits, with the run's label smoothing."""
    return nn.CrossEntropyLoss(label_smoothing=run["label_smoothing"])


def train_step(net: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, optimizer: torch.optim.Optimizer,
               schedule, run: dict, weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """One step on a batch x (B, C, H, W), y (B,): forward (in bfloat16 where the run asks for mixed
    precision), loss, backward, the optimizer's and the schedule's step. `weight` scales the loss
    before backward (several processes: each one's share). Returns the loss and the logits (B, classes),
    detached."""
    with autocast(x.device, run["amp"]):
        logits = net(prep(x))                                  # (B, classes)
        loss = loss_fn(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    (loss * weight if weight != 1.0 else loss).backward()
    optimizer.step()
    schedule.step()
    return loss.detach(), logits.detach()


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
