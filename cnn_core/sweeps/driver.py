"""Running a sweep (cnn_core.sweeps.ledger is its record and store): the driver asks Optuna for each trial's
values, starts the trial as a run, reports its validation score every epoch (pruning stops a poor one),
and tells Optuna how it ended. Trials run in one of two places: LocalTrials (this machine's queue, a
detached process each) or RayTrials (Ray tasks on a cluster, or on a local Ray instance).

A driver that dies (killed, or the machine went down) leaves the sweep interrupted; `drive(resume=True)`
goes on: the trials that ended are told to Optuna as they ended, a trial still training is followed, one
that stopped with the driver resumes from its checkpoint, and the rest of the budget runs.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from cnn_core.config import ConfigError, TrainConfig
from cnn_core.core.settings import specs
from cnn_core.runs import store
from cnn_core.sweeps.ledger import (
    OBJECTIVES,
    Sweep,
    corners,
    distributions,
    epoch_scores,
    folder,
    read,
    save,
    score,
)
from cnn_core.train import jobs

POLL_S = 0.25
ENDED = ("completed", "failed", "pruned")      # a trial's states that a resumed driver does not take up again


# ---- where trials run ---------------------------------------------------------------------------------
class LocalTrials:
    """Trials on this machine's queue: a detached process each, at most jobs.max_jobs() training at once. A
    trial the line has no room for (jobs.QueueFull: CNN_MAX_QUEUED runs wait already) waits here, status
    queued, and is launched once there is room; cancelled meanwhile, it ends cancelled."""

    RETRY_S = 1.0

    def __init__(self, sweep: Sweep):
        self.capacity = jobs.max_jobs()
        self.held: dict[Path, tuple[bool, float]] = {}     # trial not launched yet -> (resume, last try)

    def start(self, path: Path, resume: bool = False) -> None:
        try:
            jobs.launch(path, resume=resume)
        except jobs.QueueFull:
            store.update_run(path, status="queued", heartbeat=time.time(), queued_at=time.time())
            self.held[path] = (resume, time.monotonic())

    def _retry(self, path: Path) -> None:
        """A held trial: cancelled, it ends so; else launched if the line has room now (tried once a second)."""
        resume, tried = self.held[path]
        if (path / store.CANCEL).exists():
            del self.held[path]
            store.update_run(path, status="cancelled")
        elif time.monotonic() - tried >= self.RETRY_S:
            try:
                jobs.launch(path, resume=resume)
                del self.held[path]
            except jobs.QueueFull:
                self.held[path] = (resume, time.monotonic())
                store.update_run(path, heartbeat=time.time())      # still waiting: not `interrupted`

    def done(self, path: Path) -> bool:
        if path in self.held:
            self._retry(path)
            if path in self.held:
                return False
        return store.read_run(path).effective_status in store.FINISHED

    def close(self) -> None:
        pass


def _ray_train(path: str, resume: bool = False, threads: int | None = None) -> str:
    """A trial as a Ray task: the run trained in the worker's process (its folder on the shared runs folder),
    on `threads` CPU threads (default: OMP_NUM_THREADS, the driver's share of a machine like the server)."""
    import torch

    from cnn_core.train import engine

    torch.set_num_threads(max(1, threads or int(os.environ.get("OMP_NUM_THREADS", "1"))))
    record = engine.run_training(Path(path), resume=resume)
    return record.status if record else "failed"


def _ray_token() -> bool:
    """Whether this machine holds a Ray token (where Ray looks: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, or
    ~/.ray/auth_token, the file `ray start` writes and a cluster's nodes share)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or (Path.home() / ".ray" / "auth_token").is_file())


class RayTrials:
    """Trials as Ray tasks on the cluster at `address`, or on a local Ray instance: each task asks for the
    CPUs (and GPU) a run takes here; the runs folder must be one every node reaches."""

    def __init__(self, sweep: Sweep | None = None, cpus: int | None = None, address: str | None = None):
        address = sweep.address if sweep is not None else address
        if address and "RAY_AUTH_MODE" not in os.environ and _ray_token():
            # A cluster started by `ray start` (Ray 2.59 and later) asks for its token; a driver given an
            # explicit address sends it only in token mode (read when ray is
            # imported). A cluster without authentication ignores it.
            os.environ["RAY_AUTH_MODE"] = "token"
        import ray

        project = str(Path(__file__).resolve().parents[2])
        env = {k: v for k, v in os.environ.items() if k.startswith("CNN_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [project, os.environ.get("PYTHONPATH")]))
        self.cpus = cpus or jobs.threads_per_job()
        env["OMP_NUM_THREADS"] = str(self.cpus)
        if not ray.is_initialized():
            ray.init(address=address or None, runtime_env={"env_vars": env}, include_dashboard=False,
                     log_to_driver=False, num_cpus=None if address else (os.cpu_count() or 1))
        self.ray = ray
        self.task = ray.remote(num_cpus=self.cpus, max_retries=0)(_ray_train)
        self.capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus))
        self.pending: dict[str, object] = {}

    def start(self, path: Path, resume: bool = False) -> None:
        store.update_run(path, status="queued", error=None, heartbeat=time.time(), queued_at=time.time())
        self.pending[str(path)] = self.task.remote(str(path), resume)

    def done(self, path: Path) -> bool:
        ref = self.pending.get(str(path))
        if ref is None:
            return True
        ready, _ = self.ray.wait([ref], timeout=0)
        if ready:
            try:
                self.ray.get(ready[0])
            except Exception as exc:          # the worker died: the run reads interrupted or failed
                if store.read_run(path).status in store.ACTIVE:
                    store.update_run(path, status="failed", error=f"the Ray task failed: {exc}")
            del self.pending[str(path)]
            return True
        return False

    def close(self) -> None:
        self.ray.shutdown()


def train_on_ray(path: Path, address: str, resume: bool = False) -> str:
    """One launched run (class mode's, jobs.launch with a cluster) as a Ray task on the cluster at `address`,
    waited for; the status it ended with. It asks for the cluster's CPUs divided by the runs that train at once
    there, and trains on that many threads. Its folder must be on a runs folder the cluster's nodes share."""
    trials = RayTrials(address=address)
    try:
        # the cluster's CPUs shared among the runs it trains at once (CNN_MAX_JOBS: the class's runs_at_once)
        cpus = max(1, int(trials.ray.cluster_resources().get("CPU", 1)) // jobs.max_jobs())
        task = trials.ray.remote(num_cpus=cpus, max_retries=0)(_ray_train)
        trials.pending[str(path)] = task.remote(str(path), resume, cpus)   # its queued_at stays its turn's
        while not trials.done(path):
            time.sleep(POLL_S * 4)
    finally:
        trials.close()
    return store.read_run(path).effective_status


# ---- the driver ---------------------------------------------------------------------------------------

def _study(sweep: Sweep):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if sweep.grid:      # every point is enqueued, in the order listed (_study's caller); no sampling left
        sampler = optuna.samplers.RandomSampler(seed=sweep.seed)
    elif sweep.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=sweep.seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=min(5, max(1, sweep.trials // 3)))
    pruner = {"none": optuna.pruners.NopPruner(),
              "median": optuna.pruners.MedianPruner(n_startup_trials=2),
              # an epoch is the unit; "auto" would wait for a trial to end before recording any rung, so
              # trials run one after another would never be compared
              "asha": optuna.pruners.SuccessiveHalvingPruner(min_resource=1)}[sweep.prune]
    study = optuna.create_study(direction=sweep.direction, sampler=sampler, pruner=pruner)
    return study


def _suggest(trial, sweep: Sweep) -> dict:
    if sweep.grid:
        return {name: trial.suggest_categorical(name, values) for name, values in sweep.grid.items()}
    out = {}
    for name, dim in sweep.sample.items():
        if "values" in dim:
            out[name] = trial.suggest_categorical(name, dim["values"])
        elif specs(TrainConfig)[name].kind == "int":
            out[name] = trial.suggest_int(name, dim["low"], dim["high"], log=dim["scale"] == "log")
        else:
            out[name] = trial.suggest_float(name, dim["low"], dim["high"], log=dim["scale"] == "log")
    return out






def _stop(live: dict, sweep: Sweep, trials, timeout: float = 60.0) -> None:
    """Cancel the live trials, wait (up to `timeout`) for their processes to end, record how they ended."""
    for _, path, _ in live.values():
        jobs.cancel(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(trials.done(p) and store.read_run(p).effective_status
                                                  in store.FINISHED for _, p, _ in live.values()):
        time.sleep(POLL_S)
    for number, (_, path, _) in live.items():
        entry = sweep.runs[number - 1]
        entry["status"] = store.read_run(path).effective_status
        entry["reason"] = entry["reason"] or "the sweep was cancelled"


def _replay(study, sweep: Sweep, trials, root: Path) -> dict[int, tuple]:
    """Resuming: each trial that ended is told to Optuna as it ended (with its epoch scores, which the
    pruners compare against); the others are taken up again: a run still training is followed, one that
    stopped with the old driver resumes from its checkpoint (or starts, if it had none). The live trials."""
    import optuna

    state = optuna.trial.TrialState
    dists, live = distributions(sweep), {}
    for entry in sweep.runs:
        path = root / entry["run"] if entry.get("run") else None
        if entry["status"] not in ENDED and (path is None or not path.is_dir()):
            entry.update(status="failed", reason=entry.get("reason") or "its run was deleted")
        if entry["status"] in ENDED:
            ended = (state.COMPLETE if entry["status"] == "completed" and entry.get("score") is not None
                     else state.PRUNED if entry["status"] == "pruned" else state.FAIL)
            steps = epoch_scores(path, sweep.objective) if path and path.is_dir() else []
            study.add_trial(optuna.trial.create_trial(
                params=entry["params"], distributions=dists, state=ended, intermediate_values=dict(enumerate(steps, 1)),
                value=entry["score"] if ended == state.COMPLETE else None))
            continue
        study.enqueue_trial(entry["params"])
        record = store.read_run(path)
        status = record.effective_status
        if (status not in store.ACTIVE and status != "completed") or (status == "queued" and not record.pid):
            trials.start(path, resume=(path / store.CHECKPOINT).is_file())     # ended, or held by the old driver
        entry["reason"] = None
        trial = study.ask()
        _suggest(trial, sweep)       # the enqueued values, recorded as this trial's
        live[entry["number"]] = (trial, path, 0)
    return live


def drive(sweep_id: str, runs_dir: Path | None = None, report=None, resume: bool = False) -> Sweep:
    """Run the sweep to its end in this process: ask Optuna for each trial's values, start it as a run,
    report its validation score each epoch (pruning stops a poor one: cancelled, with the reason), tell
    Optuna how it ended. A failed trial (diverged, NaN) is recorded with its reason and the sweep goes
    on. `report(sweep)` is called as trials move. resume: the sweep's driver died; go on from its
    record (the caller checked that it may: sweeps.check_resume)."""
    import optuna

    root = Path(runs_dir or store.default_runs_dir())
    sweep = read(sweep_id, root)
    sweep.status, sweep.pid, sweep.host, sweep.error = "running", os.getpid(), socket.gethostname(), None
    save(sweep, root)
    stop_file = folder(root) / f"{sweep.id}.cancel"
    study = _study(sweep)
    try:
        trials = RayTrials(sweep) if sweep.backend == "ray" else LocalTrials(sweep)
    except Exception as exc:      # ray missing, or its cluster refused us
        sweep.status, sweep.error = "failed", f"{sweep.backend} could not start: {type(exc).__name__}: {exc}"
        if sweep.address:
            sweep.error += (". If the cluster uses token authentication (Ray's default since 2.59), copy its "
                            "token (`ray get-auth-token` on the head node) to ~/.ray/auth_token here, or set "
                            "RAY_AUTH_TOKEN")
        save(sweep, root)
        return sweep
    live: dict[int, tuple] = {}            # trial number -> (optuna trial, run folder, epochs reported)
    try:
        if resume:
            live = _replay(study, sweep, trials, root)
        for point in (corners(sweep)[len(sweep.runs):] if sweep.grid else []):      # in the order listed
            study.enqueue_trial(point)
        while True:
            if stop_file.exists():
                _stop(live, sweep, trials)
                sweep.status = "cancelled"
                break
            while len(live) < trials.capacity and len(sweep.runs) < sweep.trials:
                trial = study.ask()
                params = _suggest(trial, sweep)
                number = len(sweep.runs) + 1
                label = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
                entry = {"number": number, "params": params, "status": "queued", "score": None, "reason": None}
                try:
                    path = store.create_run(TrainConfig.from_dict({**sweep.base, **params}),
                                           name=f"{sweep.name} #{number}: {label}"[:store.MAX_NAME], runs_dir=root)
                except (ConfigError, ValueError) as exc:     # a sampled value the checks refuse
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    sweep.runs.append({**entry, "run": None, "status": "failed", "reason": str(exc)})
                    continue
                store.update_run(path, sweep=sweep.id, trial=number, owner=sweep.owner)
                trials.start(path)
                live[number] = (trial, path, 0)
                sweep.runs.append({**entry, "run": path.name})
            for number, (trial, path, reported) in list(live.items()):
                entry = sweep.runs[number - 1]
                values = epoch_scores(path, sweep.objective)
                for epoch in range(reported + 1, len(values) + 1):
                    trial.report(values[epoch - 1], epoch)
                    if sweep.prune != "none" and trial.should_prune():
                        jobs.cancel(path)
                        entry["reason"] = (f"stopped early by the {sweep.prune} rule after epoch {epoch}: "
                                           f"{OBJECTIVES[sweep.objective][1]} {values[epoch - 1]:.4f} was among the "
                                           "worst at that epoch")
                live[number] = (trial, path, len(values))
                record = store.read_run(path)
                entry["status"] = record.effective_status
                if not trials.done(path) or record.effective_status in store.ACTIVE:
                    continue
                record = store.read_run(path)
                entry["status"], entry["score"] = record.effective_status, score(record, sweep.objective)
                if entry["reason"] and entry["status"] == "cancelled":
                    entry["status"] = "pruned"
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    del live[number]
                    continue
                if entry["status"] == "completed":
                    entry["reason"] = None      # finished before a stop asked after its last epoch reached it
                if entry["status"] == "completed" and entry["score"] is not None:
                    study.tell(trial, entry["score"])
                else:
                    entry["reason"] = entry["reason"] or record.error or f"the run ended {entry['status']}"
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                del live[number]
            save(sweep, root)
            if report:
                report(sweep)
            if not live and len(sweep.runs) >= sweep.trials:
                sweep.status = "completed"
                break
            time.sleep(POLL_S)
    except BaseException as exc:
        sweep.status, sweep.error = "failed", f"{type(exc).__name__}: {exc}"
        _stop(live, sweep, trials, timeout=10)
        raise
    finally:
        trials.close()
        save(sweep, root)
        stop_file.unlink(missing_ok=True)
    return sweep


