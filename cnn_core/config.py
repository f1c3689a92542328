"""TrainConfig: every choice of a training run in one dataclass, validated at the edge."""
from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cnn_core.core.settings import setting, specs

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
AUGMENT_MODES = ("none", "standard", "affine")
INITS = ("default", "zeros", "too-small", "too-large")   # recipe.INITS, which sets them
MAX_EPOCHS = 1000
MAX_BATCH = 8192


def _registry(module: str, names: str, lookup: str):
    """(choices, checker) of a setting whose values are the keys of cnn_core.<module>.<names>, checked by
    <module>.<lookup> (its ValueError names the choices). The module (torch) is imported on first use only,
    so `import cnn_core.config` stays light."""
    def get(attr: str):
        return getattr(importlib.import_module(f"cnn_core.{module}"), attr)

    def problem(value) -> str | None:
        try:
            get(lookup)(value)
        except (ValueError, TypeError) as exc:
            return str(exc)
        return None

    def choices() -> tuple:
        found = get(names)
        return tuple(found() if callable(found) else found)

    return choices, problem


_DATASETS, _DATASET_PROBLEM = _registry("data.catalog", "datasets", "get_info")   # built-in and added ones
_ARCHS, _ARCH_PROBLEM = _registry("nets.architectures", "ARCHITECTURES", "get_architecture")


def _devices() -> tuple:
    from cnn_core.core import devices  # torch

    return devices.available_names()


def _device_problem(name) -> str | None:
    from cnn_core.core import devices

    return devices.device_error(name)


