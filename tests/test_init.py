"""The initial weights as a setting (`init`: recipe.init_weights): what each choice does to a model as built,
and what it does to a real run on the MNIST subset: default learns, zeros and too-small stay at chance (the
gradients reaching the convs are 0 and ~1e-9), too-large starts with a far higher loss and blows up. The
exported script starts as the run did, a resume keeps its weights, and a run made before the setting
existed loads, resumes and exports with the default."""
from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from cnn_core import config as config_module
from cnn_core import recipe
from cnn_core.cli.entry import main
from cnn_core.config import TrainConfig
from cnn_core.export import standalone
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, metrics_log, store
from cnn_core.train import trainer
from cnn_core.train.engine import run_training

ROOT = Path(__file__).resolve().parent.parent
# LeNet's defaults (SGD 0.03, momentum 0.9, cosine, batch 64), one epoch: default reaches 95.9% validation.
RUN = dict(dataset="mnist", arch="lenet", epochs=1, seed=0)


def _train(**overrides) -> tuple[store.Run, Path]:
    path = store.create_run(TrainConfig(**{**RUN, **overrides}))
    return run_training(path), path


def _grad_sizes(path: Path) -> dict[str, float]:
    """The root mean square of each layer's weight gradient at the last epoch's end (the run's grads line)."""
    grads = [m for m in metrics_log.read_metrics(path) if m["kind"] == "grads"][-1]
    return {name: layer["rms"] for name, layer in grads["layers"].items()}


def _epochs(path: Path) -> list[dict]:
    return [m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]


# ---- the setting and the recipe ----------------------------------------------------------------------------
def test_the_setting_offers_what_the_recipe_does():
    """config.INITS (the form's and the flag's choices) are recipe.INITS; default is the default; another
    value is refused naming the choices, by validate() and by the recipe."""
    assert config_module.INITS == recipe.INITS
    assert TrainConfig().init == "default"
    assert TrainConfig(init="ones").validate(check_data=False)["init"] == \
        "init must be one of default, zeros, too-small, too-large; got 'ones'"
    with pytest.raises(ValueError, match="unknown init 'ones'; choose one of: default, zeros, too-small"):
        recipe.init_weights(torch.nn.Linear(2, 2), {"init": "ones"})


