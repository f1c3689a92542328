"""Command line: python -m cnn_core train | runs | data | predict."""
from __future__ import annotations

import argparse
import os
import sys

from .config import ConfigError, TrainConfig
from .flags import add_config_flags


def build_parser(config_cls: type = TrainConfig) -> argparse.ArgumentParser:
    """The whole command line; the train command has a flag per setting of `config_cls`."""
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="Train and inspect tutorial CNNs.")
    parser.add_argument("--data-dir", help="data folder (default $CNN_DATA_DIR or ./data)")
    parser.add_argument("--runs-dir", help="runs folder (default $CNN_RUNS_DIR or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (foreground, with a progress bar)")
    add_config_flags(train, config_cls)
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

    pre = sub.add_parser("presets", help="the presets of each dataset (train --preset NAME), with their values")
    pre.add_argument("--dataset", help="only this dataset's")

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
               "data": cli_commands.data_cmd, "predict": cli_commands.predict_cmd,
               "presets": cli_commands.presets_cmd}[args.command]
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

