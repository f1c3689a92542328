"""Size limits (cnn_core/nets/limits.py MAX_PARAMS, MAX_ACTIVATION_BYTES): a network over them is refused in words
by layers.problem, TrainConfig.validate(), the CLI (exit 2) and the Train form, and nothing of it is allocated
anywhere; the activation estimate is checked against what autograd really keeps."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pagekit import page_file, shown
from streamlit.testing.v1 import AppTest
from torch import nn

from cnn_core.config import TrainConfig
from cnn_core.nets import architectures, layers, limits

ROOT = Path(__file__).resolve().parent.parent
TRAIN = page_file("train")
TIMEOUT = 90
HUGE = [{"type": "linear", "out": 65536}] * 25       # 1.03e11 parameters whatever the input: 412 GB
WIDE = [{"type": "conv", "out": 64, "kernel": 3, "padding": 1}, {"type": "flatten"},
        {"type": "linear", "out": 65536}]           # small without an input; 3.3e9 (13 GB) on 1x28x28
JUST_OVER = [{"type": "linear", "out": 65536}]      # 784 x 65,536 + ...: 52 million on 1x28x28, 208 MB
RESNET_MAX = {"n_chans1": 256, "n_blocks": 100}     # res-net-deep with both knobs at their top


def _no_big_data(limit: int = 4 << 30):
    """For a child process: a 4 GiB cap on its heap, so that a model wrongly built fails at once instead of
    taking the machine's memory (RLIMIT_DATA counts anonymous mappings since Linux 4.7)."""
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def test_a_huge_layer_list_is_refused_with_its_numbers_before_any_shape_is_known():
    """25 linear layers of 65,536 units: layers.problem says how many parameters, what they weigh, the limit."""
    why = layers.problem(HUGE)
    assert why == ("this network has at least 103,081,050,114 parameters (about 412 GB of weights, whatever the "
                   "image); the limit is 50,000,000 (CNN_MAX_PARAMS): use fewer or narrower layers")
    assert layers.problem(WIDE) is None and layers.problem(layers.DEFAULT) is None


