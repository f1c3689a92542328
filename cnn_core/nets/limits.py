"""How big a network may be: its parameters and one training batch's activations against the limits, each
said in words with the number that fits. Counted before anything is allocated (from a layer plan, or on the
meta device: nets/layers.py, nets/architectures.py), in the server, the CLI and the training process."""
from __future__ import annotations

import os

from cnn_core.data.guards import fmt_bytes

# Size limits: far above any network a learner makes here, far below what hurts the machine. Either can be
# raised for one process by its environment variable (a whole number), e.g. CNN_MAX_PARAMS=200000000.
# Parameters: the registry's models have 12 thousand to 160 thousand at their defaults and 7.4 million at
# most with every knob at its top (res-net-deep aside: 59 million with 256 channels and 100 blocks);
# ResNet-50 has 25.6 million. 50 million float32 weights are 200 MB, and training holds four copies (weights,
# gradients, Adam's two moments: 800 MB) and writes three to every checkpoint.
MAX_PARAMS = 50_000_000
# Activations: what autograd keeps of one training batch for the backward pass, about every layer's output
# in float32 (within a factor of 2 of torch's own figure: tests/test_model_size.py). The largest registry
# model at its defaults (res-net-deep on 32x32) keeps 1.3 MB an image: 83 MB for a batch of 64 (the presets
# use 64 and 128), 2 GB only past 1,539 images. 2 GB leaves an 8 GB laptop room for the dashboard, the
# dataset and a second run (CNN_MAX_JOBS is 2 with CUDA).
MAX_ACTIVATION_BYTES = 2_000_000_000
BYTES_PER_VALUE = 4                   # float32


def _limit(env: str, default: int) -> int:
    """The limit the environment variable `env` sets (a whole number above 0, "1e8" and "100_000_000" too),
    else `default` (a value that is not one is ignored)."""
    raw = os.environ.get(env, "").strip().replace("_", "")
    try:
        value = int(float(raw)) if raw else default
    except (ValueError, OverflowError):
        return default
    return value if value > 0 else default


def max_params() -> int:
    return _limit("CNN_MAX_PARAMS", MAX_PARAMS)


def max_activation_bytes() -> int:
    return _limit("CNN_MAX_ACTIVATION_BYTES", MAX_ACTIVATION_BYTES)


def params_problem(n: int, at_least: bool = False) -> str | None:
    """Why `n` parameters are too many, or None. at_least: `n` is a lower bound (params_at_least)."""
    limit = max_params()
    if n <= limit:
        return None
    return (f"this network has {'at least ' if at_least else ''}{n:,} parameters (about "
            f"{fmt_bytes(n * BYTES_PER_VALUE)} of weights{', whatever the image' if at_least else ''}); the limit "
            f"is {limit:,} (CNN_MAX_PARAMS): use fewer or narrower layers")


def activations_problem(values: int, batch_size: int) -> str | None:
    """Why one training batch keeping `values` activations an image is too much, or None."""
    per_image, limit = values * BYTES_PER_VALUE, max_activation_bytes()
    if per_image * batch_size <= limit:
        return None
    fits = limit // per_image
    fix = (f"use a batch of at most {fits:,} images, or" if fits >= 1 else "even one image is over it:")
    return (f"one training batch of {batch_size:,} images keeps about {fmt_bytes(per_image * batch_size)} of "
            f"activations for the backward pass ({fmt_bytes(per_image)} an image); the limit is "
            f"{fmt_bytes(limit)} (CNN_MAX_ACTIVATION_BYTES): {fix} fewer or narrower layers, or pool earlier")
