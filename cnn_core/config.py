"""TrainConfig: every choice of a training run in one dataclass, validated at the edge."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
AUGMENT_MODES = ("none", "standard", "affine")
MAX_EPOCHS = 1000
MAX_BATCH = 8192
INT_FIELDS = ("val_size", "step_size", "batch_size", "epochs", "seed", "dry_run_batches", "log_every")


def _help(text: str, label: str, **kw):
    """A field with the words a person reads: `label` names it (form, error lists), `text` explains it."""
    return field(metadata={"help": text, "label": label}, **kw)


@dataclass
class TrainConfig:
    dataset: str = _help("Dataset id: mnist, fashion-mnist, cifar10 or cifar2.", label="Dataset", default="mnist")
    val_size: int | None = _help(
        "Training images held out to measure validation accuracy each epoch; "
        "empty = the dataset's default (5,000; 1,000 for cifar2).", label="Validation images", default=None)
    arch: str = _help("Architecture id from the model registry (lenet, res-net-deep, ...).", label="Architecture", default="lenet")
    arch_params: dict = _help("The architecture's own knobs (width, dropout, ...); "
                              "missing ones take their defaults.", label="Architecture settings", default_factory=dict)
    optimizer: str = _help("sgd (with momentum), adam or adamw.", label="Optimizer", default="sgd")
    lr: float = _help("Learning rate: the step size of each update. SGD: 0.01-0.1; Adam: ~0.001.",
                      label="Learning rate", default=0.03)
    momentum: float = _help("SGD momentum (0 = plain SGD; 0.9 is the classic choice).", label="Momentum", default=0.9)
    nesterov: bool = _help("SGD with Nesterov momentum (needs momentum > 0).", label="Nesterov", default=False)
    schedule: str = _help("Learning-rate schedule: none, step (x gamma every step_size epochs), "
                          "cosine (to 0 by the last epoch), onecycle (warm up, then anneal).", label="LR schedule", default="cosine")
    step_size: int = _help("step schedule: epochs between learning-rate drops.", label="Step size (epochs)", default=5)
    gamma: float = _help("step schedule: factor applied to the learning rate at each drop.", label="Gamma (LR factor)", default=0.1)
    batch_size: int = _help("Images per update. Larger is faster per image, noisier gradients when small.",
                            label="Batch size", default=64)
    epochs: int = _help("Passes over the training images.", label="Epochs", default=5)
    weight_decay: float = _help("L2 penalty on weights (0 = none; 5e-4 is common for CIFAR).", label="Weight decay", default=0.0)
    label_smoothing: float = _help("Share of the target spread over the other classes (0 = none, 0.1 typical).",
                                   label="Label smoothing", default=0.0)
    augment: str = _help("Augmentation: none; standard (digits: shifts of 2 px; CIFAR: random crop + flip); "
                         "affine (digits: shifts, small rotations and scale).", label="Augmentation", default="none")
    seed: int = _help("Random seed: same seed and config on CPU give the same run.", label="Seed", default=0)
    device: str = _help("auto picks CUDA, then Apple MPS, then CPU; or name cpu, cuda, cuda:N, mps.",
                        label="Device", default="auto")
    amp: bool = _help("Mixed precision (bfloat16 autocast) on CUDA: faster on modern GPUs.", label="Mixed precision (AMP)", default=False)
    dry_run_batches: int = _help("If > 0, each epoch runs only this many batches (a quick check of the code path).",
                                 label="Dry run: batches per epoch", default=0)
    log_every: int = _help("Training steps between logged loss points.", label="Log the loss every N steps", default=20)

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
        for name in INT_FIELDS:   # a whole number written 2.0 (JSON, a flag) becomes the int the engine slices with
            value = getattr(self, name)
            if isinstance(value, float):
                setattr(self, name, int(value))
        return self


class ConfigError(ValueError):
    """A config with one or more bad fields; `.errors` maps field -> message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("invalid training config:\n" + "\n".join(f"  {k}: {v}" for k, v in self.errors.items()))


def field_help(name: str) -> str:
    """The help text of a TrainConfig field (the Train page shows it next to the widget)."""
    return next(f.metadata.get("help", "") for f in fields(TrainConfig) if f.name == name)


def field_label(name: str) -> str:
    """What a person calls a TrainConfig field ("Learning rate" for lr); `name` itself when it is none."""
    return next((f.metadata.get("label", name) for f in fields(TrainConfig) if f.name == name), name)


