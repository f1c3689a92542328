"""What each CLI command does (the parser lives in entry.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import zipfile
from pathlib import Path

from cnn_core.analysis.predict import (
    classify_many,
    image_for_model,
    load_model,
    predict_uint8,
    top_k,
)
from cnn_core.cli.flags import config_from_args
from cnn_core.config import ConfigError
from cnn_core.core import distributed
from cnn_core.core.progress import ProgressBar, count, fmt_duration
from cnn_core.data import catalog, pictures
from cnn_core.runs import metrics_log, store
from cnn_core.sweeps import driver, ledger
from cnn_core.train import engine, jobs, presets


def _train_progress(bar: ProgressBar, path: Path):
    def report(p: dict) -> None:
        steps = [r for r in metrics_log.read_metrics(path)[-3:] if r["kind"] == "step"]
        loss = f"loss {steps[-1]['loss']:.4f} acc {steps[-1]['acc']:.3f} " if steps else ""
        bar(p["step"], p["total_steps"], f"epoch {p['epoch']}/{p['epochs']} {loss}"
                                          f"{p['images_per_sec']:.0f} img/s ETA {fmt_duration(p['eta'])}")
    return report


def train(args) -> int:
    world = distributed.init()          # under torchrun: join the other processes; else nothing happens
    ended = False
    try:
        code = _train(args) if not world.active else _train_together(args, world)
        ended = True
        return code
    finally:
        distributed.shutdown(together=ended)


def _run_to_train(args) -> tuple[Path, bool]:
    """The run folder `train` works on, and whether it resumes: --resume RUN, --run DIR, or a new run made
    from the flags (ConfigError before anything is written)."""
    if args.resume not in (None, True):
        return store.resolve_run(args.resume), True
    if args.run:
        return store.resolve_run(Path(args.run)), bool(args.resume)
    config = config_from_args(args)
    if why := distributed.batch_problem(config.batch_size, distributed.launched_size()):
        raise ConfigError({"batch_size": why})
    path = store.create_run(config, name=args.name)
    print(f"run {path.name} in {path}", file=sys.stderr)
    return path, False


def _prepared_run(args) -> tuple[Path, bool]:
    path, resume = _run_to_train(args)
    if getattr(args, "more", None) is not None:
        if not resume:
            raise ValueError("--more N goes with --resume RUN: the run to train N epochs more")
        total = jobs.more_epochs(path, args.more)
        print(f"run {path.name}: {count(args.more, 'more epoch', 'more epochs')}, {total} in all", file=sys.stderr)
    if not args.run:
        (path / store.CANCEL).unlink(missing_ok=True)   # a person starting it now means it
    if resume and not (path / store.CHECKPOINT).is_file():
        raise ValueError(f"run {path.name} has no checkpoint to resume from (it stopped before its first "
                         f"epoch ended); train it from the beginning: python -m cnn_core train --run {path}")
    return path, resume


def _train_here(args, path: Path, resume: bool, when_cancelled=lambda: None) -> int:
    """Wait for a training slot, train, print how it ended."""
    with jobs.slot(path) as slot:
        if slot is None:
            when_cancelled()
            print(jobs.end_cancelled_while_queued(path), file=sys.stderr)
            return 1
        record = engine.run_training(path, resume=resume,
                                     on_progress=None if args.quiet else _train_progress(ProgressBar(), path))
    return _print_outcome(record)


def _train(args) -> int:
    path, resume = _prepared_run(args)
    if args.detach:
        try:
            pid = jobs.launch(path, resume=resume)
        except jobs.QueueFull:
            if not (args.run or resume):     # made just now for this launch: nothing of it is kept
                store.delete_run(path)
            raise
        print(f"started run {path.name} (pid {pid}); `python -m cnn_core runs show {path.name}` follows it")
        return 0
    return _train_here(args, path, resume)


def _train_together(args, world) -> int:
    """One run over the processes torchrun started: rank 0 makes or finds the run and waits for its slot,
    the others take the run from it (engine.run_training: rank 0 alone writes)."""
    if args.detach:
        raise ValueError("--detach does not combine with torchrun: start torchrun itself in the background, or "
                         "use the dashboard's Processes setting")
    if not world.main:
        got = distributed.broadcast(None)
        if "error" not in got:
            engine.run_training(Path(got["run"][0]), resume=got["run"][1])
        return 0
    try:
        path, resume = _prepared_run(args)
        if why := distributed.batch_problem(int(store.read_run(path).config.get("batch_size") or 0), world.size):
            raise ValueError(f"run {path.name}: {why}")
    except (ValueError, TimeoutError) as exc:
        distributed.broadcast({"error": str(exc)})      # the others stop too
        raise
    distributed.broadcast({"run": (str(path), resume)})
    return _train_here(args, path, resume, lambda: distributed.broadcast({"error": "cancelled while queued"}))


def _print_outcome(record: dict) -> int:
    status = record.status
    if status == "completed":
        s = record.summary
        print(f"completed run {record.id}: test accuracy {s['test_acc']:.4f} (best epoch {s['best_epoch']}, "
              f"validation {s['best_val_acc']:.4f}), {s['images_per_sec']:.0f} images/s, {s['wall_time']:.1f} s")
        return 0
    print(f"run {record.id} {status}" + (f": {record.error}" if record.error else ""),
          file=sys.stderr)
    return 0 if status == "cancelled" else 1


def _acc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


def runs_cmd(args) -> int:
    if args.action == "list":
        rows = store.list_runs()
        if not rows:
            print(f"no runs in {store.default_runs_dir().resolve()}")
        for r in rows:
            if r.corrupt:
                print(f"{r.id:<48} {'corrupt':<11} {r.error}")
                continue
            print(f"{r.id:<48} {r.effective_status:<11} {r.dataset or '-':<13} {r.arch or '-':<13} "
                  f"test {_acc(r.test_acc)}  {r.name}" + (f"  ({r.owner})" if r.owner else ""))
        return 0
    if args.action == "show":
        return _show(store.resolve_run(read_only_run(args.run)))
    path = store.resolve_run(args.run)
    if args.action == "rename":
        store.rename_run(path, args.name)
        print(f"renamed {path.name} to {args.name!r}")
    elif args.action == "cancel":
        print(f"cancel requested for {path.name} (was {jobs.cancel(path)})")
    elif args.action == "delete":
        jobs.delete_run(path)
        print(f"deleted run {path.name}")
    elif args.action == "steer":
        ask = {k: v for k, v in (("lr", args.lr), ("pause", True if args.pause else False if args.go_on else None))
               if v is not None}
        if not ask:
            raise ValueError("say what to change: --lr RATE, --pause or --continue")
        store.steer(path, **ask)
        print(f"asked run {path.name}: " + ", ".join(f"{k} {v}" for k, v in ask.items())
              + " (taken at its next step)")
    return 0


def _f(value, spec: str) -> str:
    """A number formatted with `spec`; '-' (padded alike) when the record lacks it."""
    return format(value, spec) if isinstance(value, (int, float)) else format("-", spec.rstrip("fd").split(".")[0])


def _show(path: Path) -> int:
    r = store.read_run(path)
    s, c = r.summary, r.config
    print(f"run       {r.id}  ({r.name})\nstatus    {store.effective_status(r)}"
          + (f"  error: {r.error}" if r.error else ""))
    if r.owner:
        print(f"owner     {r.owner} (class mode)")
    print(f"model     {r.arch} {r.arch_params} on {r.dataset}")
    print("training  " + " ".join(f"{label}{c.get(k, '-')}" for label, k in (
        ("", "optimizer"), ("lr ", "lr"), ("batch ", "batch_size"), ("epochs ", "epochs"), ("schedule ", "schedule"),
        ("augment ", "augment"), ("seed ", "seed"))))
    epochs = [m for m in metrics_log.read_metrics(path) if m["kind"] == "epoch"]
    if epochs:
        print("\nepoch  train_loss  train_acc  val_loss  val_acc   img/s")
        for m in epochs:
            mark = "  <- best" if m.get("epoch") == s.get("best_epoch") else ""
            print("  ".join(_f(m.get(k), spec) for k, spec in (
                ("epoch", ">5"), ("train_loss", ">10.4f"), ("train_acc", ">9.4f"), ("val_loss", ">8.4f"),
                ("val_acc", ">7.4f"), ("images_per_sec", ">6.0f"))) + mark)
    if isinstance(s.get("test_acc"), (int, float)):
        print(f"\ntest accuracy {s['test_acc']:.4f} (best-validation weights, epoch {s.get('best_epoch', '-')}); "
              f"last epoch's weights {_f(s.get('final_test_acc'), '.4f')}; wall time {_f(s.get('wall_time'), '.1f')} s")
        if s.get("data_subset"):
            print(f"data: {s['data_subset']}")
    if note := store.chance_note(r):
        print(f"\nwarning: {note}")
    return 0


def data_cmd(args) -> int:
    if args.action == "status":
        print(f"data folder: {catalog.default_data_dir().resolve()}")
        for name, info in catalog.datasets().items():
            st = catalog.dataset_status(name)
            sizes = f"{st.n_train:,} train / {st.n_test:,} test" if st.state != "missing" else ""
            kind = " (yours)" if info.own is not None else ""
            print(f"  {name + kind:<20} {st.state:<8} {sizes:<28} {st.source or st.detail}")
        return 0
    if args.action in ("add", "show", "rename", "delete"):
        return _own_data(args)
    names = list(catalog.DATASETS) if args.name == "all" else [args.name]
    failed = 0
    for name in names:
        catalog.get_info(name)
        bar = ProgressBar()
        try:
            raw = catalog.prepare(name, source_dir=args.source_dir, progress=bar)
        except ValueError as exc:
            if len(names) == 1:
                raise
            print(f"{name}: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {len(raw.train_x):,} train / {len(raw.test_x):,} test from {raw.source}"
              + (f" [{raw.subset}]" if raw.subset else ""))
    return 1 if failed == len(names) else 0


def _print_report(r: pictures.Report, counts: dict | None = None) -> None:
    print(r.summary())
    width = max(len(c) for c in r.classes)
    for c in r.classes:
        n = (counts or r.counts)[c]
        print(f"  {c:<{width}}  {n['train']:>7,} train  {n['test']:>6,} test")
    print("sizes found: " + ", ".join(f"{size} ({n:,})" for size, n in r.sizes[:8])
          + (f" and {len(r.sizes) - 8} more" if len(r.sizes) > 8 else ""))
    for w in r.warnings:
        print(f"warning: {w}")


def _own_data(args) -> int:
    if args.action == "rename":
        pictures.rename(args.name, args.new_name)
        print(f"renamed dataset {args.name} to {args.new_name} (runs trained on it keep the name {args.name})")
        return 0
    if args.action == "delete":
        pictures.delete(args.name)
        print(f"deleted dataset {args.name}")
        return 0
    if args.action == "show":
        info = catalog.get_info(args.name)
        if info.own is None:
            raise ValueError(f"{args.name} is a built-in dataset: `data status` describes it")
        own = info.own
        report = pictures.report_of(info)
        print(f"{args.name}: {info.input_shape[0]} x {info.input_shape[1]} x {info.input_shape[2]} "
              f"({pictures.FITS[own['fit']]}); validation {own['val_size']:,} images at training time")
        _print_report(report)
        return 0
    options = pictures.Options(args.size, args.channels, args.val, args.test, args.fit, args.seed)
    if not args.preview:
        pictures.check_name(args.name, catalog.default_data_dir())
    found = pictures.read_source(args.source, options, progress=ProgressBar())
    _print_report(found.report)
    if args.preview:
        print("preview only: nothing written")
        return 0
    info = pictures.add(args.name, args.source, options, read=found)
    print(f"added dataset {info.id}: {len(found.train_y):,} train / {len(found.test_y):,} test, "
          f"{info.input_shape[0]}x{info.input_shape[1]}x{info.input_shape[2]}, validation {info.default_val_size:,}"
          f"\ntrain it: python -m cnn_core train --dataset {info.id}")
    return 0


def read_only_run(text: str) -> str | Path:
    """A run named on the command line for reading (show, predict): a folder holding run.json anywhere
    (models/mnist-bundled, a run copied from another machine) is taken as it is, the person typed it;
    anything else is a run id or a folder inside the runs folder. Commands that change or delete a run
    take the second kind only."""
    path = Path(text).expanduser()
    return path if "\x00" not in text and (path / store.RUN_JSON).is_file() else text


def predict_cmd(args) -> int:
    model, meta = load_model(read_only_run(args.run), which=args.which)
    sources = [str(p) for p in args.images]
    many = len(sources) > 1 or not Path(sources[0]).is_file() or zipfile.is_zipfile(sources[0])
    if not many:       # one picture: its answer, or why it cannot be read
        probs = predict_uint8(model, meta, image_for_model(Path(sources[0]).read_bytes(), meta)[None])
        print(f"{sources[0]}: " + ", ".join(f"{name} {p:.3f}" for name, p in top_k(probs[0], meta["classes"], args.top)))
        return 0
    found = classify_many(model, meta, sources, progress=ProgressBar())
    rows = found.rows(args.top)
    for r in rows:
        mark = "" if r["correct"] is None else ("  ok" if r["correct"] else f"  WRONG (is {r['label']})")
        print(f"{r['file']}: " + ", ".join(
            f"{r[f'top{i}']} {r[f'p{i}']:.3f}" for i in range(1, args.top + 1) if f"top{i}" in r) + mark)
    for path, why in found.skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    acc = found.accuracy()
    if acc is not None:
        n = len(found.labelled)
        print(f"\naccuracy {acc:.4f} on {n:,} labelled pictures ({round(acc * n):,} right)")
        cm = found.confusion()
        w = max(len(c) for c in found.classes)
        print("confusion (rows: true class, columns: predicted)\n" + " " * (w + 2)
              + " ".join(f"{c[:6]:>6}" for c in found.classes))
        for c, row in zip(found.classes, cm):
            print(f"{c:<{w}}  " + " ".join(f"{v:>6}" for v in row))
    if args.csv:
        Path(args.csv).write_text(found.to_csv(args.top), encoding="utf-8", newline="")   # formula-like cells as text
        print(f"wrote {len(rows):,} rows to {args.csv}", file=sys.stderr)
    return 0


def presets_cmd(args) -> int:
    """Each preset: dataset, name, what it is for, its values, what it measured here."""
    shown = [p for p in presets.PRESETS if args.dataset in (None, p.dataset)]
    if not shown:
        print(f"no presets for {args.dataset}")
    for p in shown:
        shown_value = lambda v: json.dumps(v) if isinstance(v, bool) else v
        values = " ".join(f"--{k.replace('_', '-')} {shown_value(v)}" for k, v in sorted(
            p.values.items(), key=lambda kv: kv[0] != "arch") if k != "arch_params")
        params = " ".join(f"--param {k}={shown_value(v)}" for k, v in p.values.get("arch_params", {}).items())
        print(f"{p.dataset} {p.name}: {p.purpose}\n    {values} {params}".rstrip())
        if p.measured:
            print(f"    measured: {p.measured}")
    return 0


def lessons_cmd(args) -> int:
    """The lessons, as text or JSON; with --run, one lesson's experiments trained here and its answer checked."""
    from cnn_core.train import lessons

    if args.run:
        lesson = lessons.get(args.run)
        print(f"{lesson.title}\n{lesson.question}")
        results = lessons.run_here(lesson)
        accs = {label: acc for label, (_, acc) in results.items()}
        for label, (path, acc) in results.items():
            print(f"  {label:<22} {'failed' if acc is None else f'{acc:.1%}'}  {path.name}")
        if None in accs.values():
            print("a run did not complete: see its train.log")
            return 1
        measured = None
        if lesson.measure is not None:
            from cnn_core.analysis import explain

            ((path, _),) = results.values()             # a lesson with a measure has one experiment
            measured = explain.MEASURES[lesson.measure.kind](path, lesson.measure.n)
            print(f"  {lesson.measure.label}: {measured:.3f}")
        why = lesson.verdict(accs, measured)
        print(f"answer: {lesson.answer}. " + ("The runs bear it out." if why is None else f"Not this time: {why}."))
        print(f"the tutorial: {lesson.tutorial}\ntry this: {lesson.try_this}")
        return 0
    if args.json:
        print(json.dumps([dataclasses.asdict(lesson) for lesson in lessons.LESSONS], indent=1))
        return 0
    for i, lesson in enumerate(lessons.LESSONS, 1):
        runs = ", ".join(e.label for e in lesson.experiments)
        print(f"{i}. {lesson.id}: {lesson.title}\n    {lesson.question} ({runs})")
    return 0


