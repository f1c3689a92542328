"""Runs you can take away: a run folder as a zip, import of a folder or zip, ONNX / torch.export (.pt2) /
TorchScript export.

An import is checked before anything lands in the runs folder: a zip with entries outside its
run folder, absolute paths, links or special files, too many or too large files, or a run.json
that does not parse is refused with an ImportRefused (a ValueError) saying why. Checkpoints
must load with torch.load(weights_only=True). An imported run never arrives queued or running.
"""
from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, NamedTuple

from . import files, runs

MAX_IMPORT_BYTES = 2 * 2**30      # unpacked size of one imported run
MAX_IMPORT_FILES = 5000
MAX_RUN_JSON_BYTES = 10 * 2**20
EXPORT_TOLERANCE = 1e-4           # largest |logit difference| an export may show against PyTorch
EXPORT_DIR = "exports"
_SKIP = (runs.CANCEL,)            # never carried: a stale cancel request would stop a resumed run


class ImportRefused(ValueError):
    """A folder or zip that is not taken into the runs folder; the message says why."""


class RunExists(ImportRefused):
    """The run being imported is already in the runs folder (`existing`); import_run(on_duplicate="copy")
    takes it as a copy, on_duplicate="skip" leaves it."""

    def __init__(self, existing: Path, name: str):
        self.existing = existing
        super().__init__(f"run {existing.name} ('{name}') is already in the runs folder: import it again as a "
                         "copy, or skip it")


# ---- export a run folder as a zip ---------------------------------------------------------------
def _carried(path: Path) -> list[Path]:
    """The run's regular files worth carrying: no dotfiles (locks, temp files), links or exports."""
    out = []
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if (file.is_symlink() or not file.is_file() or any(p.startswith(".") for p in rel.parts)
                or rel.parts[0] == EXPORT_DIR or rel.name in _SKIP):
            continue
        out.append(file)
    return out