# ---- checks -------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_in(v, name, low, high) -> str | None:
    if not _is_int(v):
        return f"{name} must be a whole number, got {v!r}"
    if not low <= v <= high:
        return f"{name} must be between {low:,} and {high:,}, got {v:,}"
    return None


def _float_in(v, name, low, high, low_open=False, high_open=False) -> str | None:
    if not _is_number(v):
        return f"{name} must be a number, got {v!r}"
    if not math.isfinite(v):
        return f"{name} must be a finite number, got {v}"
    lo_ok = v > low if low_open else v >= low
    hi_ok = v < high if high_open else v <= high
    if not (lo_ok and hi_ok):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        return f"{name} must be in {lo}{low:g}, {high:g}{hi}, got {v:g}"
    return None


def _choice(v, name, choices) -> str | None:
    if v not in choices:
        return f"{name} must be one of {', '.join(choices)}; got {v!r}"
    return None


def _bool(v, name) -> str | None:
    return None if isinstance(v, bool) else f"{name} must be true or false, got {v!r}"


def _validate(c: TrainConfig, check_data: bool) -> dict[str, str]:
    from . import data, devices, models  # local: keeps `import cnn_core.config` light

    checks = {
        "optimizer": _choice(c.optimizer, "optimizer", OPTIMIZERS),
        "lr": _float_in(c.lr, "learning rate", 0, 10, low_open=True),
        "momentum": _float_in(c.momentum, "momentum", 0, 1, high_open=True),
        "nesterov": _bool(c.nesterov, "nesterov"),
        "schedule": _choice(c.schedule, "schedule", SCHEDULES),
        "step_size": _int_in(c.step_size, "step_size", 1, MAX_EPOCHS),
        "gamma": _float_in(c.gamma, "gamma", 0, 1, low_open=True),
        "batch_size": _int_in(c.batch_size, "batch size", 1, MAX_BATCH),
        "epochs": _int_in(c.epochs, "epochs", 1, MAX_EPOCHS),
        "weight_decay": _float_in(c.weight_decay, "weight decay", 0, 1),
        "label_smoothing": _float_in(c.label_smoothing, "label smoothing", 0, 1, high_open=True),
        "augment": _choice(c.augment, "augment", AUGMENT_MODES),
        "seed": _int_in(c.seed, "seed", 0, 2**32 - 1),
        "device": devices.device_error(c.device) if isinstance(c.device, str) else f"device must be text, got {c.device!r}",
        "amp": _bool(c.amp, "amp"),
        "dry_run_batches": _int_in(c.dry_run_batches, "dry_run_batches", 0, 1_000_000),
        "log_every": _int_in(c.log_every, "log_every", 1, 100_000),
    }
    errors = {k: v for k, v in checks.items() if v}
    if "nesterov" not in errors and "momentum" not in errors and c.nesterov and c.momentum == 0:
        errors["nesterov"] = "Nesterov momentum needs momentum > 0"
    if not errors.get("amp") and c.amp and not errors.get("device"):
        if devices.resolve_device(c.device).type != "cuda":
            errors["amp"] = "mixed precision runs on CUDA only; this run's device is not a CUDA GPU"

    info = None
    try:
        info = data.get_info(c.dataset)
    except (ValueError, TypeError) as exc:
        errors["dataset"] = str(exc)
    if c.val_size is not None:
        msg = _int_in(c.val_size, "validation size", 1, 10_000_000)
        if msg:
            errors["val_size"] = msg
    _validate_arch(c, info, errors, models)
    if check_data and info is not None:
        _validate_sizes(c, info, errors, data)
    return errors


def _validate_arch(c, info, errors, models) -> None:
    try:
        models.get_architecture(c.arch)
    except (ValueError, TypeError) as exc:
        errors["arch"] = str(exc)
        return
    if not isinstance(c.arch_params, dict):
        errors["arch_params"] = f"arch_params must be an object of parameter values, got {c.arch_params!r}"
        return
    bad = models.param_errors(c.arch, c.arch_params)
    errors.update({f"arch_params.{k}": v for k, v in bad.items()})
    if bad or info is None:
        return
    try:
        models.build_model(c.arch, info.input_shape, len(info.classes), c.arch_params)
    except ValueError as exc:
        errors["arch"] = str(exc)


def _validate_sizes(c, info, errors, data) -> None:
    status = data.dataset_status(c.dataset)
    if status.state == "missing":
        return  # sizes are checked again once the data is loaded
    if "val_size" in errors:
        return
    if c.val_size is None:
        val = data.default_val_size(info, status.n_train)
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
