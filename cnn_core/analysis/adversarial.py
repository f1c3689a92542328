"""Fool the model: the smallest change to a picture that makes a trained model say something else.

Attacks come from captum.robust (FGSM: one step along the gradient's sign; PGD: many small steps, each
projected back into the budget). Budgets are L-inf in pixel units, 0..1: eps = 0.1 lets every pixel move
by a tenth of black-to-white, and the changed picture stays a picture (clamped to 0..1). The model is
wrapped so that it takes pixels and normalizes them itself, as in training. Numbers only, no Streamlit;
the model is left untouched (captum takes gradients with torch.autograd.grad: no .grad is written).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from captum.robust import FGSM, PGD
from torch import nn

METHODS = ("pgd", "fgsm")
PGD_STEPS = 20          # one picture: a stronger walk
CURVE_STEPS = 10        # a robustness curve: hundreds of pictures at every budget; 20 steps moved the bundled
                        # model's median fooling budget by less than one grid step (0.02) and took twice as long
DIGIT_BUDGETS = tuple(round(0.02 * i, 2) for i in range(16))      # 0 .. 0.3: the curve's budgets on digits
COLOUR_BUDGETS = tuple(round(i / 255, 4) for i in range(17))  # 0 .. 16/255: colour pictures fall sooner


class InPixels(nn.Module):
    """`model` taking pixels in 0..1 (B, C, H, W): it normalizes them with the run's mean and std."""

    def __init__(self, model: nn.Module, meta: dict):
        super().__init__()
        self.model = model
        device = next(model.parameters()).device
        self.register_buffer("mean", torch.as_tensor(meta["mean"], dtype=torch.float32, device=device).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(meta["std"], dtype=torch.float32, device=device).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x - self.mean) / self.std).float()


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 pictures (as stored) -> float 0..1."""
    return images.float() / 255.0


def budgets_for(meta: dict) -> tuple[float, ...]:
    """The budgets a robustness curve is drawn over: 0..0.3 for grey pictures (digits, clothes), 0..16/255
    for colour ones, where models fall at far smaller changes."""
    return COLOUR_BUDGETS if int(meta["input_shape"][0]) == 3 else DIGIT_BUDGETS


def perturb(net: InPixels, x: torch.Tensor, labels: torch.Tensor, eps: float, method: str = "pgd",
            targeted: bool = False, steps: int = PGD_STEPS) -> torch.Tensor:
    """x (B, C, H, W) in 0..1 changed by at most `eps` per pixel. Untargeted: `labels` are what the model
    must stop saying (its answer or the truth); targeted: what it must say."""
    if method not in METHODS:
        raise ValueError(f"unknown attack {method!r}; choose one of: {', '.join(METHODS)}")
    if eps <= 0:
        return x.clone()
    labels = labels.to(x.device)
    x = x.detach()
    with torch.enable_grad(), warnings.catch_warnings():
        # PGD hands each step a detached picture and captum warns each time it switches gradients on
        warnings.filterwarnings("ignore", "Input Tensor", UserWarning)
        if method == "fgsm":
            out = FGSM(net, _loss, lower_bound=0.0, upper_bound=1.0).perturb(x, eps, labels, targeted=targeted)
        else:  # Madry et al.'s step: 2.5 * eps / steps, so that the walk can cross the whole ball
            out = PGD(net, _loss, lower_bound=0.0, upper_bound=1.0).perturb(
                x, radius=eps, step_size=2.5 * eps / steps, step_num=steps, target=labels, targeted=targeted)
    return out.detach()


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, the best other class's score minus the label's (Carlini and Wagner's margin): the attack
    raises it (untargeted) or lowers it (targeted). Not cross-entropy: on a confident model its gradient
    rounds to exactly 0 in float32, the sign step then moves nothing and the model looks robust when it is
    not. (Not captum's default either, -log(output), which expects probabilities, not logits.)"""
    own = logits.gather(1, labels[:, None])[:, 0]
    others = logits.masked_fill(F.one_hot(labels, logits.shape[1]).bool(), float("-inf"))
    return others.amax(1) - own


@dataclass
class Attack:
    """One picture before and after an attack."""

    original: np.ndarray      # (C, H, W) 0..1
    changed: np.ndarray       # (C, H, W) 0..1
    before: np.ndarray        # (K,) class probabilities on the original
    after: np.ndarray         # (K,) on the changed picture
    eps: float                # the budget given
    method: str

    @property
    def change(self) -> np.ndarray:
        """changed - original, (C, H, W), each value within +-eps."""
        return self.changed - self.original

    @property
    def size(self) -> float:
        """The largest change to any pixel (L-inf), 0..1."""
        return float(np.abs(self.change).max()) if self.change.size else 0.0

    @property
    def fooled(self) -> bool:
        return int(self.after.argmax()) != int(self.before.argmax())


def amplified(a: Attack) -> np.ndarray:
    """The change made visible: grey where nothing changed, stretched so the largest change is black or
    white (C, H, W) 0..1. The real change is a.size at most."""
    return 0.5 + a.change / (2 * max(a.size, 1e-8))