def test_validate_refuses_too_large_models_without_allocating_them():
    """In a fresh process: validate() refuses each too-large model with its numbers, and the process's peak
    resident memory grows by under 64 MB over all of them (the smallest, JUST_OVER, weighs 208 MB)."""
    code = f"""
import json, resource, sys
from cnn_core.config import TrainConfig
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
TrainConfig().validate()                      # imports, data checks: the baseline
before, out = peak(), {{}}
for name, arch, params in [("huge", "custom", {{"layers": {HUGE!r}}}), ("wide", "custom", {{"layers": {WIDE!r}}}),
                           ("just_over", "custom", {{"layers": {JUST_OVER!r}}}),
                           ("resnet", "res-net-deep", {RESNET_MAX!r})]:
    out[name] = TrainConfig(arch=arch, arch_params=params).validate()
out["grew"] = peak() - before
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=os.environ.copy(), capture_output=True,
                          text=True, timeout=120, preexec_fn=_no_big_data)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert "at least 103,081,050,114 parameters" in out["huge"]["arch_params.layers"]
    assert out["wide"]["arch"].startswith("this network has 3,289,055,882 parameters (about 13 GB of weights); "
                                          "the limit is 50,000,000")
    assert out["just_over"]["arch"].startswith("this network has 52,101,130 parameters (about 208 MB")
    assert "this network has 59,437,930 parameters" in out["resnet"]["arch"]
    assert out["grew"] < 64 << 20, out["grew"]


@pytest.mark.parametrize("stack, words", [
    (HUGE, "  layers: {file}: this network has at least 103,081,050,114 parameters (about 412 GB of weights"),
    (WIDE, "  arch: this network has 3,289,055,882 parameters (about 13 GB of weights); the limit is 50,000,000"),
], ids=["refused-by-the-list", "refused-for-the-input"])
def test_cli_train_layers_exits_2_and_writes_nothing(stack, words, tmp_path, runs_dir):
    """`python -m cnn_core train --layers FILE` as a process: exit 2, the numbers in words, no traceback,
    nothing in the runs folder (and no allocation: a 4 GiB heap cap would turn one into a traceback)."""
    file = tmp_path / "layers.json"
    file.write_text(json.dumps(stack))
    done = subprocess.run([sys.executable, "-m", "cnn_core", "train", "--layers", str(file), "--quiet"], cwd=ROOT,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=120,
                          preexec_fn=_no_big_data)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.startswith("error: invalid training config:") and "Traceback" not in done.stderr
    assert words.format(file=file) in done.stderr, done.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_registry_knob_pushed_too_far_is_refused_the_same_way():
    """res-net-deep with 256 channels and 100 blocks: 59 million parameters and 4 GB of activations a batch of
    64; refused with both numbers. 40 blocks is within the limits."""
    why = TrainConfig(arch="res-net-deep", arch_params=RESNET_MAX).validate()["arch"]
    assert why.startswith("this network has 59,437,930 parameters (about 238 MB of weights); the limit is "
                          "50,000,000 (CNN_MAX_PARAMS)")
    assert ("one training batch of 64 images keeps about 4.0 GB of activations for the backward pass (62 MB an "
            "image); the limit is 2 GB (CNN_MAX_ACTIVATION_BYTES): use a batch of at most 32 images") in why
    assert TrainConfig(arch="res-net-deep", arch_params={"n_chans1": 256, "n_blocks": 40}).validate() == {}


def test_a_large_batch_is_refused_for_its_activations_and_the_limits_can_be_raised(monkeypatch):
    """res-net-deep at its defaults keeps about 1 MB an image on 1x28x28: a batch of 8,192 is over 2 GB and
    refused, naming the batch that fits; CNN_MAX_ACTIVATION_BYTES and CNN_MAX_PARAMS raise the limits."""
    big_batch = TrainConfig(arch="res-net-deep", batch_size=8192)
    assert "use a batch of at most 2,024 images" in big_batch.validate(check_data=False)["arch"]
    over = TrainConfig(arch="custom", arch_params={"layers": JUST_OVER})
    assert "arch" in over.validate()
    monkeypatch.setenv("CNN_MAX_ACTIVATION_BYTES", "1e10")
    monkeypatch.setenv("CNN_MAX_PARAMS", "100_000_000")
    assert big_batch.validate(check_data=False) == {} and over.validate() == {}
    monkeypatch.setenv("CNN_MAX_PARAMS", "lots")               # not a number: the default holds
    assert "arch" in over.validate()


def test_build_model_refuses_a_too_large_model_before_allocating_it():
    """Every real build (training, a checkpoint's rebuild) counts on meta first: ValueError, no allocation."""
    with pytest.raises(ValueError, match="this network has 52,101,130 parameters"):
        architectures.build_model("custom", (1, 28, 28), 10, {"layers": JUST_OVER})
    with pytest.raises(ValueError, match="this network has 59,565,418 parameters"):
        architectures.build_model("res-net-deep", (3, 32, 32), 10, RESNET_MAX)
    model = architectures.build_model("custom", (1, 28, 28), 10, {"layers": JUST_OVER}, meta=True)
    assert next(model.parameters()).is_meta and architectures.count_params("res-net-deep", (3, 32, 32), 10,
                                                                    RESNET_MAX) == 59_565_418


# ---- the activation estimate against torch's own figure ------------------------------------------------
def _saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """What autograd really keeps of one training forward for the backward pass: every saved tensor's
    storage once, the parameters left out."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model.train()(x).sum().backward()
    return sum(seen.values()) + x.numel() * x.element_size() * (x.untyped_storage().data_ptr() not in seen)


@pytest.mark.parametrize("arch, params, shape", [
    ("custom", {"layers": layers.DEFAULT}, (1, 28, 28)),
    ("custom", {"layers": [{"type": "conv", "out": 8, "padding": 1}, {"type": "batchnorm"},
                           {"type": "residual", "channels": 16}, {"type": "dropout2d"}, {"type": "globalpool"},
                           {"type": "linear", "out": 32}, {"type": "dropout"}]}, (3, 32, 32)),
    ("lenet", {}, (1, 28, 28)), ("deep-cnn", {"batch_norm": True}, (3, 32, 32)), ("res-net-deep", {}, (3, 32, 32)),
    ("fast-cnn", {}, (3, 32, 32)), ("mlp", {}, (1, 28, 28)),
])
def test_the_activation_estimate_is_within_a_factor_2_of_what_autograd_keeps(arch, params, shape):
    """Estimated (meta, one image, x batch x 4 bytes) against the saved tensors of a real training forward
    on a batch of 16; for a layer list the plan's figure is the meta one exactly."""
    batch = 16
    estimate = architectures.activation_values(architectures.build_model(arch, shape, 10, params, meta=True), shape)
    if arch == "custom":
        assert layers.activation_values(layers.plan(params["layers"], shape, 10), shape) == estimate
    torch.manual_seed(0)
    real = _saved_bytes(architectures.build_model(arch, shape, 10, params), torch.randn(batch, *shape))
    ratio = estimate * batch * limits.BYTES_PER_VALUE / real
    assert 0.5 <= ratio <= 2, (estimate * batch * 4, real)


def test_the_layer_table_on_meta_is_the_real_models():
    """The form draws the layer table on meta (nothing allocated): the same rows and totals as a real build."""
    from ui import views

    for arch in architectures.ARCHITECTURES:
        real = views.layer_frame("cifar10", arch, {})
        with architectures.on_meta():
            meta = views.layer_frame("cifar10", arch, {})
        assert meta[1] == real[1] and meta[0].equals(real[0]), arch


# ---- the Train form ------------------------------------------------------------------------------------
def _real_builds(monkeypatch) -> list[str]:
    """The class of every conv or linear layer whose weights were made off the meta device."""
    found: list[str] = []
    for cls in (nn.Conv2d, nn.Linear):
        original = cls.reset_parameters

        def spy(self, original=original):
            if not self.weight.is_meta:
                found.append(type(self).__name__)
            return original(self)
        monkeypatch.setattr(cls, "reset_parameters", spy)
    return found


def test_the_train_form_refuses_a_too_large_network_in_words_and_allocates_none(runs_dir, monkeypatch):
    """The layer editor's list over the limit: the editor and the form say so with the numbers, Launch is
    off, and neither that model nor the accepted default was built for real on any rerun (only on meta)."""
    at = AppTest.from_file(TRAIN, default_timeout=TIMEOUT).run()
    real = _real_builds(monkeypatch)
    at.selectbox(key="train.arch").set_value("custom").run()
    assert not at.exception and not at.button(key="train.launch").disabled
    assert any("Activations kept for the backward pass" in m.value for m in at.markdown)
    at.session_state["train.p.custom.layers"] = json.loads(json.dumps(JUST_OVER))
    at.run()
    errors = [shown(e.value) for e in at.error]     # as read (views.md escapes a value)
    words = ("this network has 52,101,130 parameters (about 208 MB of weights); the limit is 50,000,000 "
             "(CNN_MAX_PARAMS): use fewer or narrower layers")
    assert errors.count(words) == 2, errors                  # in the editor, and under Architecture
    assert at.button(key="train.launch").disabled
    assert any("Launch is off" in str(w.value) for w in at.warning)
    at.session_state["train.p.custom.layers"] = json.loads(json.dumps(HUGE))
    at.run()
    assert any("at least 103,081,050,114 parameters" in shown(e.value) for e in at.error)
    assert at.button(key="train.launch").disabled and not at.exception
    assert real == [] and not runs_dir.exists() or not any(runs_dir.iterdir())
