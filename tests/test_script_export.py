"""A run as a standalone script (cnn_core/export/standalone.py, `export script`): one file of plain PyTorch
that, run in a folder where cnn_core cannot be imported, trains the same model on the same prepared data
with the same seed and gives the run's first-epoch validation accuracy (within 1.5 points; here it is
exact to the float); a learning-rate change made while the run trained is replayed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnn_core.cli.entry import main
from cnn_core.config import OPTIMIZERS, SCHEDULES, TrainConfig
from cnn_core.export import standalone
from cnn_core.runs import metrics_log, store
from cnn_core.train import engine, trainer

FAST = dict(dataset="mnist", val_size=100, batch_size=32, epochs=1, lr=0.05, log_every=5, seed=3)


def _export_and_run(path, tmp_path, small_data_dir, capsys) -> list[dict]:
    out = tmp_path / f"{path.name}.py"
    assert main(["export", "script", path.name, "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert "cnn_core" not in "".join(line for line in text.splitlines() if "import" in line)
    assert "class Net(nn.Module):" in text and "def main():" in text
    done = subprocess.run([sys.executable, str(out), "--epochs", "1", "--data-dir", str(small_data_dir)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})   # no PYTHONPATH: no cnn_core
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def _first_epoch(path) -> dict:
    return next(m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch")


def test_the_script_trains_the_run_again_to_its_first_epoch(tmp_path, small_data_dir, capsys):
    """LeNet with dropout, digit augmentation and a cosine schedule."""
    path = store.create_run(TrainConfig(**FAST, arch="lenet", arch_params={"dropout": 0.3}, augment="standard"))
    assert engine.run_training(path).status == "completed"
    lines = _export_and_run(path, tmp_path, small_data_dir, capsys)
    run = _first_epoch(path)
    assert lines[0]["epoch"] == 1 and abs(lines[0]["val_acc"] - run["val_acc"]) <= 0.015, (lines, run)
    assert lines[0]["val_acc"] == run["val_acc"] and lines[0]["train_loss"] == pytest.approx(run["train_loss"])
    assert "test_acc" in lines[-1]


def test_a_whitening_stem_is_set_from_the_data_in_the_script_as_in_the_run(tmp_path, small_data_dir, capsys):
    """fast-cnn with airbench's whitening stem, three blocks: its filters are set from the training images
    before the first step, in the run and in the script (which holds the Whiten class and calls
    init_weights with the images), so the first epoch is the same to the float."""
    path = store.create_run(TrainConfig(**FAST, arch="fast-cnn", arch_params={"width": 8, "stem": "whiten",
                                                                              "blocks": 3}))
    assert engine.run_training(path).status == "completed"
    lines = _export_and_run(path, tmp_path, small_data_dir, capsys)
    assert "class Whiten(nn.Conv2d):" in (tmp_path / f"{path.name}.py").read_text()
    run = _first_epoch(path)
    assert (lines[0]["val_acc"], lines[0]["val_loss"]) == (run["val_acc"], run["val_loss"]), (lines, run)


def test_a_custom_network_with_a_steered_rate_is_written_out_and_replayed(tmp_path, small_data_dir, capsys,
                                                                          monkeypatch):
    """A layer-editor network (batch norm, a residual block with its shortcut, global pooling), onecycle,
    its base rate changed to 0.02 at step 5 while it trained: the script builds the same network and
    replays the change."""
    stack = [{"type": "conv", "out": 8, "kernel": 3, "padding": 1}, {"type": "batchnorm"},
             {"type": "activation", "fn": "relu"}, {"type": "residual", "channels": 12}, {"type": "maxpool"},
             {"type": "globalpool"}]
    path = store.create_run(TrainConfig(**FAST, arch="custom", arch_params={"layers": stack}, schedule="onecycle"))
    monkeypatch.setattr(trainer, "HEARTBEAT_S", 0.0)

    asked = []

    def steer(progress):
        if progress["step"] == 5 and not asked:      # once: taking it reports progress again
            asked.append(store.steer(path, lr=0.02))
    assert engine.run_training(path, on_progress=steer).status == "completed"
    text_lines = _export_and_run(path, tmp_path, small_data_dir, capsys)
    assert "LR_CHANGES = {5: 0.02}" in (tmp_path / f"{path.name}.py").read_text()
    assert "class Residual(nn.Module):" in (tmp_path / f"{path.name}.py").read_text()
    run = _first_epoch(path)
    assert text_lines[0]["val_acc"] == run["val_acc"] and text_lines[0]["val_loss"] == run["val_loss"], (text_lines,
                                                                                                        run)


# ---- every recipe a run can name: the script holds the code that trained it ---------------------------
# What the training recipe varies by: the optimizer, the schedule, and the augmentation, which depends on the
# dataset's kind (digits: shifts or an affine warp; photos: crop+flip).
AUGMENTATIONS = [("mnist", "none"), ("mnist", "standard"), ("mnist", "affine"), ("cifar10", "standard")]
RECIPES = [(o, s, d, a) for o in OPTIMIZERS for s in SCHEDULES for d, a in AUGMENTATIONS]
# Run by one interpreter (no cnn_core on its path): a fresh one per file would add 2.5 s of torch import to
# each of the 48 while adding no check; each file still runs as __main__ with its own argv.
_RUN_EACH = """
import runpy, sys
data_dir, files = sys.argv[1], sys.argv[2:]
for file in files:
    sys.argv = [file, "--epochs", "2", "--data-dir", data_dir]
    print("FILE", file, flush=True)
    runpy.run_path(file, run_name="__main__")
