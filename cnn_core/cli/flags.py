"""The train command's flags, one per TrainConfig setting (settings.py), and the config they give."""
from __future__ import annotations

import argparse

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core.settings import Setting, parse_value, specs
from cnn_core.nets import layers as layer_list
from cnn_core.train import presets


def flag_help(spec: Setting) -> str:
    """'Passes over the training images. Whole number between 1 and 1,000 (default: 5).'"""
    if spec.kind in ("int", "float"):
        allowed = f"{'whole number' if spec.kind == 'int' else 'number'} {spec.span()}"
        allowed += f" {spec.unit}" if spec.unit else ""
    elif spec.kind == "bool":
        allowed = "true or false"
    elif spec.kind == "choice" and not callable(spec.choices):
        allowed = "one of " + ", ".join(map(str, spec.options()))
    else:
        allowed = ""
    default = "dataset default" if spec.default is None else \
        str(spec.default).lower() if isinstance(spec.default, bool) else spec.default
    return f"{spec.help} {allowed[:1].upper() + allowed[1:] + ' ' if allowed else ''}(default: {default})"


def add_config_flags(parser: argparse.ArgumentParser, cls: type = TrainConfig) -> None:
    """--lr, --batch-size, ...: a flag for every setting of `cls` but the architecture's knobs (--param)."""
    for name, spec in specs(cls).items():
        if spec.kind == "params":
            continue
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=parse_value, default=None,
                            metavar=spec.kind.upper() if spec.kind in ("int", "float") else None,
                            help=flag_help(spec).replace("%", "%%"))
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="an architecture parameter, e.g. --param dropout=0.3 (repeatable)")
    parser.add_argument("--layers", metavar="FILE.json", help="your own network: a JSON list of layers (the "
                        "Train page's layer editor downloads one), e.g. [{\"type\": \"conv\", \"out\": 16, "
                        "\"kernel\": 3, \"padding\": 1}, {\"type\": \"activation\", \"fn\": \"relu\"}, ...]; "
                        "sets --arch custom")
    parser.add_argument("--config", help="a JSON file of TrainConfig fields (flags override it)")
    parser.add_argument("--preset", metavar="NAME", help="start from a preset of the dataset (tutorial, fast, ...: "
                        "`python -m cnn_core presets` lists them); the other flags given win")


def config_from_args(args, cls: type = TrainConfig):
    """The config the flags describe: --config's file (or the defaults), then --preset's values, then each
    flag given, then --param; --layers makes it a custom network (arch custom, its layer list)."""
    base = cls.from_json_file(args.config).to_dict() if args.config else cls().to_dict()
    if getattr(args, "preset", None):
        dataset = getattr(args, "dataset", None) or base.get("dataset")
        try:
            base.update(presets.values(args.preset, dataset))
        except ValueError as exc:
            raise ConfigError({"preset": str(exc)}) from None
        if getattr(args, "arch", None) not in (None, base["arch"]):
            base["arch_params"] = {}   # the preset's knobs belong to its own architecture
    for name, spec in specs(cls).items():
        value = getattr(args, name, None)
        if value is not None and spec.kind != "params":
            base[name] = value
    params = base.get("arch_params")
    if params is not None and not isinstance(params, dict):   # a JSON list here once crashed dict()
        raise ConfigError({"arch_params": f"arch_params must be an object of parameter values, got {params!r}"})
    params = dict(params or {})
    for item in args.param:
        if "=" not in item:
            raise ConfigError({"arch_params": f"--param takes NAME=VALUE, got {item!r}"})
        key, value = item.split("=", 1)
        params[key.strip()] = parse_value(value)
    if getattr(args, "layers", None):
        try:
            params = {"layers": layer_list.read_file(args.layers)}
        except ValueError as exc:
            raise ConfigError({"layers": str(exc)}) from None
        base["arch"] = "custom"
    base["arch_params"] = params
    return cls.from_dict(base)
