"""Command line: python -m cnn_core train | runs | data | predict."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from .config import ConfigError, TrainConfig, field_help


def _parse_value(text: str):
    """A flag value as JSON when it parses (numbers, true/false, null), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        if f.name == "arch_params":
            continue
        p.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, type=_parse_value, default=None,
                       help=f"{field_help(f.name)} (default: {f.default if f.default is not None else 'dataset default'})")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="an architecture parameter, e.g. --param dropout=0.3 (repeatable)")


def config_from_args(args) -> TrainConfig:
    base = TrainConfig.from_json_file(args.config).to_dict() if args.config else TrainConfig().to_dict()
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name != "arch_params":
            base[f.name] = value
    params = base.get("arch_params")
    if params is not None and not isinstance(params, dict):   # a JSON list here once crashed dict()
        raise ConfigError({"arch_params": f"arch_params must be an object of parameter values, got {params!r}"})
    params = dict(params or {})
    for item in args.param:
        if "=" not in item:
            raise ConfigError({"arch_params": f"--param takes NAME=VALUE, got {item!r}"})
        key, value = item.split("=", 1)
        params[key.strip()] = _parse_value(value)
    base["arch_params"] = params
    return TrainConfig.from_dict(base)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="Train and inspect tutorial CNNs.")
    parser.add_argument("--data-dir", help="data folder (default $CNN_DATA_DIR or ./data)")
    parser.add_argument("--runs-dir", help="runs folder (default $CNN_RUNS_DIR or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (foreground, with a progress bar)")
    _add_config_flags(train)
    train.add_argument("--config", help="a JSON file of TrainConfig fields (flags override it)")
    train.add_argument("--name", help="a display name for the run")
    train.add_argument("--run", help="train the already created run in this folder (used by the dashboard)")
    train.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN",
                       help="continue a cancelled or interrupted run from its checkpoint")
    train.add_argument("--detach", action="store_true", help="start in the background and return")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("runs", help="list, show, rename or delete runs")
    rsub = r.add_subparsers(dest="action", required=True)
    rsub.add_parser("list", help="every run, newest first")
    rsub.add_parser("show", help="show one run").add_argument(
        "run", help="run id, or the folder of a run anywhere (e.g. models/mnist-bundled)")
    for action in ("delete", "cancel"):
        rsub.add_parser(action, help=f"{action} one run").add_argument(
            "run", help="run id or folder in the runs folder")
    rename = rsub.add_parser("rename", help="give a run a display name")
    rename.add_argument("run")
    rename.add_argument("name")

    d = sub.add_parser("data", help="dataset status and preparation")
    dsub = d.add_subparsers(dest="action", required=True)
    dsub.add_parser("status", help="which datasets are ready, subsets or missing")
    prep = dsub.add_parser("prepare", help="find, decode and cache a dataset")
    prep.add_argument("name", help="mnist, fashion-mnist, cifar10, cifar2 or all")
    prep.add_argument("--from", dest="source_dir", help="a folder that holds the dataset's files")

    pred = sub.add_parser("predict", help="top-3 classes of image files with a trained run")
    pred.add_argument("--run", required=True, help="run id, or the folder of a run anywhere: "
                      "--run models/mnist-bundled reads digits with the model that ships with the dashboard")
    pred.add_argument("--which", choices=("best", "latest"), default="best")
    pred.add_argument("images", nargs="+", help="PNG/JPEG files")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir:
        os.environ["CNN_DATA_DIR"] = args.data_dir
    if args.runs_dir:
        os.environ["CNN_RUNS_DIR"] = args.runs_dir
    from . import cli_commands

    handler = {"train": cli_commands.train, "runs": cli_commands.runs_cmd,
               "data": cli_commands.data_cmd, "predict": cli_commands.predict_cmd}[args.command]
    try:
        return handler(args) or 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130