def _built(arch: str, params: dict | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(arch, (1, 28, 28), 10, params or {})


@pytest.mark.parametrize("init,factor", [("default", 1.0), ("zeros", 0.0), ("too-small", 0.01), ("too-large", 10.0)])
def test_each_init_scales_the_weights_as_built_and_draws_no_random_number(init, factor):
    """Every conv and linear weight and bias is PyTorch's draw times 1, 0, 0.01 or 10; batch norm keeps its 1
    and 0; no random number is drawn (a run's batches and dropout are those of its default twin)."""
    as_built = _built("cifar-net", {"batch_norm": True}).state_dict()
    model = _built("cifar-net", {"batch_norm": True})
    rng = torch.get_rng_state()
    recipe.init_weights(model, {"init": init})
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in model.state_dict().items():
        layer = name.rsplit(".", 1)[0]
        scaled = isinstance(model.get_submodule(layer), (torch.nn.Conv2d, torch.nn.Linear))
        assert torch.equal(value, as_built[name] * factor if scaled else as_built[name]), name
    assert model.features.bn1.weight.eq(1).all()


def test_the_initial_loss_of_each_init_in_the_trainer(real_mnist):
    """The trainer's model before its first step, on the validation images: default and the zero-ish starts
    are near ln 10 = 2.30 nats; too-large starts hundreds of times higher (892 for LeNet)."""
    start = {}
    for init in recipe.INITS:
        run = trainer.Trainer(store.create_run(TrainConfig(**RUN, init=init)))
        start[init], _ = recipe.evaluate(run.model, run.splits.val_x, run.splits.val_y)
    assert start["zeros"] == pytest.approx(math.log(10), abs=1e-6)       # every logit 0: uniform
    assert start["too-small"] == pytest.approx(math.log(10), abs=1e-3)
    assert start["default"] == pytest.approx(math.log(10), abs=0.1)
    assert start["too-large"] > 100 * start["default"], start


# ---- real runs on the MNIST subset ---------------------------------------------------------------------------
def test_default_learns(real_mnist):
    """PyTorch's own init: above 90% test accuracy after one epoch (94.7% test, 95.9% validation measured), with
    gradients of ~1e-2 reaching the convs."""
    record, path = _train(init="default")
    assert record.status == "completed", record.error
    assert record.summary["test_acc"] > 0.9, record.summary
    assert min(_grad_sizes(path).values()) > 1e-3, _grad_sizes(path)


def test_zeros_from_the_cli_stays_at_chance_with_identical_units(real_mnist, runs_dir, capsys):
    """`train --init zeros`: the run ends at chance accuracy (the commonest class), every logged gradient is
    0, and each conv's filters are still all alike (all 0): no unit ever differed from its neighbours."""
    assert main(["train", "--dataset", "mnist", "--arch", "lenet", "--epochs", "1", "--init", "zeros",
                 "--quiet"]) == 0, capsys.readouterr().err
    (record,) = store.readable(store.list_runs(runs_dir))
    assert record.config["init"] == "zeros"
    assert abs(record.summary["test_acc"] - record.summary["chance_acc"]) < 0.02, record.summary
    assert set(_grad_sizes(record.path).values()) == {0.0}
    weights = checkpoints.load_checkpoint(record.path / store.CHECKPOINT)["model"]
    for name in ("features.conv1.weight", "features.conv2.weight"):
        filters = weights[name]                                          # (out, in, k, k)
        assert torch.equal(filters, filters[:1].expand_as(filters)) and not filters.any(), name


def test_the_cli_refuses_an_unknown_init(runs_dir, capsys):
    """`--init ones` exits 2 naming the choices; nothing is written."""
    assert main(["train", "--init", "ones"]) == 2
    assert "init: init must be one of default, zeros, too-small, too-large; got 'ones'" in capsys.readouterr().err
    assert store.list_runs(runs_dir) == []


def test_too_small_stays_at_chance_with_vanishing_gradients(real_mnist):
    """Every weight x0.01: the loss stays at ln 10 and the gradients reaching the convs are under 1e-6
    (~5e-9 measured, against ~1e-2 for default): nothing learns in an epoch."""
    record, path = _train(init="too-small")
    assert record.status == "completed", record.error
    assert abs(record.summary["test_acc"] - record.summary["chance_acc"]) < 0.02, record.summary
    assert _epochs(path)[-1]["val_loss"] == pytest.approx(math.log(10), abs=0.01)
    sizes = _grad_sizes(path)
    assert sizes["features.conv1"] < 1e-6 and sizes["features.conv2"] < 1e-6, sizes


def test_too_large_blows_up_at_once_and_says_why(real_mnist):
    """Every weight x10: LeNet's loss averages ~1,950 over its first 20 steps; the run fails there as
    diverged, naming the init rather than the learning rate."""
    record, _ = _train(init="too-large")
    assert record.status == "failed"
    assert record.error.startswith("the training loss diverged") and "at step 20 (epoch 1)" in record.error
    assert "started 10 times PyTorch's own (init too-large): start from init default" in record.error
    assert "Lower the learning rate" not in record.error


def test_a_resume_keeps_the_weights_it_saved(real_mnist, monkeypatch):
    """A zeros run stopped at step 7 and resumed ends with exactly the metrics of one never stopped: the
    resumed model is the checkpoint's (its learned last bias), not a fresh zeros."""
    _, whole = _train(init="zeros")
    path = store.create_run(TrainConfig(**RUN, init="zeros"))
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)

    def cancel_at(progress):
        if progress["step"] == 7:
            (path / store.CANCEL).touch()
    assert run_training(path, on_progress=cancel_at).status == "cancelled"
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 1.0)           # the rest at the usual pace
    assert run_training(path, resume=True).status == "completed"
    assert _epochs(path) and [{k: m[k] for k in ("train_loss", "val_loss", "val_acc")} for m in _epochs(path)] == \
        [{k: m[k] for k in ("train_loss", "val_loss", "val_acc")} for m in _epochs(whole)]


