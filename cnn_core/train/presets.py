"""Presets: named sets of TrainConfig values per dataset, to start from. `tutorial` is what the tutorials
this product grew from did (so a learner starts where the tutorial started); `fast` is the shortest time
to a good model on a laptop CPU, each choice with the measured reason beside it. CIFAR-2 has one
tutorial preset per model of its tutorial (Deep Learning with PyTorch, chapter 8).

A preset fills the Train form (every value visible and editable) or `python -m cnn_core train --preset
NAME` (flags given with it win). `measured` is what bench/time_to_accuracy.py got on this project's
2-core CPU: the Train page shows it beside the picker.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str
    purpose: str                # one line: what it is for, what it does
    values: dict = field(default_factory=dict)   # TrainConfig fields (arch_params included), dataset excepted
    measured: str = ""          # "about 12 s to 91.3% test accuracy on a 2-core CPU (3 seeds: ...)"


# The MNIST tutorial: the deep CNN, Adam at 0.005, 10 epochs ("98-99 % after 10 epochs").
_DIGITS_TUTORIAL = dict(arch="deep-cnn", arch_params={}, optimizer="adam", lr=0.005, schedule="none", batch_size=64,
                        epochs=10, weight_decay=0.0, label_smoothing=0.0, augment="none")
# The CIFAR-2 tutorial's loop: plain SGD (no momentum) at 1e-2, batch 64, 100 epochs, no schedule.
_CIFAR_LOOP = dict(optimizer="sgd", lr=1e-2, momentum=0.0, nesterov=False, schedule="none", batch_size=64,
                   epochs=100, weight_decay=0.0, label_smoothing=0.0, augment="none")
_NET = dict(arch="cifar-net", arch_params={"n_chans1": 16, "activation": "tanh"})
_WIDTH = dict(arch="cifar-net", arch_params={"n_chans1": 32, "activation": "tanh"})


# The fast presets' common part. What was kept, and why (each measured on this project's 2-core CPU, an AMD
# EPYC with avx512_bf16: `amp` auto trains them in bfloat16 there; bench/time_to_accuracy.py and single runs):
# - fast-cnn (after cifar10-airbench: batch norm after every conv, GELU, global max-pool). Widths that are not
#   multiples of 16 ran 2x slower per parameter (24: 1,200-1,900 images/s against 3,300 for 16).
# - bfloat16 (amp auto): the engine trains the presets' layout at 1.47x and fast-cnn width 32 at 1.44x the
#   float32 images/s (bench/peak_flops.py; a bare step of width 16 gains only 1.27-1.44x), to the same accuracy
#   within seed noise (bench/precision_accuracy.py, README's Performance).
# - one-cycle to 0.1 with Nesterov momentum 0.9, label smoothing 0.1, weight decay 5e-4: airbench's
#   choices, kept as they are (not ablated one by one here; the first try with them met the targets).
# - batch 128: 256 (at lr 0.2) was no faster (26 s against 26-28 s for 2 Fashion-MNIST epochs) and scored
#   0.9065 against 0.9108-0.9114; in bfloat16, full-size stem, 64, 128 and 256 ran alike (2,623-2,692 images/s).
# - channels_last and the data on the device as tensors with whole-batch augmentation: the engine always
#   does both (channels_last: 2,350 against 1,450 images/s for a width-16 net of this kind); crop+flip costs ~2 ms a batch.
# Not taken: lookahead/EMA of the weights, a higher rate for batch-norm biases and alternating flips (not
# tried: each asks for optimizer or augmentation state that resume and the exported script must carry, for
# gains airbench measured over a few GPU epochs). Whitening was tried: it is the `whiten` stem (below).
_FAST = dict(arch="fast-cnn", arch_params={"width": 16, "stem": "patch"}, optimizer="sgd", lr=0.1, momentum=0.9,
             nesterov=True, schedule="onecycle", batch_size=128, weight_decay=5e-4, label_smoothing=0.1)
# CIFAR-10, 12 epochs each, seed 0, in bfloat16 (test accuracy; the engine's images/s):
#   stem full (2x2 conv at 31x31), width 16, 3 blocks: 0.886 (2,460 images/s)   <- taken
#   stem conv (3x3 conv, pool), width 32, 3 blocks:     0.878 (2,500)
#   stem whiten (airbench's whitening, pool), width 32, 3 blocks: 0.867 (3,350): per second about the old layout
#   stem patch (2x2 stride 2), width 32, 2 blocks:      0.864 (2,940): the old preset's layout at width 32
# The stride-2 patch stem loses the full-size detail that CIFAR's small objects need; a full-size first block
# at width 16 costs less than doubling the width at half size.
_FULL = {"width": 16, "stem": "full", "blocks": 3}


def _tutorial_cifar2(name: str, purpose: str, **values) -> Preset:
    return Preset(name, "cifar2", purpose, {**_CIFAR_LOOP, **values})


PRESETS: tuple[Preset, ...] = (
    Preset("tutorial", "mnist", "The MNIST tutorial's run: the deep CNN, Adam at 0.005, batch 64, 10 epochs, "
           "no schedule and no augmentation (it reported 98-99 %).", _DIGITS_TUTORIAL),
    Preset("tutorial", "fashion-mnist", "The MNIST tutorial's run on Fashion-MNIST, unchanged: the deep CNN, "
           "Adam at 0.005, batch 64, 10 epochs.", _DIGITS_TUTORIAL),
    _tutorial_cifar2("tutorial", "The CIFAR-2 tutorial's first net: two convs (16 and 8 channels), tanh, plain "
                     "SGD at 0.01, batch 64, 100 epochs (it reported 0.8995 validation accuracy).", **_NET),
    _tutorial_cifar2("tutorial-width", "The tutorial's wider net: 32 and 16 channels, the same loop.", **_WIDTH),
    # The tutorial adds 0.001 * sum(w^2) to the loss; its gradient is 0.002 * w, which is SGD's weight decay 0.002.
    _tutorial_cifar2("tutorial-l2", "The wider net with the tutorial's L2 penalty, 0.001 × the sum of squared "
                     "weights added to the loss: SGD weight decay 0.002 gives the same gradient.",
                     **_WIDTH, weight_decay=0.002),
    _tutorial_cifar2("tutorial-dropout", "The wider net with Dropout2d(0.4) after each conv stage.",
                     arch="cifar-net", arch_params={"n_chans1": 32, "activation": "tanh", "dropout": 0.4}),
    _tutorial_cifar2("tutorial-batchnorm", "The wider net with batch norm after each conv.",
                     arch="cifar-net", arch_params={"n_chans1": 32, "activation": "tanh", "batch_norm": True}),
    _tutorial_cifar2("tutorial-res", "The tutorial's NetRes: a skip connection around the third conv, "
                     "32 channels, the same loop.", arch="res-net-small", arch_params={"n_chans1": 32}),
    _tutorial_cifar2("tutorial-resdeep", "The tutorial's NetResDeep with 10 distinct residual blocks (its "
                     "list repeated one block), SGD at 3e-3 (it reported 0.8835).",
                     arch="res-net-deep", arch_params={"n_chans1": 32, "n_blocks": 10}, lr=3e-3),
    Preset("tutorial", "cifar10", "The CIFAR-2 tutorial's first net and loop on all ten classes (the tutorials "
           "train CIFAR-2 only): two tanh convs, plain SGD at 0.01, batch 64, 100 epochs.", {**_CIFAR_LOOP, **_NET}),
    # CIFAR-2: the full-size layout (_FULL), 8 epochs, bfloat16: 0.936, 0.931 and 0.937 (seeds 0-2) in 31-33 s of
    # training, about a tenth of the tutorial's 100 epochs timed in the same session (304 s; 485 s in an earlier
    # one). 7 epochs: 0.935, 0.939, 0.928 in 28 s (one seed short of 0.93); 10 epochs: 0.938-0.9435 in 38-48 s;
    # 12 epochs with crops and flips 0.942 in 48 s (seed 0). The layout before (width 16, patch stem, 6 epochs,
    # float32) reached 0.9105-0.9205 in 16 s; mirroring at test time adds about half a point.
    Preset("fast", "cifar2", "The quickest way found here past 93 %: fast-cnn with a full-size first block, "
           "one-cycle SGD to 0.1, label smoothing, 8 epochs, each test image also read mirrored.",
           {**_FAST, "arch_params": dict(_FULL), "epochs": 8, "augment": "none", "tta": True},
           "about 32 s of training to 93.1-93.7% test accuracy (3 seeds, bfloat16), a tenth of the tutorial's run"),
    # Fashion-MNIST: the full-size layout (_FULL), 2 epochs, bfloat16: 0.9241, 0.9223 and 0.9236 (seeds 0-2) in
    # 35-43 s of training (this machine ran 2,740-3,370 images/s through them). Seed 0 against the rest: 3 epochs
    # of it 0.9304 in 54 s (too near the minute); the 3x3 stem with a pool and 3 blocks, 4 epochs 0.9224 in 33 s
    # and 5 epochs 0.9231 in 39 s; the stride-2 patch stem, 5 epochs 0.9218 in 27 s: each within a few tenths
    # of 0.92. The layout before (patch stem, 3 epochs, float32) reached 0.9136-0.9161 in 40 s.
    Preset("fast", "fashion-mnist", "The quickest way found here past 92 %: fast-cnn with a full-size first block, "
           "one-cycle SGD to 0.1, label smoothing, 2 epochs.",
           {**_FAST, "arch_params": dict(_FULL), "epochs": 2, "augment": "none"},
           "about 35-43 s of training to 92.2-92.4% test accuracy (3 seeds, bfloat16)"),
    # CIFAR-10: the full-size layout (_FULL) in bfloat16 ran 2,496-2,549 images/s; 28 epochs reached 0.9022,
    # 0.9007 and 0.9017 (seeds 0-2) in 542, 554 and 552 s of training, validation included. 30 epochs would
    # take about 590 s: too close to 10 minutes on a slower stretch of this machine. The layout before (width 16,
    # patch stem, 40 epochs, float32) reached 0.852-0.863 in 531-597 s.
    Preset("fast", "cifar10", "The quickest recipe found here past 90 % on CIFAR-10: fast-cnn with a full-size "
           "first block, one-cycle SGD to 0.1, label smoothing, random crops and flips, 28 epochs, each test "
           "image also read mirrored.",
           {**_FAST, "arch_params": dict(_FULL), "epochs": 28, "augment": "standard", "tta": True},
           "about 9 min of training to 90.1-90.2% test accuracy (3 seeds, bfloat16)"),
    # MNIST (the 10k subset offline; 1,429 test digits, so one digit is 0.07 point and seeds differ by a few
    # tenths): affine augmentation is what carries it past 0.99 (0.9853 at 8 epochs without, 0.9902-0.9916 with,
    # float32). In bfloat16, 12 epochs reached 0.9902, 0.9944 and 0.9895 (seeds 0-2) in 9.7-10.8 s; 8 epochs
    # 0.9839, 0.9923 and 0.9902 in 6-8.5 s (its best-validation epoch on seed 0 came early, at 5 of 8: the final
    # weights read 0.9888); width 32 for 8 epochs 0.9923-0.9937 but in 16-18 s, for 5 epochs 0.9811-0.9909.
    Preset("fast", "mnist", "Past 99 % quickly: fast-cnn, one-cycle SGD to 0.1, small rotations, scales and "
           "shifts of each digit, 12 epochs.", {**_FAST, "epochs": 12, "augment": "affine"},
           "about 10 s of training to 98.9-99.4% test accuracy on the 10k subset (seeds 0-2: 0.9902, 0.9944, 0.9895)"),
)


def for_dataset(dataset: str) -> dict[str, Preset]:
    """The presets of `dataset` by name, in the order shown. A dataset added from pictures gets the fast
    recipe of the built-in set it resembles: CIFAR-2's for colour pictures, Fashion-MNIST's for grey."""
    found = {p.name: p for p in PRESETS if p.dataset == dataset}
    if found:
        return found
    # torch: only for a dataset that has no preset of its own
    from cnn_core.data import catalog

    if dataset in catalog.DATASETS:
        return found
    try:
        info = catalog.get_info(dataset)
    except ValueError:
        return {}
    like = "cifar2" if info.input_shape[0] == 3 else "fashion-mnist"
    base = next(p for p in PRESETS if p.dataset == like and p.name == "fast")
    return {"fast": Preset("fast", dataset, f"{catalog.get_info(like).title}'s fast recipe, for pictures like "
                           f"its own; not measured on yours: {base.purpose}", dict(base.values))}


def get(name: str, dataset: str) -> Preset:
    """The preset `name` of `dataset`; ValueError naming the ones it has."""
    found = for_dataset(dataset)
    if name not in found:
        have = ", ".join(found) or "none"
        raise ValueError(f"no preset {name!r} for {dataset}; its presets: {have}")
    return found[name]


def values(name: str, dataset: str) -> dict:
    """The TrainConfig values of a preset, its dataset included (a fresh copy: arch_params is a dict)."""
    preset = get(name, dataset)
    return {**preset.values, "arch_params": dict(preset.values.get("arch_params", {})), "dataset": dataset}