def zip_run(path: Path) -> bytes:
    """The run folder as zip bytes, entries under <run_id>/; .pt files stored, text deflated."""
    path = Path(path).resolve()
    runs.read_run(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for file in _carried(path):
            method = zipfile.ZIP_STORED if file.suffix == ".pt" else zipfile.ZIP_DEFLATED
            zf.write(file, f"{path.name}/{file.relative_to(path).as_posix()}", compress_type=method)
    return buffer.getvalue()


# ---- import -------------------------------------------------------------------------------------
def import_run(source: str | Path | bytes | BinaryIO, runs_dir: Path | None = None,
               on_duplicate: str = "ask") -> Path:
    """Take a run made elsewhere into the runs folder: `source` is a run folder, a .zip file, or
    zip bytes / a file object (an upload). Returns the new run folder. Raises ImportRefused.
    When the same run (its id, or the run it was imported from, and its creation time) is there
    already: on_duplicate "ask" raises RunExists, "copy" imports it under a new id and a name
    marked (copy), "skip" imports nothing and returns the run already there."""
    if on_duplicate not in ("ask", "copy", "skip"):
        raise ValueError(f"on_duplicate must be ask, copy or skip, got {on_duplicate!r}")
    root = Path(runs_dir or runs.default_runs_dir())
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".import-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            _copy_folder(Path(source), staging)
        else:
            _unpack_zip(_open_zip(source), staging)
        return _adopt(staging, root, on_duplicate)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _open_zip(source) -> zipfile.ZipFile:
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    elif isinstance(source, (str, Path)) and not Path(source).is_file():
        raise ImportRefused(f"{source} is neither a run folder nor a zip file")
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ImportRefused(f"not a zip file that can be read ({exc})") from None


def _entry_problem(info: zipfile.ZipInfo) -> str | None:
    """Why one zip entry cannot be unpacked safely, or None."""
    name = info.filename
    mode = info.external_attr >> 16
    if "\x00" in name or "\\" in name:
        return "has a name with a backslash or NUL character"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of its folder with '..'"
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is not a regular file or folder"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _run_prefix(names: list[str]) -> str:
    """'' when run.json is at the top of the zip, else '<folder>/' holding run.json; every entry must lie in it."""
    if runs.RUN_JSON in names:
        return ""
    tops = [n[:-len(runs.RUN_JSON)] for n in names
            if n.endswith("/" + runs.RUN_JSON) and n.count("/") == 1]
    if not tops:
        raise ImportRefused(f"the zip holds no run: no {runs.RUN_JSON} at its top or in one folder at its top")
    if len(tops) > 1:
        raise ImportRefused(f"the zip holds {len(tops)} runs ({', '.join(t[:-1] for t in tops[:3])}, ...); "
                            "import one run per zip")
    outside = [n for n in names if not n.startswith(tops[0])]
    if outside:
        raise ImportRefused(f"the zip has entries outside its run folder {tops[0]!r} (e.g. {outside[0]!r})")
    return tops[0]


def _unpack_zip(zf: zipfile.ZipFile, dest: Path) -> None:
    with zf:
        infos = zf.infolist()
        for info in infos:
            problem = _entry_problem(info)
            if problem:
                raise ImportRefused(f"refused: the zip entry {info.filename[:100]!r} {problem}")
        _check_size(len(infos), sum(i.file_size for i in infos))
        prefix = _run_prefix([i.filename for i in infos])
        written = 0
        for info in infos:
            rel = info.filename[len(prefix):]
            if info.is_dir() or not rel:
                continue
            target = (dest / rel).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise ImportRefused(f"refused: the zip entry {info.filename!r} points outside its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > MAX_IMPORT_BYTES:
                        raise ImportRefused(f"the zip unpacks to more than {MAX_IMPORT_BYTES / 2**30:.0f} GB")
                    out.write(chunk)


def _check_size(n_files: int, n_bytes: int) -> None:
    if n_files > MAX_IMPORT_FILES:
        raise ImportRefused(f"{n_files:,} files; a run is imported with at most {MAX_IMPORT_FILES:,}")
    if n_bytes > MAX_IMPORT_BYTES:
        raise ImportRefused(f"{n_bytes / 2**30:.1f} GB unpacked; the limit is {MAX_IMPORT_BYTES / 2**30:.0f} GB")


def _copy_folder(src: Path, dest: Path) -> None:
    src = Path(src)
    if src.is_symlink():
        raise ImportRefused(f"{src} is a symbolic link; name the run folder itself")
    if not (src / runs.RUN_JSON).is_file():
        raise ImportRefused(f"{src} holds no {runs.RUN_JSON}: it is not a run folder")
    files = []
    for item in src.rglob("*"):
        if item.is_symlink():
            raise ImportRefused(f"refused: {item.relative_to(src)} is a symbolic link")
        if item.is_file():
            files.append(item)
        elif not item.is_dir():
            raise ImportRefused(f"refused: {item.relative_to(src)} is not a regular file or folder")
    _check_size(len(files), sum(f.stat().st_size for f in files))
    for file in files:
        target = dest / file.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)


def _already_there(record: dict, root: Path) -> Path | None:
    """The run in the runs folder that `record` is a copy of: the same id, or imported from that id, and
    made at the same moment."""
    for r in runs.readable(runs.list_runs(root)):
        if r.created == record.created and record.id in (r.id, r.imported.get("from_id")):
            return r.path
    return None


def _adopt(staging: Path, root: Path, on_duplicate: str = "ask") -> Path:
    """Check the unpacked run, give it a free id, mark it not running, move it into the runs folder."""
    file = staging / runs.RUN_JSON
    if file.stat().st_size > MAX_RUN_JSON_BYTES:
        raise ImportRefused(f"its {runs.RUN_JSON} is larger than {MAX_RUN_JSON_BYTES // 2**20} MB")
    try:
        record = runs.read_run(staging)
    except ValueError as exc:
        raise ImportRefused(f"refused: {str(exc).replace(str(staging), '<run>')}") from None
    _check_checkpoints(staging)
    for junk in [p for p in staging.rglob("*") if p.name.startswith(".") or p.name in _SKIP]:
        shutil.rmtree(junk) if junk.is_dir() else junk.unlink()
    if (existing := _already_there(record, root)) is not None:
        if on_duplicate == "skip":
            return existing
        if on_duplicate == "ask":
            raise RunExists(existing, runs.read_run(existing).title)
        record.name = f"{record.title} (copy)"[:runs.MAX_NAME]
    original = record.id
    record.status = record.status if record.status in runs.FINISHED else "interrupted"   # never queued/running
    record.pid, record.imported = None, {"from_id": original, "from_host": record.host, "at": runs._now()}
    for _ in range(20):
        record.id = _free_id(original, root)
        files.write_json_atomic(file, record.to_dict())
        run_id = record.id
        try:
            os.rename(staging, root / run_id)   # fails when another import took the id meanwhile
            return root / run_id
        except OSError:
            continue
    raise ImportRefused("no free run id could be found for the import; try again")


def _free_id(original: str, root: Path) -> str:
    """The run's own id when free and valid, else that id with a fresh suffix."""
    try:
        runs.validate_run_id(original)
        if not (root / original).exists():
            return original
        base = original[:80]
    except ValueError:
        base = "imported"
    return f"{base}-imported-{secrets.token_hex(2)}"


def _check_checkpoints(folder: Path) -> None:
    """Every .pt file must load as plain tensors and data (weights_only); anything else is refused."""
    pts = sorted(folder.rglob("*.pt"))
    if not pts:
        return
    from .checkpoints import CheckpointError, load_checkpoint   # torch: only when there are checkpoints

    for pt in pts:
        try:
            load_checkpoint(pt)
        except CheckpointError as exc:
            raise ImportRefused(str(exc).replace(str(folder), "<run>")) from None


# ---- model export (the kinds: EXPORTS, at the end) -------------------------------------------------
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


def export_model(path: Path, kind: str, batch=None) -> ExportResult:
    """Export the run's best model to <run>/exports/ as ONNX, torch.export's .pt2 or TorchScript (the old
    format: deprecated upstream, kept while it loads), load the export back, and compare its logits with
    the PyTorch model's on `batch` (normalized (N, C, H, W) float32; default: up to 64 test images of the
    run's dataset when it is prepared here, else noise)."""
    import torch

    from .predict import load_model
    if kind not in EXPORTS:
        raise ValueError(f"export kind must be one of {', '.join(EXPORTS)}, got {kind!r}")
    path = Path(path).resolve()
    model, meta = load_model(path)
    described = f"{len(batch)} given images" if batch is not None else ""
    if batch is None:
        batch, described = _check_batch(meta)
    folder = path / EXPORT_DIR
    folder.mkdir(exist_ok=True)
    out = folder / f"{path.name}.{EXPORTS[kind].suffix}"
    tmp = files.temp_path(out)
    example = batch[:2]
    with torch.no_grad():
        expected = model(batch)                                              # (N, classes)
        try:
            got = EXPORTS[kind].run(model, example, batch, tmp)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    diff = float((got - expected).abs().max())
    same = bool((got.argmax(1) == expected.argmax(1)).all())
    return ExportResult(kind, out, described, diff, same)


def _check_batch(meta: dict, n: int = 64):
    """Test images of the run's dataset when prepared here, else seeded noise; normalized."""
    import torch

    from . import data
    try:
        if data.dataset_status(meta["dataset"]).state != "missing":
            images = data.load_raw(meta["dataset"]).test_x[:n]                # (n, C, H, W) uint8
            return data.normalize(images, meta["mean"], meta["std"]), f"{len(images)} test images of {meta['dataset']}"
    except (KeyError, ValueError, OSError):
        pass
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, *meta["input_shape"]), dtype=torch.uint8, generator=g)
    return data.normalize(images, meta["mean"], meta["std"]), f"{n} random-noise images"


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
