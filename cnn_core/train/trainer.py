"""One run's training loop: in-memory tensors, metrics and checkpoints to its folder, steering (a new
learning rate, pause), Stop, early stopping, divergence, exact resume; over one process or several."""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from cnn_core import recipe
from cnn_core.config import TrainConfig
from cnn_core.core import distributed, faults
from cnn_core.core.devices import Precision, precision, resolve_device
from cnn_core.core.progress import count
from cnn_core.data import catalog
from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, metrics_log, store
from cnn_core.train import gradients

HEARTBEAT_S = 1.0                 # run.json progress is rewritten at most this often
SNAPSHOT_CAP_BYTES = 64 * 2**20   # per-epoch weight snapshots stop once they would pass this
# An untrained K-class model starts near ln(K) nats of loss (2.30 for 10 classes). When the loss
# averaged over about the last 20 steps (an exponential moving average, weight LOSS_EMA per step) is
# DIVERGED_FACTOR times that (at least DIVERGED_FLOOR nats), the weights blew up: with lr 10, LeNet on
# MNIST averaged 68,909 over its first 20 steps, then sat at 2.30 (a dead net) and would have
# "completed" at chance accuracy. The average, not one batch: a lone batch of loss 30 in a run that
# recovers is a spike to see in the chart, not a reason to stop.
DIVERGED_FACTOR = 5.0
DIVERGED_FLOOR = 5.0
LOSS_EMA = 0.95
PAUSE_POLL_S = 0.25               # a paused run looks for continue (or cancel) this often
CANCEL_EVERY = 10                 # with several processes, rank 0's cancel file is shared every this many steps


class Cancelled(Exception):
    """The user asked the run to stop; a checkpoint was saved."""


class TrainingFailed(Exception):
    """Training cannot go on (non-finite loss, ...); the message is for the user."""


