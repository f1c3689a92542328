"""Atomic writers (cnn_core/core/files.py's atomic_write and every site that writes through it): a write that
fails mid-way leaves the old file and no temp file; a write that succeeds fsyncs the folder after the
rename, so the new name survives a power cut."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from cnn_core.core import files
from cnn_core.data import catalog
from cnn_core.export import formats
from cnn_core.runs import checkpoints, metrics_log, store

BUNDLED = Path(__file__).resolve().parent.parent / "models" / "mnist-bundled"


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).glob(".*.tmp"))


@pytest.fixture
def folder_syncs(monkeypatch) -> list[tuple[str, list[str]]]:
    """(folder, its file names at that moment) for every fsync of a folder. os.fsync is wrapped, the real
    one still called: nothing short of a power cut shows whether a rename reached the disk, so the test
    watches for the call that puts it there."""
    seen, real = [], os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            folder = os.readlink(f"/proc/self/fd/{fd}")
            seen.append((folder, sorted(os.listdir(folder))))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


def _write_json(folder: Path) -> Path:
    files.write_json_atomic(folder / "x.json", {"a": 1})
    return folder / "x.json"


def _checkpoint(folder: Path) -> Path:
    checkpoints.save_atomic({"w": torch.zeros(3)}, folder / "x.pt")
    return folder / "x.pt"


def _metrics(folder: Path) -> Path:
    lines = [{"kind": "step", "step": s, "loss": 1.0} for s in (1, 2, 3)]
    (folder / store.METRICS).write_text("".join(json.dumps(r) + "\n" for r in lines))
    metrics_log.truncate_metrics(folder, 2)
    return folder / store.METRICS


def _dataset_cache(folder: Path) -> Path:
    x, y = torch.zeros(4, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])
    catalog._write_cache(catalog.RawDataset("tiny", x, y, x, y, "made by a test"), folder, "test")
    return folder / "cache" / "tiny.json"


def _model_export(folder: Path) -> Path:
    run = folder / "runs" / BUNDLED.name
    shutil.copytree(BUNDLED, run)
    return formats.export_model(run, "torchscript", batch=torch.zeros(2, 1, 28, 28)).path


WRITERS = {"run.json": _write_json, "checkpoint": _checkpoint, "metrics cut back": _metrics,
           "dataset cache": _dataset_cache, "model export": _model_export}


@pytest.mark.filterwarnings("ignore:`torch.jit")
@pytest.mark.parametrize("writer", WRITERS.values(), ids=WRITERS.keys())
def test_every_atomic_writer_fsyncs_the_folder_after_the_rename(writer, tmp_path, folder_syncs):
    """The folder of the file written is fsynced once the file is there under its name, its temp gone."""
    target = writer(tmp_path)
    after = [names for folder, names in folder_syncs if Path(folder) == target.parent.resolve()]
    assert any(target.name in names and not any(n.endswith(".tmp") for n in names) for names in after), \
        folder_syncs


def _bad_json(path: Path) -> None:
    files.write_json_atomic(path, {"a": 1, "b": object()})     # json cannot write an object()


def _bad_checkpoint(path: Path) -> None:
    checkpoints.save_atomic({"w": torch.zeros(3), "f": lambda: 0}, path)     # pickle cannot write a lambda


@pytest.mark.parametrize("fail", [_bad_json, _bad_checkpoint], ids=["run.json", "checkpoint"])
def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp(fail, tmp_path):
    """The error comes through; the old file is as it was, and no temp file is left in the folder."""
    target = tmp_path / "x.data"
    target.write_bytes(b"the old contents")
    with pytest.raises(Exception):
        fail(target)
    assert target.read_bytes() == b"the old contents" and _temps(tmp_path) == []


def test_atomic_write_removes_its_temp_when_the_block_raises(tmp_path):
    """An exception inside the block: nothing replaced, no temp left, the exception comes through."""
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(KeyError, match="boom"):
        with files.atomic_write(target, "w") as f:
            f.write("half of the new")
            raise KeyError("boom")
    assert target.read_text() == "old" and _temps(tmp_path) == []


def test_atomic_write_writes_the_whole_file(tmp_path):
    """What the block wrote is the file, in text and binary modes."""
    with files.atomic_write(tmp_path / "a.txt", "w") as f:
        f.write("päivää\n")
    with files.atomic_write(tmp_path / "b.bin") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "päivää\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01" and _temps(tmp_path) == []