@dataclass
class TrainConfig:
    """Every choice of a training run. Each field's Setting (settings.py) is its one description: the
    checks of validate(), the CLI flag and the Train form's widget all come from it."""
    dataset: str = setting("choice", "mnist", choices=_DATASETS, checker=_DATASET_PROBLEM, label="Dataset",
                           section="choice", help="Dataset id: mnist, fashion-mnist, cifar10, cifar2, or one added from your images "
                           "(`python -m cnn_core data add`).")
    val_size: int | None = setting(
        "int", None, low=1, high=10_000_000, optional=True, label="Validation images", noun="validation size",
        unit="images", section="reproducibility", step=1, placeholder="dataset default",
        help="Training images held out to measure validation accuracy each epoch; "
             "empty = the dataset's default (5,000; 1,000 for cifar2).")
    arch: str = setting("choice", "lenet", choices=_ARCHS, checker=_ARCH_PROBLEM, label="Architecture",
                        section="choice", help="Architecture id from the model registry (lenet, res-net-deep, ...).")
    arch_params: dict = setting("params", default_factory=dict, label="Architecture settings",
                                help="The architecture's own knobs (width, dropout, ...); "
                                     "missing ones take their defaults.")
    init: str = setting("choice", "default", choices=INITS, label="Initial weights", section="init",
                        help="How the conv and linear weights start: default, PyTorch's own (uniform in "
                             "+-1/sqrt(fan-in), its Kaiming-uniform); zeros; too-small, default x0.01 (the signal "
                             "fades layer by layer); too-large, default x10 (the loss starts huge). Zeros cannot "
                             "learn: every unit in a layer gets the same gradient, so they stay identical, and "
                             "with all weights zero the gradients to earlier layers are zero too.")
    optimizer: str = setting("choice", "sgd", choices=OPTIMIZERS, label="Optimizer", section="optimizer",
                             help="sgd (with momentum), adam or adamw.")
    lr: float = setting("float", 0.03, low=0, high=10, low_open=True, label="Learning rate", noun="learning rate",
                        section="basics", step=0.001, fmt="%g",
                        help="Learning rate: the step size of each update. SGD: 0.01-0.1; Adam: ~0.001.")
    momentum: float = setting("float", 0.9, low=0, high=1, high_open=True, label="Momentum", section="optimizer",
                              step=0.05, fmt="%.2f", when=("optimizer", "sgd"),
                              help="SGD momentum (0 = plain SGD; 0.9 is the classic choice).")
    nesterov: bool = setting("bool", False, label="Nesterov", section="optimizer", when=("optimizer", "sgd"),
                             help="SGD with Nesterov momentum (needs momentum > 0).")
    weight_decay: float = setting("float", 0.0, low=0, high=1, label="Weight decay", noun="weight decay",
                                  section="regularisation", step=0.0001, fmt="%g",
                                  help="L2 penalty on weights (0 = none; 5e-4 is common for CIFAR).")
    schedule: str = setting("choice", "cosine", choices=SCHEDULES, label="LR schedule", section="optimizer",
                            help="Learning-rate schedule: none, step (x gamma every step_size epochs), "
                                 "cosine (to 0 by the last epoch), onecycle (warm up, then anneal).")
    step_size: int = setting("int", 5, low=1, high=MAX_EPOCHS, label="Step size (epochs)", unit="epochs",
                             section="optimizer", step=1, when=("schedule", "step"),
                             help="step schedule: epochs between learning-rate drops.")
    gamma: float = setting("float", 0.1, low=0, high=1, low_open=True, label="Gamma (LR factor)",
                           section="optimizer", step=0.05, fmt="%g", when=("schedule", "step"),
                           help="step schedule: factor applied to the learning rate at each drop.")
    batch_size: int = setting("int", 64, low=1, high=MAX_BATCH, label="Batch size", noun="batch size",
                              unit="images", section="basics", step=1,
                              help="Images per update. Larger is faster per image, noisier gradients when small.")
    epochs: int = setting("int", 5, low=1, high=MAX_EPOCHS, label="Epochs", section="basics", step=1,
                          help="Passes over the training images.")
    patience: int = setting("int", 0, low=0, high=MAX_EPOCHS, label="Early stopping: patience", unit="epochs",
                            section="stopping", step=1,
                            help="Stop once validation accuracy has not gained for this many epochs in a row (0 = "
                                 "off, train every epoch). The best epoch's weights are the ones tested.")
    min_gain: float = setting("float", 0.0, low=0, high=1, label="Early stopping: minimum gain",
                              noun="minimum gain", section="stopping", step=0.001, fmt="%g",
                              help="A rise in validation accuracy smaller than this does not count as a gain "
                                   "(0.002 = 0.2 points); with patience above 0.")
    augment: str = setting("choice", "none", choices=AUGMENT_MODES, label="Augmentation", section="augmentation",
                           help="Augmentation: none; standard (digits: shifts of 2 px; CIFAR: random crop + flip); "
                                "affine (digits: shifts, small rotations and scale).")
    label_smoothing: float = setting("float", 0.0, low=0, high=1, high_open=True, label="Label smoothing",
                                     noun="label smoothing", section="regularisation", step=0.05, fmt="%.2f",
                                     help="Share of the target spread over the other classes (0 = none, 0.1 typical).")
    tta: bool = setting("bool", False, label="Mirror at test time (TTA)", section="augmentation",
                        help="Validation and test accuracy average each image's prediction with its mirror "
                             "image's (test-time augmentation; for photos, not digits). Training is unchanged.")
    seed: int = setting("int", 0, low=0, high=2**32 - 1, label="Seed", section="reproducibility", step=1,
                        help="Random seed: same seed and config on CPU give the same run.")
    device: str = setting("text", "auto", choices=_devices, checker=_device_problem, label="Device",
                          section="device",
                          help="auto picks CUDA, then Apple MPS, then CPU; or name cpu, cuda, cuda:N, mps.")
    amp: str = setting("choice", "auto", choices=("auto", "on", "off"), label="Mixed precision (bfloat16)",
                       section="device",
                       help="auto: the forward pass in bfloat16 (autocast, the weights kept in float32) where the "
                            "hardware computes bfloat16 natively: CUDA GPUs from Ampere on, CPUs with avx512_bf16, "
                            "AMX or ARM bf16 (fast-cnn trained 1.4-1.6x faster on such a 2-core CPU, to the same "
                            "accuracy); float32 elsewhere. on or off decide it yourself (true and false are "
                            "accepted as on and off). What a run used is in its record, with the reason.")
    log_every: int = setting("int", 20, low=1, high=100_000, label="Log the loss every N steps", unit="steps",
                             section="reproducibility", step=1, help="Training steps between logged loss points.")
    dry_run_batches: int = setting("int", 0, low=0, high=1_000_000, label="Dry run: batches per epoch",
                                   section="reproducibility", step=1, placeholder="0 = every batch",
                                   help="If > 0, each epoch runs only this many batches "
                                        "(a quick check of the code path).")

    def __post_init__(self):
        if isinstance(self.amp, bool):          # runs made before the automatic default, and --amp true
            self.amp = "on" if self.amp else "off"

    # ---- conversion -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """Build from a dict (a run.json's config, a JSON file); unknown keys are a ConfigError.
        Values keep their types as given: call validate() to check them."""
        if not isinstance(data, dict):
            raise ConfigError({"config": f"must be a JSON object, got {type(data).__name__}"})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError({k: f"unknown field {k!r}; known fields: {', '.join(sorted(known))}" for k in unknown})
        return cls(**data)

    @classmethod
    def from_json_file(cls, path: str | Path) -> "TrainConfig":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError({"config": f"config file {path} does not exist"}) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError({"config": f"config file {path} is not valid JSON: {exc}"}) from None
        return cls.from_dict(data)

    # ---- validation -------------------------------------------------------------------------
    def validate(self, check_data: bool = True) -> dict[str, str]:
        """Every bad field with a message a person understands; {} when the config can train.
        check_data: also compare sizes with the prepared dataset (when it is prepared)."""
        return _validate(self, check_data)

    def check(self, check_data: bool = True) -> "TrainConfig":
        """Raise ConfigError listing every bad field; return self when valid."""
        errors = self.validate(check_data)
        if errors:
            raise ConfigError(errors)
        for name, spec in specs(type(self)).items():   # 2.0 from JSON or a flag becomes the int the engine slices with
            setattr(self, name, spec.coerce(getattr(self, name)))
        return self


class ConfigError(ValueError):
    """A config with one or more bad fields; `.errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("invalid training config:\n" + "\n".join(f"  {k}: {v}" for k, v in self.errors.items()))


def field_help(name: str, cls: type = None) -> str:
    """The help text of a TrainConfig field (the Train page shows it next to the widget)."""
    return specs(cls or TrainConfig)[name].help


def field_label(name: str, cls: type = None) -> str:
    """What a person calls a TrainConfig field ("Learning rate" for lr); `name` itself when it is none."""
    spec = specs(cls or TrainConfig).get(name)
    return spec.title if spec else name


# ---- checks -------------------------------------------------------------------------------------
def _validate(c: TrainConfig, check_data: bool) -> dict[str, str]:
    # here, as all torch: keeps `import cnn_core.config` light
    from cnn_core.core import devices
    from cnn_core.data import catalog
    from cnn_core.nets import architectures

    errors = {name: msg for name, spec in specs(type(c)).items() if (msg := spec.check(getattr(c, name)))}
    if "nesterov" not in errors and "momentum" not in errors and c.nesterov and c.momentum == 0:
        errors["nesterov"] = "Nesterov momentum needs momentum > 0"
    if not errors.get("amp") and c.amp == "on" and not errors.get("device"):
        kind = devices.resolve_device(c.device).type
        native, why = devices.cpu_bf16() if kind == "cpu" else (kind == "cuda", "")
        if kind == "cpu" and not native:
            errors["amp"] = f"mixed precision on this CPU is refused: {why}"
        elif not native:
            errors["amp"] = f"mixed precision runs on CUDA GPUs and on CPUs with native bfloat16, not on {kind}"
    info = None if "dataset" in errors else catalog.get_info(c.dataset)
    if info is not None and c.tta is True and info.kind != "cifar":
        errors["tta"] = f"a mirrored image of {info.title} is not one of its images: test-time mirroring is for photos"
    if "arch" not in errors and "arch_params" not in errors:
        _validate_arch(c, info, errors, architectures)
    if check_data and info is not None:
        _validate_sizes(c, info, errors, catalog)
    return errors


def _validate_arch(c, info, errors, architectures) -> None:
    bad = architectures.param_errors(c.arch, c.arch_params)
    errors.update({f"arch_params.{k}": v for k, v in bad.items()})
    if bad or info is None:
        return
    # On the meta device: a model refused here (too large, say) is never allocated, and one that is
    # accepted is not built for real either (the form calls this on every rerun).
    batch = int(c.batch_size) if "batch_size" not in errors else None
    try:
        found = architectures.size_problems(c.arch, info.input_shape, len(info.classes), c.arch_params, batch)
    except ValueError as exc:
        found = [str(exc)]
    if found:
        errors["arch"] = "; ".join(found)


def _validate_sizes(c, info, errors, catalog) -> None:
    status = catalog.dataset_status(c.dataset)
    if status.state == "missing":
        return  # sizes are checked again once the data is loaded
    if "val_size" in errors:
        return
    if c.val_size is None:
        val = catalog.default_val_size(info, status.n_train)
    elif c.val_size >= status.n_train:
        errors["val_size"] = (f"validation size must be below the {status.n_train:,} training images "
                              f"of {c.dataset}, got {c.val_size:,}")
        return
    else:
        val = int(c.val_size)
    n_train = status.n_train - val
    if "batch_size" not in errors and c.batch_size > n_train:
        errors["batch_size"] = (f"batch size {c.batch_size:,} is larger than the {n_train:,} training images "
                                f"left after validation")