class Trainer:
    """One run: built from its run folder, trained by fit(); every state lives in self.

    Over several processes (torchrun; distributed.current().active) every process builds the same Trainer
    and trains the same model, wrapped in DistributedDataParallel: each takes its contiguous part of every
    global batch (batch_size is the global batch; every process draws the same permutation and the same
    augmentation of the whole batch, so a resume with another number of processes goes on exactly), the
    gradients are averaged by DDP, logged sums are added over the processes. Rank 0 alone reads and writes
    the run folder and evaluates; the others get the run record and checkpoint from it (`record`, `ckpt`)."""

    def __init__(self, path: Path, resume: bool = False,
                 on_progress: Callable[[dict], None] | None = None, record: store.Run | None = None,
                 ckpt: dict | None = None):
        self.path = Path(path)
        self.world = distributed.current()
        self.record = record if record is not None else store.read_run(self.path)
        self.config = TrainConfig.from_dict(self.record.config).check(check_data=False)
        self.settings = self.config.to_dict()            # the recipe's view of the config: plain values
        self.on_progress = on_progress
        c = self.config
        self.device = resolve_device(c.device)
        if self.world.active and self.device.type == "cuda":       # one GPU per process of this machine
            self.device = torch.device("cuda", torch.cuda.current_device())
        distributed.uses(self.device)
        # Decided once, when the run first starts; a resume, and every other process, keeps what it recorded.
        got = self.record.precision
        self.precision = (Precision(got["amp"], str(got.get("why", ""))) if isinstance(got.get("amp"), bool)
                          else precision(c.amp, self.device))
        self.record.precision = self.precision.to_dict()
        self.settings["amp"] = self.precision.bf16        # what the recipe reads: whether to autocast
        if why := distributed.batch_problem(c.batch_size, self.world.size):
            raise TrainingFailed(why)
        torch.manual_seed(c.seed)
        self.splits = catalog.load_splits(c.dataset, c.val_size, seed=c.seed).to(self.device)
        if c.batch_size > len(self.splits.train_x):
            raise TrainingFailed(f"batch size {c.batch_size} is larger than the "
                                 f"{len(self.splits.train_x)} training images")
        info = self.splits.info
        self.meta = {"arch": c.arch, "arch_params": self.record.arch_params,
                     "input_shape": list(info.input_shape), "num_classes": len(info.classes),
                     "classes": list(info.classes), "mean": list(self.splits.mean),
                     "std": list(self.splits.std), "dataset": c.dataset}
        self.model = build_model(c.arch, info.input_shape, len(info.classes), c.arch_params)
        recipe.init_weights(self.model, self.settings, self.splits.train_x)   # no random numbers; a resume loads over these
        self.model = self.model.to(self.device)
        if recipe.CHANNELS_LAST:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.model           # what trains: the model, or its DDP wrapper (fit(); the unwrapped one is saved)
        self.optimizer = recipe.make_optimizer(self.model.parameters(), self.settings)
        n = len(self.splits.train_x)
        full = math.ceil(n / c.batch_size)
        if self.world.active and 0 < n % c.batch_size < self.world.size:
            full -= 1                   # a last batch smaller than the processes would leave one without images
        self.steps_per_epoch = min(full, c.dry_run_batches) if c.dry_run_batches else full
        self.schedule = recipe.make_schedule(self.optimizer, self.settings, self.steps_per_epoch, c.epochs)
        self.loss_fn = recipe.make_loss(self.settings)
        self.shuffle_gen = torch.Generator().manual_seed(c.seed)
        self.aug_gen = torch.Generator().manual_seed(c.seed + 1)
        self.epoch, self.batch_pos, self.step = 0, 0, 0
        self.best_val_acc, self.best_epoch, self.elapsed_before = -1.0, 0, 0.0
        self.gain_acc, self.gain_epoch = -1.0, 0          # early stopping: the last epoch that counted as a gain
        self.stopped: dict | None = None                  # {"epoch", "reason"} once early stopping stopped it
        self.lr_scale = 1.0                               # steered: the base learning rate / config.lr
        self.last_ips = 0.0
        self.paused_since: float | None = None            # while paused: when (the clock that times it stops)
        self.epoch_gen_state = self.shuffle_gen.get_state()
        self.sums = self._zero_sums()
        self.loss_ema, self.loss_ema_n = torch.zeros((), device=self.device, dtype=torch.float64), 0
        self.snapshot_bytes = sum(p.numel() * p.element_size() for p in self.model.state_dict().values())
        self.resumed_from = None
        if resume:
            self.resumed_from = ckpt if ckpt is not None else checkpoints.load_checkpoint(
                self.path / store.CHECKPOINT, map_location="cpu")
            self._restore(self.resumed_from)

    # ---- state ----------------------------------------------------------------------------------
    def _zero_sums(self) -> dict:
        z = lambda: torch.zeros((), device=self.device, dtype=torch.float64)  # noqa: E731
        return {"loss": z(), "correct": z(), "seen": 0, "w_loss": z(), "w_correct": z(), "w_seen": 0}

    def _state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "epoch": self.epoch, "batch_pos": self.batch_pos,
                "step": self.step, "epoch_gen_state": self.epoch_gen_state,
                "aug_gen_state": self.aug_gen.get_state(), "torch_rng_state": torch.get_rng_state(),
                "cuda_rng_state": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "sums": {k: (v.item() if torch.is_tensor(v) else v) for k, v in self.sums.items()},
                "best_val_acc": self.best_val_acc, "best_epoch": self.best_epoch,
                "gain": [self.gain_acc, self.gain_epoch], "lr_scale": self.lr_scale,
                "loss_ema": [self.loss_ema.item(), self.loss_ema_n],
                "elapsed": self._elapsed(), "config": self.config.to_dict(), **self.meta}

    def _restore(self, ckpt: dict) -> None:
        checkpoints.load_weights(self.model, ckpt["model"], what=f"this run's {self.config.arch}")
        self.optimizer.load_state_dict(ckpt["optimizer"])     # moves its tensors to the parameters' device
        self.schedule.load_state_dict(ckpt["schedule"])
        self.epoch, self.batch_pos, self.step = ckpt["epoch"], ckpt["batch_pos"], ckpt["step"]
        self.epoch_gen_state = ckpt["epoch_gen_state"]
        self.aug_gen.set_state(ckpt["aug_gen_state"])
        torch.set_rng_state(ckpt["torch_rng_state"])
        if self.device.type == "cuda" and ckpt.get("cuda_rng_state"):
            torch.cuda.set_rng_state_all(ckpt["cuda_rng_state"])
        self.sums = {k: (torch.tensor(v, device=self.device, dtype=torch.float64) if isinstance(v, float) else v)
                     for k, v in ckpt["sums"].items()}
        if not self.world.main:         # the checkpoint's sums are all processes' together: rank 0 carries them
            self.sums = self._zero_sums()
        self.best_val_acc, self.best_epoch = ckpt["best_val_acc"], ckpt["best_epoch"]
        self.gain_acc, self.gain_epoch = ckpt.get("gain", [self.best_val_acc, self.best_epoch])
        if ckpt.get("config", {}).get("epochs") != self.config.epochs:     # more epochs asked: patience anew
            self.gain_epoch = self.epoch
            if isinstance(self.schedule, torch.optim.lr_scheduler.OneCycleLR):   # stretched to the new length
                self.schedule.total_steps = self.steps_per_epoch * self.config.epochs
        self.lr_scale = float(ckpt.get("lr_scale", 1.0))    # the optimizer's saved rates already carry it
        ema, self.loss_ema_n = ckpt.get("loss_ema", [0.0, 0])     # absent from checkpoints made before it
        self.loss_ema = torch.tensor(float(ema), device=self.device, dtype=torch.float64)
        self.elapsed_before = ckpt["elapsed"]
        if self.world.main:
            metrics_log.truncate_metrics(self.path, self.step)

    def _now(self) -> float:
        """time.monotonic(), held at the moment the run paused while it is paused: a pause is neither training
        time nor speed (elapsed, images/s and the ETA stand still)."""
        return time.monotonic() if self.paused_since is None else self.paused_since

    def _elapsed(self) -> float:
        return self.elapsed_before + (self._now() - self.t_start if hasattr(self, "t_start") else 0.0)

    def save_checkpoint(self) -> None:
        if self.world.main:
            checkpoints.save_atomic(self._state(), self.path / store.CHECKPOINT)

    # ---- several processes ------------------------------------------------------------------------
    def _reduce(self, keys: tuple[str, ...]) -> None:
        """Add sums[keys] over the processes (every process then holds the totals) and average the loss
        average, so that every process takes the same decisions (divergence) from the same numbers."""
        if not self.world.active:
            return
        t = torch.stack([self.sums[k] if torch.is_tensor(self.sums[k]) else
                         torch.tensor(float(self.sums[k]), device=self.device, dtype=torch.float64) for k in keys]
                        + [self.loss_ema / self.world.size])
        distributed.sum_(t)
        for k, v in zip(keys, t):
            self.sums[k] = v if torch.is_tensor(self.sums[k]) else int(v.item())
        self.loss_ema.copy_(t[-1])

    def _cancel_requested(self, now: bool = False) -> bool:
        """Whether Stop was asked; over several processes rank 0's answer is shared every CANCEL_EVERY
        steps (or `now`: every process asks at once)."""
        if not self.world.active:
            return (self.path / store.CANCEL).exists()
        return (now or self.step % CANCEL_EVERY == 0) and distributed.any_(
            self.world.main and (self.path / store.CANCEL).exists(), self.device)

    # ---- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict | None:
        """Train the remaining epochs, evaluate on the test set, return the summary (None on a process
        other than rank 0, which neither evaluates nor writes)."""
        c, main = self.config, self.world.main
        if self.world.active:           # a collective: every process is here (rank 0's weights go to all)
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                               if self.device.type == "cuda" else None)
        self.t_start, self.last_beat = time.monotonic(), 0.0
        self.writer = metrics_log.MetricsWriter(self.path) if main else None
        if self.step == 0 and main:
            self._snapshot(0, None)
        try:
            while self.epoch < c.epochs and not self._early_stop():
                self._train_epoch()
                self.epoch, self.batch_pos = self.epoch + 1, 0
                self._end_epoch()
            return self._finish() if main else None
        finally:
            if self.writer:
                self.writer.close()

    def _train_epoch(self) -> None:
        c, s = self.config, self.splits
        self.model.train()
        self.shuffle_gen.set_state(self.epoch_gen_state)
        perm = torch.randperm(len(s.train_x), generator=self.shuffle_gen).to(self.device)   # (N,)
        self.epoch_t0, self.epoch_seen0 = time.monotonic(), self.sums["seen"]
        for b in range(self.batch_pos, self.steps_per_epoch):
            idx = perm[b * c.batch_size:(b + 1) * c.batch_size]
            x = recipe.augment_batch(s.train_x[idx], s.info.kind, c.augment, self.aug_gen, s.black)  # (B,C,H,W)
            y = s.train_y[idx]                                                              # (B,)
            weight = 1.0
            if self.world.active:                                      # this process's part of the batch
                part = distributed.shard(len(idx), self.world)
                x, y = x[part], y[part]                                                     # (B/W, ...)
                weight = len(y) * self.world.size / len(idx)   # DDP averages the gradients: each part by its share
            loss, logits = recipe.train_step(self.net, x, y, self.loss_fn, self.optimizer, self.schedule,
                                             self.settings, weight)
            faults.reached("step")
            recipe.scale_lr(self.optimizer, self.lr_scale)  # a steered run's base rate scales the schedule's
            self.step, self.batch_pos = self.step + 1, b + 1
            self._accumulate(loss, logits, y)
            if self.step % c.log_every == 0:
                self._log_step()
            if self.world.main and time.monotonic() - self.last_beat > HEARTBEAT_S:
                self._heartbeat()
            self._steer()
            if self._cancel_requested():
                self._stop_here()
        self.epoch_gen_state = self.shuffle_gen.get_state()

    def _stop_here(self) -> None:
        if self.world.active:   # the checkpoint holds every process's sums, carried by rank 0
            self._reduce(("loss", "correct", "seen"))
        self.save_checkpoint()
        raise Cancelled()

    # ---- steering (runs.steer: a new learning rate, pause and continue) ------------------------------
    def _request(self, now: bool = False) -> dict:
        """The steering request waiting for this run (taken: the file goes), {} when none. Over several
        processes rank 0 reads it and every process gets it, every CANCEL_EVERY steps (or `now`)."""
        if not (now or not self.world.active or self.step % CANCEL_EVERY == 0):
            return {}
        ask = store.take_steering(self.path) if self.world.main else {}
        if self.world.active:
            ask = distributed.broadcast(ask if self.world.main else None)
        return ask if isinstance(ask, dict) else {}

    def _steer(self, ask: dict | None = None) -> None:
        ask = self._request() if ask is None else ask
        lr = ask.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr <= 10:
            was = self.config.lr * self.lr_scale
            self.lr_scale = recipe.change_lr(self.optimizer, lr, self.config.lr, self.lr_scale)
            if self.writer:
                self.writer.log({"kind": "steer", "step": self.step, "epoch": self.epoch + 1, "lr": lr, "was": was,
                                 "rate": self.optimizer.param_groups[0]["lr"], "time": round(self._elapsed(), 3)})
            self._heartbeat()
        if ask.get("pause") is True:
            self._paused()

    def _paused(self) -> None:
        """Wait here, the model in memory and the slot held, until continued (pause false) or cancelled;
        a learning-rate change asked meanwhile takes effect on continuing. The checkpoint is saved first:
        a paused run killed resumes from here. Its clock stops meanwhile (_now)."""
        self.paused_since = time.monotonic()
        if self.world.active:
            self._reduce(("loss", "correct", "seen"))
            if not self.world.main:
                self.sums.update(loss=self.sums["loss"] * 0, correct=self.sums["correct"] * 0, seen=0)
        self.save_checkpoint()
        if self.world.main:
            self._heartbeat(status="paused")
            self.writer.log({"kind": "pause", "step": self.step, "epoch": self.epoch + 1,
                             "time": round(self._elapsed(), 3)})
        ask = {}
        while True:
            time.sleep(PAUSE_POLL_S)
            ask.update(self._request(now=True))         # a rate asked meanwhile waits for continue
            if self._cancel_requested(now=True):
                raise Cancelled()
            if self.world.main and time.monotonic() - self.last_beat > HEARTBEAT_S:
                self._heartbeat(status="paused")
            if ask.get("pause") is False:
                break
        paused = time.monotonic() - self.paused_since           # a pause is neither training time nor speed
        self.t_start += paused
        self.epoch_t0 += paused
        self.paused_since = None
        if self.world.main:
            self._heartbeat(status="running")
        self._steer({k: v for k, v in ask.items() if k != "pause"})

    def _accumulate(self, loss, logits, y) -> None:
        n = len(y)
        correct = (logits.argmax(1) == y).sum()
        self.loss_ema.mul_(LOSS_EMA).add_(loss, alpha=1 - LOSS_EMA)     # on the device: no sync per step
        self.loss_ema_n += 1
        for prefix in ("", "w_"):
            self.sums[prefix + "loss"] += loss * n
            self.sums[prefix + "correct"] += correct
            self.sums[prefix + "seen"] += n

    def _check_diverged(self) -> None:
        """TrainingFailed when the recent training loss (its moving average) is not finite or far above
        where an untrained model starts. Checked at every logged step and epoch end: a run that blows up
        stops within its first log_every steps, not at the end."""
        if not self.loss_ema_n:
            return
        value = self.loss_ema.item() / (1 - LOSS_EMA ** self.loss_ema_n)      # debiased: early steps count fully
        start = math.log(len(self.splits.info.classes))
        where = f"step {self.step} (epoch {self.epoch + 1})"
        if not math.isfinite(value):
            what = f"the training loss became {value} at {where}: the weights diverged."
        elif value > max(DIVERGED_FACTOR * start, DIVERGED_FLOOR):
            shown = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
            what = (f"the training loss diverged: averaged over the last steps it was {shown} at {where}, "
                    f"far above the {start:.2f} (ln {len(self.splits.info.classes)}) an untrained model starts "
                    "from, so the weights blew up.")
        else:
            return
        scale = recipe.INIT_SCALES.get(self.config.init, 1.0)
        if scale > 1:                                  # the start, not the rate: it began with huge logits
            raise TrainingFailed(f"{what} The weights started {scale:g} times PyTorch's own (init "
                                 f"{self.config.init}): start from init default, or add batch norm (it undoes a "
                                 "layer's scale); then start again.")
        lr = self.config.lr * self.lr_scale            # as steered, if it was
        raise TrainingFailed(f"{what} Lower the learning rate (it is {lr:g}; try {lr / 10:g}), or warm it up "
                             "(schedule onecycle), or add batch norm; then start again.")

    def _log_step(self) -> None:
        self._reduce(("w_loss", "w_correct", "w_seen"))
        seen = max(self.sums["w_seen"], 1)
        loss = self.sums["w_loss"].item() / seen
        self._check_diverged()
        if self.writer:
            self.writer.log({"kind": "step", "step": self.step, "epoch": self.epoch + 1,
                         "loss": loss, "acc": self.sums["w_correct"].item() / seen,
                         "lr": self.optimizer.param_groups[0]["lr"], "time": round(self._elapsed(), 3)})
        self.sums.update(w_loss=self.sums["w_loss"] * 0, w_correct=self.sums["w_correct"] * 0, w_seen=0)

    def _throughput(self, seen: int | None = None) -> float:
        """Images/s of the epoch in progress, all processes together (`seen` images this epoch; by default
        this process's count times the number of processes); between epochs, the last finished epoch's."""
        if seen is None:
            seen = (self.sums["seen"] - self.epoch_seen0) * self.world.size
        dt = self._now() - self.epoch_t0
        return seen / dt if seen > 0 and dt > 0 else self.last_ips

    def _progress(self) -> dict:
        total = self.steps_per_epoch * self.config.epochs
        ips = self._throughput() if hasattr(self, "epoch_t0") else 0.0
        left = (total - self.step) * self.config.batch_size / ips if ips > 0 else None
        return {"epoch": min(self.epoch + 1, self.config.epochs), "epochs": self.config.epochs,
                "step": self.step, "total_steps": total, "steps_per_epoch": self.steps_per_epoch,
                "images_per_sec": round(ips, 1), "elapsed": round(self._elapsed(), 1),
                "eta": round(left, 1) if left is not None else None,
                "lr": self.optimizer.param_groups[0]["lr"]}

    def _heartbeat(self, **extra) -> None:
        if not self.world.main:
            return
        progress = self._progress()
        store.update_run(self.path, progress=progress, heartbeat=time.time(), **extra)
        self.last_beat = time.monotonic()
        if self.on_progress:
            self.on_progress(progress)

    def _end_epoch(self) -> None:
        s, c = self.splits, self.config
        self.sums["new"] = self.sums["seen"] - self.epoch_seen0          # images this process saw this epoch
        self._reduce(("loss", "correct", "seen", "new"))
        seen = max(self.sums["seen"], 1)
        train_loss, train_acc = self.sums["loss"].item() / seen, self.sums["correct"].item() / seen
        self._check_diverged()
        ips = self.last_ips = self._throughput(self.sums.pop("new"))
        self.epoch_seen0 = 0   # sums are zeroed below: until the next epoch starts, last_ips stands
        if not self.world.main:         # rank 0 evaluates and writes; the others go on to the next epoch
            self.sums = self._zero_sums()
            return
        val_loss, val_acc = recipe.evaluate(self.model, s.val_x, s.val_y, amp=self.precision.bf16, mirror=c.tta)
        record = {"kind": "epoch", "step": self.step, "epoch": self.epoch, "train_loss": train_loss,
                  "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc,
                  "lr": self.optimizer.param_groups[0]["lr"], "images_per_sec": round(ips, 1),
                  "time": round(self._elapsed(), 3)}
        self.sums = self._zero_sums()
        # The epoch's line goes out before its checkpoint: a crash between the two replays the epoch
        # from the previous checkpoint (resume cuts the line again); the other order loses the line.
        self.writer.log(record)
        self.writer.log({"kind": "grads", "step": self.step, "epoch": self.epoch,
                         "layers": gradients.gradient_histograms(self.model)})
        if val_acc > self.gain_acc + c.min_gain:
            self.gain_acc, self.gain_epoch = val_acc, self.epoch
        if val_acc > self.best_val_acc:
            self.best_val_acc, self.best_epoch = val_acc, self.epoch
            checkpoints.save_atomic(checkpoints.model_record(self.model, self.meta, epoch=self.epoch,
                                                             val_acc=val_acc), self.path / store.BEST)
        self._snapshot(self.epoch, val_acc)
        self.save_checkpoint()
        self._heartbeat(summary={**self.record.summary, "best_epoch": self.best_epoch,
                                 "best_val_acc": self.best_val_acc, "last_val_acc": val_acc,
                                 "last_train_acc": train_acc, "epochs_done": self.epoch})

    def _early_stop(self) -> bool:
        """Patience epochs without a gain of min_gain in validation accuracy: the stop is logged (the chart
        marks it) and the run ends here; every process takes rank 0's decision."""
        c = self.config
        stop = bool(c.patience) and self.epoch < c.epochs and self.epoch - self.gain_epoch >= c.patience
        if self.world.active:
            stop = distributed.any_(self.world.main and stop, self.device)
        if stop and self.world.main:
            gain = f"gain of {c.min_gain:g}" if c.min_gain else "gain"
            self.stopped = {"epoch": self.epoch, "reason": (
                f"no {gain} in validation accuracy for {count(c.patience, 'epoch')} (the "
                f"last at epoch {self.gain_epoch}: "
                f"{self.gain_acc:.2%}); stopped after epoch {self.epoch} of {c.epochs}")}
            self.writer.log({"kind": "stop", "step": self.step, **self.stopped})
        return stop

    def _snapshot(self, epoch: int, val_acc: float | None) -> None:
        """Weights of epoch `epoch` (0 = before training) for Inspect, while under the size cap."""
        if self.snapshot_bytes * (self.config.epochs + 1) > SNAPSHOT_CAP_BYTES:
            return
        file = store.snapshot_file(self.path, epoch)
        file.parent.mkdir(exist_ok=True)
        checkpoints.save_atomic(checkpoints.model_record(self.model, self.meta, epoch=epoch, val_acc=val_acc), file)

    def _finish(self) -> dict:
        s, c = self.splits, self.config
        final_test_loss, final_test_acc = recipe.evaluate(self.model, s.test_x, s.test_y, amp=self.precision.bf16, mirror=c.tta)
        test_loss, test_acc = final_test_loss, final_test_acc
        if self.best_epoch != self.epoch:   # the best validation epoch was an earlier one: test its weights
            best = checkpoints.load_checkpoint(self.path / store.BEST, map_location=self.device)
            checkpoints.load_weights(self.model, best["model"])
            test_loss, test_acc = recipe.evaluate(self.model, s.test_x, s.test_y, amp=self.precision.bf16, mirror=c.tta)
        epochs = [r for r in metrics_log.read_metrics(self.path) if r["kind"] == "epoch"]
        summary = {"test_acc": test_acc, "test_loss": test_loss, "final_test_acc": final_test_acc,
                   "final_test_loss": final_test_loss, "best_epoch": self.best_epoch,
                   "best_val_acc": self.best_val_acc, "last_val_acc": epochs[-1]["val_acc"] if epochs else None,
                   "last_train_acc": epochs[-1]["train_acc"] if epochs else None, "epochs_done": self.epoch,
                   "wall_time": round(self._elapsed(), 2),
                   "images_per_sec": round(sum(r["images_per_sec"] for r in epochs) / max(len(epochs), 1), 1),
                   "n_train": len(s.train_x), "n_val": len(s.val_x), "n_test": len(s.test_x),
                   "chance_acc": float(torch.bincount(s.test_y).max()) / max(len(s.test_y), 1),
                   "data_subset": s.subset, "data_source": s.source,
                   **({"stopped_early": self.stopped["epoch"], "stop_reason": self.stopped["reason"]}
                      if self.stopped else {})}
        self.writer.log({"kind": "test", "step": self.step, "test_acc": test_acc, "test_loss": test_loss,
                         "final_test_acc": final_test_acc})
        return summary


def snapshot_budget_note(n_params: int, epochs: int) -> str | None:
    """Why a run saves no per-epoch snapshots, or None when it does."""
    size = n_params * 4 * (epochs + 1)
    if size <= SNAPSHOT_CAP_BYTES:
        return None
    return (f"per-epoch snapshots would take {size / 2**20:.0f} MB (cap {SNAPSHOT_CAP_BYTES / 2**20:.0f} MB); "
            "only the best and latest weights are kept")
