"""Checkpoints that describe themselves: written atomically, read with weights_only=True only.

best.pt / snapshots hold {"format", "model" (state_dict), "arch", "arch_params", "input_shape",
"num_classes", "classes", "mean", "std", "dataset", "epoch", "val_acc"}: enough to rebuild the
model and predict from the run folder alone. checkpoint.pt adds the optimizer, scheduler,
random-generator states and the position in the epoch, for an exact resume.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from cnn_core.core import faults
from cnn_core.core.files import atomic_write
from cnn_core.nets.architectures import build_model

MODEL_FORMAT = "cnn-dashboard-model/1"
_META_KEYS = ("arch", "arch_params", "input_shape", "num_classes", "classes", "mean", "std")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, hostile, or does not fit the model asked for."""


def save_atomic(obj: dict, path: Path) -> None:
    """torch.save through files.atomic_write: a crash or an error leaves the old file."""
    with atomic_write(path) as f:
        torch.save(obj, f)
        f.flush()
        faults.reached("checkpoint-write")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """torch.load(weights_only=True) with a clear CheckpointError for every way it can fail.
    A file that pickles code (any non-tensor object) is refused without running it."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); it was never fully written")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's text advises loading with weights_only=False: never shown. Only what it found is kept.
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found:   # a pickled function or class: unpickling it could run code
            raise CheckpointError(f"checkpoint {path} was refused: it contains objects other than tensors and "
                                  f"plain data, which could run code when loaded (it names {found.group(1)})") from None
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "weights_only" not in ln
                 and not ln.startswith(("Please file", "Check the documentation"))]
        detail = lines[-1].removeprefix("WeightsUnpickler error:").strip() if lines else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} is corrupt and cannot be read ({detail[:200]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt or truncated and cannot be read "
                              f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise CheckpointError(f"checkpoint {path} is not a cnn-dashboard checkpoint (no 'model' weights)")
    return obj


def model_meta(ckpt: dict) -> dict:
    """The metadata part of a model checkpoint; CheckpointError naming any missing key."""
    missing = [k for k in _META_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint lacks {', '.join(missing)}: it cannot rebuild its model")
    return {k: ckpt[k] for k in _META_KEYS + ("dataset", "epoch", "val_acc") if k in ckpt}


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the architecture the checkpoint names and load its weights (eval mode)."""
    meta = model_meta(ckpt)
    try:
        model = build_model(meta["arch"], tuple(meta["input_shape"]), int(meta["num_classes"]), meta["arch_params"])
    except (TypeError, ValueError) as exc:   # metadata of the wrong kind: a hand-made or foreign file
        raise CheckpointError(f"the checkpoint's description cannot rebuild a model ({str(exc)[:200]})") from None
    load_weights(model, ckpt["model"], what=f"{meta['arch']} with {meta['num_classes']} classes")
    return model.to(device).eval()


def load_weights(model: nn.Module, state: dict, what: str = "this model") -> None:
    """load_state_dict with a message that says which tensors do not fit, not a wall of keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
             for k in own if k in state and hasattr(state[k], "shape") and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} tensor(s) of another shape (e.g. {wrong[0]})")
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise CheckpointError(f"these weights do not fit {what}: " + "; ".join(parts) +
                              ". Was the checkpoint made for another architecture or class count?")
    model.load_state_dict(state)


def model_record(model: nn.Module, meta: dict, **extra) -> dict:
    """What best.pt and snapshots store: CPU weights plus the metadata to rebuild them."""
    state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    return {"format": MODEL_FORMAT, "model": state, **meta, **extra}