def attack_one(model: nn.Module, meta: dict, image: torch.Tensor, eps: float, method: str = "pgd",
               target: int | None = None) -> Attack:
    """Attack one uint8 picture (C, H, W): make the model stop giving its answer (target None, "any other")
    or give class `target`, changing no pixel by more than `eps`."""
    classes = int(meta["num_classes"])
    if target is not None and not 0 <= target < classes:
        raise ValueError(f"class {target} does not exist; this model has classes 0..{classes - 1}")
    if not 0 <= eps <= 1:
        raise ValueError(f"the budget is a share of black-to-white, 0..1; got {eps}")
    net = InPixels(model, meta)
    x = pixels(image.unsqueeze(0) if image.dim() == 3 else image).to(net.mean.device)   # (1, C, H, W)
    with torch.no_grad():
        before = torch.softmax(net(x), 1)[0]
    label = torch.tensor([int(before.argmax()) if target is None else target])
    changed = perturb(net, x, label, eps, method, targeted=target is not None)
    with torch.no_grad():
        after = torch.softmax(net(changed), 1)[0]
    return Attack(x[0].cpu().numpy(), changed[0].cpu().numpy(), before.cpu().numpy(), after.cpu().numpy(),
                  float(eps), method)


@dataclass
class Robustness:
    """Accuracy on `n` test images under attacks of growing budget, and each image's smallest budget that
    fooled it (inf where none of the budgets did). An attacker with budget eps may use any smaller change,
    so an image fooled at one budget counts as fooled at every larger one: the curve never rises."""

    budgets: list[float]
    accuracy: list[float]      # one per budget: the share still classified right
    min_eps: np.ndarray        # (n,): the first budget at which the image was misclassified (0: already wrong)
    method: str

    @property
    def n(self) -> int:
        return len(self.min_eps)

    @property
    def flipped(self) -> int:
        """Images right at budget 0 and wrong at some budget."""
        return int(((self.min_eps > 0) & np.isfinite(self.min_eps)).sum())

    @property
    def median_eps(self) -> float | None:
        """The budget that fools half of the images read right at first: the median of their smallest fooling
        budgets, an image no budget fooled counting as beyond the largest (None then: fewer than half fall
        within max_eps). A median over the fooled images only would make a run that holds most images look
        easier to fool than one that holds none."""
        right = self.min_eps[self.min_eps > 0]
        if not len(right):
            return None
        median = float(np.median(right))
        return median if np.isfinite(median) else None

    def summary(self) -> dict:
        return {"n": self.n, "flipped": self.flipped, "median_eps": self.median_eps,
                "max_eps": max(self.budgets), "method": self.method,
                "clean_acc": self.accuracy[0] if self.budgets[0] == 0 else None}


def robustness(model: nn.Module, meta: dict, images: torch.Tensor, labels: torch.Tensor,
               budgets=None, method: str = "pgd", steps: int = CURVE_STEPS, batch: int = 250,
               progress=None, cancelled=lambda: False) -> Robustness:
    """Test accuracy against the attack budget: each image attacked (untargeted, away from its true label)
    at every budget until it is fooled. progress(done, total) after each budget; cancelled() stops between
    batches with InterruptedError."""
    budgets = sorted({0.0, *(float(b) for b in (budgets or budgets_for(meta)))})
    net = InPixels(model, meta)
    labels = labels.long()
    min_eps = np.full(len(labels), np.inf)
    acc = []
    for i, eps in enumerate(budgets):
        standing = np.flatnonzero(np.isinf(min_eps))       # not fooled yet: the only ones worth attacking
        for s in range(0, len(standing), batch):
            if cancelled():
                raise InterruptedError("the robustness curve was cancelled")
            idx = torch.from_numpy(standing[s:s + batch])
            x, y = pixels(images[idx]).to(net.mean.device), labels[idx].to(net.mean.device)
            xa = perturb(net, x, y, eps, method, steps=steps)
            with torch.no_grad():
                wrong = (net(xa).argmax(1) != y).cpu().numpy()
            min_eps[idx.numpy()[wrong]] = eps
        acc.append(float(np.isinf(min_eps).mean()) if len(min_eps) else 0.0)
        if progress:
            progress(i + 1, len(budgets))
    return Robustness(budgets, acc, min_eps, method)


def smallest_attack(model: nn.Module, meta: dict, image: torch.Tensor, max_eps: float, method: str = "pgd",
                    target: int | None = None, rounds: int = 7) -> Attack:
    """The attack with the smallest budget (to within max_eps / 2**rounds) that still changes the model's
    answer (or, with `target`, makes it say that class); the attack at max_eps when even that fails."""
    best = attack_one(model, meta, image, max_eps, method, target)
    if not _worked(best, target):
        return best
    lo, hi = 0.0, max_eps
    for _ in range(rounds):
        mid = (lo + hi) / 2
        tried = attack_one(model, meta, image, mid, method, target)
        if _worked(tried, target):
            best, hi = tried, mid
        else:
            lo = mid
    return best


def _worked(a: Attack, target: int | None) -> bool:
    return a.fooled if target is None else int(a.after.argmax()) == target