def _trial_line(t: dict, objective: str) -> str:
    score = f"{t['score']:.4f}" if isinstance(t.get("score"), (int, float)) else "-"
    values = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in t["params"].items())
    return (f"  #{t['number']:<3} {t['status']:<11} {objective} {score:<7} {values}  {t.get('run') or ''}"
            + (f"\n        {t['reason']}" if t.get("reason") else ""))


def sweep_cmd(args) -> int:
    """Check and create a sweep; drive it here with --wait (progress, then the best trial), else detached."""
    base = config_from_args(args)
    named = ledger.ray_addresses() if args.address and os.environ.get(ledger.RAY_ADDRESSES_ENV) else {}
    sweep = ledger.create(base, ledger.parse_grid(args.grid), ledger.parse_sample(args.sample), args.trials,
                          args.objective, args.sampler, args.prune, args.backend,
                          named.get(args.address, args.address), args.name)    # a configured name, or any address
    print(f"sweep {sweep.id}: {count(sweep.trials, 'trial')} of {sweep.name}, {sweep.backend}", file=sys.stderr)
    return _drive(sweep, args.wait)


def _drive(sweep: ledger.Sweep, wait: bool, resume: bool = False) -> int:
    """Detached (the sweep's own process), or here showing progress and ending with the best trial."""
    if not wait:
        pid = ledger.launch(sweep, resume=resume)
        print(f"started sweep {sweep.id} (pid {pid}); `python -m cnn_core sweeps show {sweep.id}` follows it")
        return 0
    if resume:
        ledger.check_resume(sweep)
    bar = ProgressBar()

    def report(s: ledger.Sweep) -> None:
        done = sum(t["status"] in store.FINISHED + ("pruned",) for t in s.runs)
        best = s.best()
        bar(done, s.trials, f"{done}/{s.trials} trials done" + (
            f", best #{best['number']} {best['score']:.4f}" if best else ""))

    return _sweep_outcome(driver.drive(sweep.id, report=report, resume=resume))


