"""A run's best model exported as ONNX, torch.export's .pt2 or TorchScript (the old format) into
<run>/exports/, each loaded back and checked against the PyTorch model on one batch (the kinds: EXPORTS,
at the end)."""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

from cnn_core.core import files
from cnn_core.runs import store

EXPORT_TOLERANCE = 1e-4           # largest |logit difference| an export may show against PyTorch


@dataclass
class ExportResult:
    """An exported model file and how its outputs compared with the PyTorch model's on one batch."""
    kind: str               # "onnx" | "pt2" | "torchscript"
    path: Path
    batch: str              # what the check ran on, e.g. "64 test images of mnist"
    max_abs_diff: float     # largest |logit difference|
    same_classes: bool      # every image got the same predicted class
    tolerance: float = EXPORT_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.same_classes and self.max_abs_diff <= self.tolerance

    @property
    def message(self) -> str:
        verdict = "matches PyTorch" if self.ok else "DOES NOT match PyTorch"
        classes = "same predicted classes" if self.same_classes else "different predicted classes"
        title = EXPORTS[self.kind].title if self.kind in EXPORTS else self.kind
        return (f"{title} export {verdict} on {self.batch}: {classes}, largest logit difference "
                f"{self.max_abs_diff:.2e} (tolerance {self.tolerance:.0e})")


def export_model(path: Path, kind: str, batch=None, by=None) -> ExportResult:
    """Export the run's best model to <run>/exports/ as ONNX, torch.export's .pt2 or TorchScript (the old
    format: deprecated upstream, kept while it loads), load the export back, and compare its logits with
    the PyTorch model's on `batch` (normalized (N, C, H, W) float32; default: up to 64 test images of the
    run's dataset when it is prepared here, else noise). It writes into the run's folder: by, the Person in
    class mode, must be allowed to change the run (people.NotYours)."""
    import torch

    from cnn_core.analysis.predict import load_model
    if kind not in EXPORTS:
        raise ValueError(f"export kind must be one of {', '.join(EXPORTS)}, got {kind!r}")
    path = Path(path).resolve()
    store.check_change(path, by)
    model, meta = load_model(path)
    described = f"{len(batch)} given images" if batch is not None else ""
    if batch is None:
        batch, described = _check_batch(meta)
    folder = path / store.EXPORT_DIR
    folder.mkdir(exist_ok=True)
    out = folder / f"{path.name}.{EXPORTS[kind].suffix}"
    example = batch[:2]
    with torch.no_grad():
        expected = model(batch)                                              # (N, classes)
        with files.atomic_write(out, mode=None) as tmp:
            got = EXPORTS[kind].run(model, example, batch, tmp)
    diff = float((got - expected).abs().max())
    same = bool((got.argmax(1) == expected.argmax(1)).all())
    return ExportResult(kind, out, described, diff, same)


def _check_batch(meta: dict, n: int = 64):
    """Test images of the run's dataset when prepared here, else seeded noise; normalized."""
    import torch

    from cnn_core import recipe
    from cnn_core.data import catalog
    try:
        if catalog.dataset_status(meta["dataset"]).state != "missing":
            images = catalog.load_raw(meta["dataset"]).test_x[:n]                # (n, C, H, W) uint8
            return recipe.normalize(images, meta["mean"], meta["std"]), f"{len(images)} test images of {meta['dataset']}"
    except (KeyError, ValueError, OSError):
        pass
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, *meta["input_shape"]), dtype=torch.uint8, generator=g)
    return recipe.normalize(images, meta["mean"], meta["std"]), f"{n} random-noise images"


def _any_batch() -> tuple:
    """torch.export's dynamic shapes for the one input: any batch size (axis 0)."""
    import torch

    return ({0: torch.export.Dim("batch", min=1, max=65536)},)


def _onnx(model, example, batch, file: Path):
    """torch.onnx (dynamo) with a dynamic batch axis; the file is then run by onnxruntime."""

    import onnxruntime
    import torch
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["input"], output_names=["logits"],
                                    dynamic_shapes=_any_batch())
        program.save(str(file))
    session = onnxruntime.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": batch.numpy()})[0])


def _pt2(model, example, batch, file: Path):
    """torch.export: an ExportedProgram with a dynamic batch axis, saved as .pt2, loaded back with plain
    torch (torch.export.load(...).module()), run."""
    import torch

    program = torch.export.export(model.eval(), (example,), dynamic_shapes=_any_batch())
    torch.export.save(program, str(file))
    return torch.export.load(str(file)).module()(batch)


def _torchscript(model, example, batch, file: Path):
    """torch.jit.trace (deprecated upstream, still the TorchScript path), saved, loaded back, run."""

    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, example)
        torch.jit.save(traced, str(file))
        loaded = torch.jit.load(str(file), map_location="cpu")
    return loaded(batch)


class Exporter(NamedTuple):
    suffix: str             # the file's: <run>.<suffix>
    title: str
    run: Callable           # (model, example, batch, file) -> the export's logits on batch, loaded back


EXPORTS = {"onnx": Exporter("onnx", "ONNX", _onnx), "pt2": Exporter("pt2", "torch.export (.pt2)", _pt2),
           "torchscript": Exporter("torchscript.pt", "TorchScript (old format)", _torchscript)}