# ---- the exported script, and runs made before the setting ------------------------------------------------
def test_the_exported_script_starts_from_zeros_as_the_run_did(real_mnist, tmp_path):
    """The standalone file of a zeros run sets the same initial weights (init_weights, RUN['init']) and
    gives the run's first epoch to the float: chance, not the 96% a default start reaches."""
    _, path = _train(init="zeros")
    out = standalone.write(path, tmp_path / "zeros.py")
    text = out.read_text()
    assert "init_weights(model, RUN, train_x)" in text and "'init': 'zeros'" in text
    done = subprocess.run([sys.executable, str(out), "--epochs", "1", "--data-dir", str(real_mnist)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})   # no PYTHONPATH: no cnn_core
    assert done.returncode == 0, done.stderr[-3000:]
    first = json.loads(done.stdout.splitlines()[0])
    run = _epochs(path)[0]
    assert (first["val_acc"], first["val_loss"]) == (run["val_acc"], run["val_loss"]), (first, run)
    assert first["train_loss"] == pytest.approx(run["train_loss"]) and first["val_acc"] < 0.2


def test_a_run_made_before_the_setting_resumes_and_exports_with_the_default():
    """run.json and checkpoint without `init` (as written before it existed): the run resumes for one more
    epoch and exports with init default."""
    path = store.create_run(TrainConfig(dataset="mnist", arch="lenet", epochs=1, val_size=100, batch_size=32,
                                        log_every=5, seed=3))
    assert run_training(path).status == "completed"
    old = {k: v for k, v in store.read_run(path).config.items() if k != "init"}
    store.update_run(path, config={**old, "epochs": 2})
    ckpt = checkpoints.load_checkpoint(path / store.CHECKPOINT)
    ckpt["config"].pop("init")
    checkpoints.save_atomic(ckpt, path / store.CHECKPOINT)
    assert "init" not in store.read_run(path).config
    record = run_training(path, resume=True)
    assert record.status == "completed" and [m["epoch"] for m in _epochs(path)] == [1, 2], record.error
    text = standalone.script(path)
    assert "'init': 'default'" in text
    ast.parse(text)


# ---- the Train form --------------------------------------------------------------------------------------------
def _form():
    from ui.train import form as train_form

    train_form.init_state()
    train_form.new_run()


def test_the_form_draws_the_choices_and_says_why_zeros_cannot_learn():
    """Under More settings, Initialisation holds the four choices (default first); picking zeros shows the
    one line on why it cannot learn, and the header counts the change."""
    from ui.train import form as train_form

    assert sorted(sum(train_form.COLUMNS, ())) == sorted(train_form.GROUPS)   # every group has its column
    at = AppTest.from_function(_form, default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="train.init")
    assert (box.label, box.options, box.value) == ("Initial weights", list(recipe.INITS), "default")
    assert train_form.ZEROS_NOTE not in [c.value for c in at.caption]
    box.set_value("zeros").run()
    assert train_form.ZEROS_NOTE in [c.value for c in at.caption]
    assert any(e.label.startswith("More settings (1 changed)") for e in at.expander)


def test_a_whitening_layer_decorrelates_the_patches_and_is_not_learned():
    """recipe.whiten (airbench's patch whitening): on images whose channels are correlated, the first half of
    the filters give outputs with covariance about the identity (the second half are their negatives), the
    filters are kept out of training (no gradient), and a whitening model without images is refused."""
    from cnn_core.nets.architectures import build_model

    g = torch.Generator().manual_seed(0)
    base = torch.randn(600, 1, 32, 32, generator=g)
    images = torch.cat([base, 0.8 * base + 0.2 * torch.randn(600, 1, 32, 32, generator=g),
                        torch.randn(600, 1, 32, 32, generator=g)], 1)        # red and green alike
    model = build_model("fast-cnn", (3, 32, 32), 10, {"width": 8, "stem": "whiten"})
    recipe.init_weights(model, {"init": "default"}, images)
    stem = model.features.stem
    out = torch.nn.functional.conv2d(images, stem.weight[:12]).transpose(0, 1).reshape(12, -1)   # (12, pixels)
    cov = out @ out.T / out.shape[1]
    assert torch.allclose(cov, torch.eye(12), atol=0.05), cov.diagonal()
    assert torch.equal(stem.weight[12:], -stem.weight[:12]) and not stem.weight.requires_grad
    with pytest.raises(ValueError, match="set from the training images"):
        recipe.init_weights(build_model("fast-cnn", (3, 32, 32), 10, {"stem": "whiten"}), {"init": "default"})