def _sweep_outcome(sweep: ledger.Sweep) -> int:
    best = sweep.best()
    print(f"sweep {sweep.id} {ledger.effective_status(sweep)}" + (f": {sweep.error}" if sweep.error else ""))
    if best:
        print(f"best: trial #{best['number']}, {ledger.OBJECTIVES[sweep.objective][1]} {best['score']:.4f}, run "
              f"{best['run']}\n      " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in best["params"].items()))
    return 0 if sweep.status == "completed" and best else 1


def sweeps_cmd(args) -> int:
    if args.action == "list":
        found = ledger.list_sweeps()
        if not found:
            print("no sweeps")
        for s in found:
            best = s.best()
            print(f"{s.id:<22} {ledger.effective_status(s):<11} {len(s.runs):>4}/{s.trials:<4} "
                  f"best {best['score'] if best else '-':<8} {s.name}")
        return 0
    if args.action == "drive":
        return _sweep_outcome(driver.drive(args.sweep, resume=args.resume))
    if args.action == "resume":
        return _drive(ledger.read(args.sweep), args.wait, resume=True)
    if args.action == "cancel":
        ledger.cancel(args.sweep)
        print(f"cancel requested for sweep {args.sweep}")
        return 0
    if args.action == "delete":
        print(f"deleted sweep {args.sweep} and its {count(ledger.delete(args.sweep), 'run')}")
        return 0
    s = ledger.read(args.sweep)
    print(f"sweep {s.id}  ({s.name})\nstatus    {ledger.effective_status(s)}"
          + (f"  error: {s.error}" if s.error else "")
          + f"\nspace     {json.dumps(s.grid or s.sample)}\ntrials    {len(s.runs)} of {s.trials}, {s.backend}, "
          f"sampler {'grid' if s.grid else s.sampler}, pruning {s.prune}")
    order = sorted(s.runs, key=lambda t: (t.get("score") is None, -(t.get("score") or 0)
                                          if s.direction == "maximize" else (t.get("score") or 0)))
    for t in order:
        print(_trial_line(t, s.objective))
    if imp := ledger.importance(s):
        print("what mattered (Optuna's importance): " + ", ".join(f"{k} {v:.2f}" for k, v in imp.items()))
    return 0


