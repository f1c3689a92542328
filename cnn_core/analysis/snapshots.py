"""Which weights of a run can be inspected: per-epoch snapshots (epoch 0 = before training), best, latest;
why a run has no snapshots; loading one set as a model. Reads the run folder only, no Streamlit."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from cnn_core.nets.architectures import build_model
from cnn_core.runs import checkpoints, store
from cnn_core.train import trainer


@dataclass(frozen=True)
class Weights:
    """One set of weights of a run that can be inspected."""

    key: str            # "epoch-003" | "best" | "latest"
    label: str          # what a person reads: "epoch 3", "best (epoch 2)", "latest checkpoint"
    file: Path
    epoch: int | None   # the epoch a snapshot was taken after (0 = before training); None otherwise

    @property
    def stamp(self) -> int:
        """The file's modification time in ns: part of a cache key, changes when the file is rewritten."""
        return self.file.stat().st_mtime_ns


def snapshot_epochs(path: Path) -> list[int]:
    """Epochs with a saved snapshot (snapshots/epoch-NNN.pt), ascending; 0 = before training."""
    folder = Path(path) / store.SNAPSHOTS
    if not folder.is_dir():
        return []
    found = []
    for f in folder.glob("epoch-*.pt"):
        digits = f.stem.removeprefix("epoch-")
        if digits.isdigit() and f.stat().st_size > 0:
            found.append(int(digits))
    return sorted(found)


def weights_choices(path: Path, record: dict | None = None) -> list[Weights]:
    """Every set of weights on disk: snapshots by epoch, then best, then the latest checkpoint.

    "latest" is offered while a run is not completed or saved no snapshots (otherwise it equals the
    last snapshot). Reads file names and sizes only."""
    path = Path(path)
    record = record if record is not None else store.read_run(path)
    summary = record.summary
    out = [Weights(f"epoch-{e:03d}", f"epoch {e}", store.snapshot_file(path, e), e)
           for e in snapshot_epochs(path)]
    if (path / store.BEST).is_file():
        best = summary.get("best_epoch")
        out.append(Weights("best", f"best (epoch {best})" if best else "best", path / store.BEST, None))
    if (path / store.CHECKPOINT).is_file() and (store.effective_status(record) != "completed" or len(out) <= 1):
        out.append(Weights("latest", "latest checkpoint", path / store.CHECKPOINT, None))
    return out


def snapshot_note(path: Path, record: dict | None = None) -> str | None:
    """Why the run has no per-epoch snapshots to scrub through, or None when it has some."""
    path = Path(path)
    if snapshot_epochs(path):
        return None
    record = record if record is not None else store.read_run(path)
    config = record.config
    try:
        model = build_model(record.arch, tuple(record.input_shape), len(record.classes),
                            record.arch_params)
    except (KeyError, TypeError, ValueError):
        model = None
    if model is not None:
        # The engine caps the bytes of the whole state dict (buffers too), in float32 here.
        values = sum(t.numel() * t.element_size() for t in model.state_dict().values()) // 4
        note = trainer.snapshot_budget_note(values, int(config.get("epochs", 1)))
        if note:
            return f"This run keeps no per-epoch snapshots: {note}."
    return ("This run has no per-epoch snapshots (it stopped before saving any, or they were deleted); "
            "only its best and latest weights can be inspected.")


def load_weights(weights: Weights, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The model these weights rebuild (eval mode) and its metadata; CheckpointError when unreadable."""
    ckpt = checkpoints.load_checkpoint(weights.file, map_location="cpu")
    model = checkpoints.model_from_checkpoint(ckpt, device)
    return model, checkpoints.model_meta(ckpt)
