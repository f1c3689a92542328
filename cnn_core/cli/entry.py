"""Command line: python -m cnn_core train | runs | data | sweep | sweeps | export | presets | lessons |
explain | predict."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cnn_core.cli.flags import add_config_flags
from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core.progress import Inert
from cnn_core.export import formats
from cnn_core.runs import store
from cnn_core.train import jobs


def build_parser(config_cls: type = TrainConfig) -> argparse.ArgumentParser:
    """The whole command line; the train command has a flag per setting of `config_cls`."""
    parser = argparse.ArgumentParser(prog="python -m cnn_core", description="Train and inspect tutorial CNNs.")
    parser.add_argument("--data-dir", help="data folder (default $CNN_DATA_DIR or ./data)")
    parser.add_argument("--runs-dir", help="runs folder (default $CNN_RUNS_DIR or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model (foreground, with a progress bar)")
    add_config_flags(train, config_cls)
    train.add_argument("--name", help="a display name for the run")
    train.add_argument("--run", "--run-dir", dest="run", help="train the already created run in this folder (used "
                       "by the dashboard); under torchrun write --run-dir: torchrun takes --run for its --run-path")
    train.add_argument("--resume", nargs="?", const=True, default=None, metavar="RUN",
                       help="continue a cancelled or interrupted run from its checkpoint")
    train.add_argument("--more", type=int, metavar="N", help="with --resume RUN: train a finished or stopped run N "
                       "epochs more (the same run goes on from its checkpoint; its curves continue)")
    train.add_argument("--detach", action="store_true", help="start in the background and return")
    train.add_argument("--processes", type=int, default=1, metavar="N", help="with --run: wait for a training slot, "
                       "then train over N processes through torchrun on this machine (the dashboard's Processes)")
    train.add_argument("--ray", metavar="ADDRESS", help="with --run: wait for a training slot, then train as a Ray "
                       "task on the cluster at ADDRESS (host:port, or auto); the runs folder must be one its nodes "
                       "share")
    train.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("runs", help="list, show, rename, steer, cancel or delete runs")
    rsub = r.add_subparsers(dest="action", required=True)
    rsub.add_parser("list", help="every run, newest first")
    rsub.add_parser("show", help="show one run").add_argument(
        "run", help="run id, or the folder of a run anywhere (e.g. models/mnist-bundled)")
    for action in ("delete", "cancel"):
        rsub.add_parser(action, help=f"{action} one run").add_argument(
            "run", help="run id or folder in the runs folder")
    steer = rsub.add_parser("steer", help="change a training run's course: a new learning rate (from its next "
                            "step), pause, continue")
    steer.add_argument("run")
    steer.add_argument("--lr", type=float, help="the new base learning rate (the schedule scales it)")
    steer.add_argument("--pause", action="store_true", help="pause it (it keeps its memory and slot)")
    steer.add_argument("--continue", dest="go_on", action="store_true", help="continue a paused run")
    rename = rsub.add_parser("rename", help="give a run a display name")
    rename.add_argument("run")
    rename.add_argument("name")

    d = sub.add_parser("data", help="dataset status and preparation")
    dsub = d.add_subparsers(dest="action", required=True)
    dsub.add_parser("status", help="which datasets are ready, subsets or missing")
    prep = dsub.add_parser("prepare", help="find, decode and cache a dataset")
    prep.add_argument("name", help="mnist, fashion-mnist, cifar10, cifar2 or all")
    prep.add_argument("--from", dest="source_dir", help="a folder that holds the dataset's files")
    add = dsub.add_parser("add", help="a dataset from your own pictures: a folder or a .zip of class folders")
    add.add_argument("name", help="its name: 1-40 lowercase letters, digits, - and _")
    add.add_argument("--from", dest="source", required=True, metavar="DIR_OR_ZIP",
                     help="ROOT/<class>/<pictures> (split here), or ROOT/train/<class>/... and ROOT/test/<class>/...")
    add.add_argument("--size", type=int, default=32, help="side of the square images stored, in pixels (default 32)")
    add.add_argument("--channels", type=int, choices=(1, 3), default=3, help="1 grey or 3 colour (default 3)")
    add.add_argument("--val", type=float, default=0.1, help="share held out for validation (default 0.1)")
    add.add_argument("--test", type=float, default=0.1, help="share split off for test when the folder has no "
                     "train/ and test/ (default 0.1)")
    add.add_argument("--fit", choices=("crop", "pad"), default="crop", help="crop: shorter side to the size, "
                     "centre crop (default); pad: longer side to the size, black borders")
    add.add_argument("--seed", type=int, default=0, help="seed of the train/test split (default 0)")
    add.add_argument("--preview", action="store_true", help="read and report only; write nothing")
    show = dsub.add_parser("show", help="an added dataset's classes, counts, sizes found and warnings")
    show.add_argument("name")
    ren = dsub.add_parser("rename", help="rename a dataset added from your pictures")
    ren.add_argument("name")
    ren.add_argument("new_name")
    dsub.add_parser("delete", help="delete a dataset added from your pictures").add_argument("name")

    sw = sub.add_parser("sweep", help="many runs from one base config: a grid or sampled values, on the local "
                        "queue or a Ray cluster (trials are ordinary runs)")
    add_config_flags(sw, config_cls)
    sw.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                    help="try every combination of these values (repeatable): --grid lr=0.01,0.03,0.1")
    sw.add_argument("--sample", action="append", default=[], metavar="NAME=[log:]LOW:HIGH",
                    help="draw values from a range, log or linear, or from a list (repeatable): --sample "
                         "lr=log:0.001:0.3 --sample label_smoothing=0:0.2 --sample optimizer=sgd,adam")
    sw.add_argument("--trials", type=int, default=0, help="how many trials to draw (--sample); a grid has its size")
    sw.add_argument("--objective", default="val_acc", help="val_acc (best validation accuracy, default) or val_loss "
                    "(final validation loss)")
    sw.add_argument("--sampler", default="tpe", help="tpe (Optuna's model-based sampler, default) or random")
    sw.add_argument("--prune", default="none", help="stop poor trials early: none (default), median or asha")
    sw.add_argument("--backend", default="local", help="local (this machine's queue, default) or ray")
    sw.add_argument("--address", help="the Ray cluster (HOST:PORT, or a name from $CNN_RAY_ADDRESSES); a local Ray "
                    "instance when not given")
    sw.add_argument("--wait", action="store_true", help="drive the sweep here, show its progress and name the "
                    "best trial at the end (default: a background process drives it)")
    sw.add_argument("--name", help="a name for the sweep")
    sws = sub.add_parser("sweeps", help="list, show, cancel, resume or delete sweeps")
    swsub = sws.add_subparsers(dest="action", required=True)
    swsub.add_parser("list", help="every sweep, newest first")
    for action, what in (("show", "its trials, best first, and what mattered"), ("cancel", "stop its trials"),
                         ("delete", "cancel it and delete its trials' runs"),
                         ("resume", "go on with a sweep whose driver died (interrupted or failed)"),
                         ("drive", "run its driver here (the dashboard does)")):
        one = swsub.add_parser(action, help=what)
        one.add_argument("sweep")
        if action in ("resume", "drive"):
            one.add_argument("--wait" if action == "resume" else "--resume", action="store_true",
                             help="drive it here and show its progress" if action == "resume" else
                             "go on from the record of a driver that died")

    exp = sub.add_parser("export", help="take a run away: script (one file of plain PyTorch that trains it), "
                         "onnx, pt2 (torch.export), torchscript (the old format)")
    exp.add_argument("kind", choices=("script", *formats.EXPORTS))
    exp.add_argument("run", help="run id, or the folder of a run anywhere")
    exp.add_argument("-o", "--output", help="script: the file to write (default: RUN.py here)")

    pre = sub.add_parser("presets", help="the presets of each dataset (train --preset NAME), with their values")
    pre.add_argument("--dataset", help="only this dataset's")

    les = sub.add_parser("lessons", help="the lessons that follow the tutorials: each one's question, answer and "
                         "experiments; --run ID trains a lesson's experiments here and checks its answer")
    les.add_argument("--json", action="store_true", help="every lesson as JSON (its text, choices, configs)")
    les.add_argument("--run", metavar="ID", help="train this lesson's experiments (each a run) and say what they show")

    ex = sub.add_parser("explain", help="look deeper into a trained run: fool it (adversarial), map its classes "
                        "(embedding), what each class looks like to it (dream), which pixels made it answer "
                        "(attribution)")
    ex.add_argument("run", help="run id, or the folder of a run anywhere (e.g. models/mnist-bundled)")
    ex.add_argument("view", choices=("adversarial", "embedding", "dream", "attribution"))
    ex.add_argument("--image", type=int, metavar="N", help="adversarial, attribution: test image N (attribution: "
                    "default 0; adversarial: also find that picture's smallest fooling change)")
    ex.add_argument("--n", type=int, metavar="N", help="adversarial: test images attacked (default 100); "
                    "embedding: test images mapped (default 1000)")
    ex.add_argument("--method", help="adversarial: pgd (default) or fgsm; embedding: pca (default) or tsne")
    ex.add_argument("--eps", type=float, help="adversarial: the largest budget, a share of black-to-white "
                    "(default 0.3 for grey pictures, 16/255 for colour)")
    ex.add_argument("--target", type=int, metavar="CLASS", help="attribution: the class explained (default: "
                    "the model's answer)")
    ex.add_argument("--layer", help="dream: a conv feature layer whose filters to show instead of the classes")
    ex.add_argument("--which", choices=("best", "latest"), default="best")
    ex.add_argument("--out", metavar="DIR", help="write the pictures here as PNG")
    ex.add_argument("--json", action="store_true", help="print one JSON object")

    pred = sub.add_parser("predict", help="top-3 classes of pictures with a trained run: files, or a folder or "
                          ".zip of them (class subfolders give accuracy and a confusion matrix)")
    pred.add_argument("--run", required=True, help="run id, or the folder of a run anywhere: "
                      "--run models/mnist-bundled reads digits with the model that ships with the dashboard")
    pred.add_argument("--which", choices=("best", "latest"), default="best")
    pred.add_argument("images", nargs="+", metavar="FILE_DIR_OR_ZIP", help="PNG/JPEG/... files, folders, zips")
    pred.add_argument("--top", type=int, default=3, help="classes shown per picture (default 3)")
    pred.add_argument("--csv", help="also write the table to this CSV file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.data_dir:
        os.environ["CNN_DATA_DIR"] = args.data_dir
    if args.runs_dir:
        os.environ["CNN_RUNS_DIR"] = args.runs_dir
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Inert(sys.stdout), Inert(sys.stderr)   # names from files print as text
    try:
        return (_train_after_the_queue(args) if _waits_first(args) else _handle(args)) or 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout, sys.stderr = streams


def _waits_first(args) -> bool:
    """`train --run DIR` (what the dashboard launches) waits for its slot before it imports torch: a queued
    run costs ~20 MB, not ~600. Not under torchrun: there the process that started torchrun waited."""
    if args.command != "train":
        return False
    if args.ray and (not args.run or args.detach or args.processes != 1):
        raise ValueError("--ray ADDRESS goes with --run DIR, in one process, without --detach")
    if args.processes != 1 and (not args.run or args.detach or args.processes < 1):
        raise ValueError(f"--processes N (a whole number of at least 1) goes with --run DIR, without --detach; "
                         f"got {args.processes}")
    return bool(args.run) and args.resume in (None, True) and not args.detach \
        and int(os.environ.get("WORLD_SIZE") or 1) == 1


def _train_after_the_queue(args) -> int:
    """Wait for a slot (cancel while waiting ends the run `cancelled`), then train: here, or as torchrun over
    --processes N, which inherits the slot."""
    path = store.resolve_run(Path(args.run))
    with jobs.slot(path) as slot:
        if slot is None:
            print(jobs.end_cancelled_while_queued(path), file=sys.stderr)
            return 1
        if args.processes > 1:   # torchrun is a module: `python -m torch.distributed.run` needs no PATH lookup
            jobs.hand_over(path, [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                                  str(args.processes), "-m", "cnn_core", "train", "--run-dir", str(path), "--quiet"]
                           + (["--resume"] if args.resume else []))
        if args.ray:             # sweeps' RayTrials: the run as a Ray task, waited for with the slot held
            from cnn_core.sweeps.driver import train_on_ray

            status = train_on_ray(path, args.ray, resume=bool(args.resume))
            print(f"run {path.name} {status} (on the Ray cluster at {args.ray})", file=sys.stderr)
            return 0 if status == "completed" else 1
        return _handle(args)      # its jobs.slot(path) is this one


def _handle(args) -> int:
    from cnn_core.cli import commands

    handler = {"train": commands.train, "runs": commands.runs_cmd,
               "data": commands.data_cmd, "predict": commands.predict_cmd,
               "presets": commands.presets_cmd, "lessons": commands.lessons_cmd, "explain": commands.explain_cmd, "sweep": commands.sweep_cmd,
               "sweeps": commands.sweeps_cmd, "export": commands.export_cmd}[args.command]
    return handler(args)