"""


def test_every_optimizer_schedule_and_augmentation_trains_the_same_in_the_exported_script(tmp_path, small_data_dir):
    """For each optimizer x schedule x augmentation (label smoothing, weight decay and a step schedule that
    changes the rate after epoch 1), the exported file's two epochs give the run's validation accuracy and
    loss to the float (the same split, initial weights, batches, augmentation and rates), and its training
    loss within float32 rounding."""
    paths = {}
    for optimizer, schedule, dataset, augment in RECIPES:
        config = TrainConfig(dataset=dataset, arch="lenet", epochs=2, batch_size=64, val_size=60, lr=0.02,
                             momentum=0.9, nesterov=True, weight_decay=5e-4, label_smoothing=0.1, seed=5,
                             optimizer=optimizer, schedule=schedule, step_size=1, gamma=0.5, augment=augment,
                             log_every=50)
        name = f"{optimizer}-{schedule}-{dataset}-{augment}"
        path = store.create_run(config, name=name)
        assert engine.run_training(path).status == "completed", path
        paths[name] = (path, standalone.write(path, tmp_path / f"{name}.py"))
    done = subprocess.run([sys.executable, "-c", _RUN_EACH, str(small_data_dir), *(str(f) for _, f in paths.values())],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})   # no PYTHONPATH: no cnn_core
    assert done.returncode == 0, done.stderr[-3000:]
    printed = {}
    for line in done.stdout.splitlines():
        if line.startswith("FILE "):
            name = Path(line[5:]).stem
        else:
            printed.setdefault(name, []).append(json.loads(line))
    for name, (path, _) in paths.items():
        run = [m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]
        got = printed[name][:2]
        assert [(m["val_acc"], m["val_loss"]) for m in got] == [(m["val_acc"], m["val_loss"]) for m in run], name
        assert [m["train_loss"] for m in got] == pytest.approx([m["train_loss"] for m in run], rel=1e-5), name


# ---- data never becomes code: a hostile run name or dataset name stays text -------------------------
import ast  # noqa: E402
import shutil  # noqa: E402

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "mnist-bundled"
TOUCH = '__import__("pathlib").Path("pwned").touch()'     # what a payload that ran would leave in the cwd
HOSTILE = {
    "triple double quotes": f'x""";{TOUCH};"""',
    "triple single quotes": f"x''';{TOUCH};'''",
    "newline": f"a\n{TOUCH}\n# ",
    "carriage return": f"a\r{TOUCH}\r",
    "braces": "{} {file} {name} {0} {dataset} mnist-bundled.py",
    "backslashes": "a \\N{BULLET} \\x00 \\u12 \\",
    "hash": f"# not a comment\n{TOUCH}",
    "nul": "nul\x00byte",
    "10,000 characters": "long " + "y" * 10_000,
}


def _trained_run(runs_dir: Path, field: str = "name", value: str | None = None) -> Path:
    """The bundled MNIST run copied into the runs folder (a trained run, no training), with `field`
    ("name", or "dataset" in its config) set to `value` as a hand-edited or imported run.json can."""
    path = runs_dir / BUNDLED.name
    shutil.copytree(BUNDLED, path)
    if value is not None:
        changes = ({"name": value} if field == "name"
                   else {"config": {**store.read_run(path).config, "dataset": value}})
        store.update_run(path, **changes)
    return path


def _top_level(text: str) -> list[str]:
    """Each top-level statement of a Python file, as its kind and the names it defines."""
    out = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign):
            out.append("= " + ",".join(ast.unparse(t) for t in node.targets))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.append(f"{type(node).__name__} {node.name}")
        else:
            out.append(type(node).__name__)
    return out


def _constant(text: str, name: str):
    """The value of the top-level constant `name` in a Python file."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no top-level constant {name}")