def export_cmd(args) -> int:
    """A run as a plain PyTorch script, or its model as ONNX, .pt2 or TorchScript (checked against PyTorch)."""
    path = store.resolve_run(read_only_run(args.run))
    if args.kind == "script":
        from cnn_core.export import standalone

        out = standalone.write(path, Path(args.output or f"{path.name}.py"))
        print(f"wrote {out}: python {out} --data-dir {catalog.default_data_dir()}   # the run's epochs again")
        return 0
    from cnn_core.export import formats

    result = formats.export_model(path, args.kind)
    print(f"{result.path}\n{result.message}")
    return 0 if result.ok else 1


def explain_cmd(args) -> int:
    """One deeper view of a trained run: its numbers as text or one JSON object, its pictures with --out."""
    from cnn_core.analysis import explain, inspection

    model, meta = load_model(read_only_run(args.run), which=args.which)
    out = Path(args.out) if args.out else None
    methods = {"adversarial": ("pgd", "fgsm"), "embedding": ("pca", "tsne")}
    if args.method and args.method not in methods.get(args.view, ()):
        raise ValueError(f"--method goes with {args.view} as one of: {', '.join(methods.get(args.view, ())) or 'none'}"
                         f"; got {args.method!r}")
    if args.view == "dream":
        result = explain.dream_view(model, meta, args.layer, out)
    else:
        test = inspection.load_test_set(meta.get("dataset"))
        inspection.check_fits(test, meta)
        if args.view == "adversarial":
            result = explain.adversarial_view(model, meta, test, args.n or 100, args.method or "pgd", args.eps,
                                              args.image, out, progress=None if args.json else ProgressBar())
        elif args.view == "embedding":
            result = explain.embedding_view(model, meta, test, args.n or 1000, args.method or "pca", out)
        else:
            result = explain.attribution_view(model, meta, test, args.image or 0, args.target, out)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        shown = ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value) \
            if isinstance(value, list) else (f"{value:.4g}" if isinstance(value, float) else value)
        print(f"{key}: {shown}")
    return 0