@pytest.mark.parametrize("field", ["name", "dataset"])
@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_value_leaves_the_scripts_statements_as_for_a_plain_one(runs_dir, field, value):
    """The file parses to the same top-level statements as with a plain name: no statement came in."""
    plain = _top_level(standalone.script(_trained_run(runs_dir)))
    shutil.rmtree(runs_dir / BUNDLED.name)
    assert _top_level(standalone.script(_trained_run(runs_dir, field, value))) == plain


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_run_name_is_kept_as_text_in_the_script(runs_dir, value):
    """The run's name is the value of the RUN_NAME constant, character for character."""
    text = standalone.script(_trained_run(runs_dir, "name", value))
    assert _constant(text, "RUN_NAME") == value


@pytest.mark.parametrize("value", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_dataset_name_is_kept_as_text_in_the_script(runs_dir, value):
    """The dataset's name is RUN["dataset"], character for character, and nowhere in the docstring."""
    text = standalone.script(_trained_run(runs_dir, "dataset", value))
    assert _constant(text, "RUN")["dataset"] == value
    assert value not in ast.get_docstring(ast.parse(text))


@pytest.mark.parametrize("field", ["name", "dataset"])
@pytest.mark.parametrize("key", ["triple double quotes", "newline"])
def test_the_script_of_a_hostile_run_runs_help_without_running_the_payload(tmp_path, runs_dir, field, key):
    """`python script.py --help` exits 0 and the payload's file is not created."""
    path = _trained_run(runs_dir, field, HOSTILE[key])
    out = standalone.write(path, tmp_path / "script.py")
    done = subprocess.run([sys.executable, str(out), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--epochs" in done.stdout and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("out_name, shown", [("my_run.py", "my_run.py"), ('x""";y.py', "FILE.py"),
                                             ("a\nb.py", "FILE.py")])
def test_the_output_file_name_is_written_into_the_usage_line_only_when_plain(tmp_path, runs_dir, out_name,
                                                                            shown):
    """The usage line names the file written; a name that is not plain letters, digits, '.', '_', '-'
    is shown as FILE.py, and the rest of the file is the same."""
    path = _trained_run(runs_dir)
    out = standalone.write(path, tmp_path / out_name)
    text = out.read_text(encoding="utf-8")
    assert f"    python {shown} --data-dir DATA" in ast.get_docstring(ast.parse(text))
    assert _top_level(text) == _top_level(standalone.script(path))


def test_a_run_made_before_a_setting_existed_exports_with_its_default(runs_dir):
    """A run.json without a setting added since (label smoothing here) exports RUN with that setting's
    default, as resuming it would train: the recipe reads every setting from RUN."""
    path = _trained_run(runs_dir)
    config = dict(store.read_run(path).config)
    del config["label_smoothing"]
    store.update_run(path, config=config)
    run = _constant(standalone.script(path), "RUN")
    assert run["label_smoothing"] == TrainConfig().label_smoothing == 0.0 and run["dataset"] == "mnist"
