"""Runs you can take away: a run folder as a zip, and import of a folder or zip (model export: export/formats.py).

An import is checked before anything lands in the runs folder: a zip with entries outside its
run folder, absolute paths, links or special files, too many or too large files, or a run.json
that does not parse is refused with an ImportRefused (a ValueError) saying why. Checkpoints
must load with torch.load(weights_only=True). An imported run never arrives queued or running.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cnn_core.core import files, people
from cnn_core.data import guards
from cnn_core.runs import owners, store

MAX_IMPORT_BYTES = 2 * 2**30      # unpacked size of one imported run
MAX_IMPORT_FILES = 5000
MAX_RUN_JSON_BYTES = 10 * 2**20
_SKIP = (store.CANCEL,)            # never carried: a stale cancel request would stop a resumed run


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
                or rel.parts[0] == store.EXPORT_DIR or rel.name in _SKIP):
            continue
        out.append(file)
    return out


def zip_run(path: Path) -> bytes:
    """The run folder as zip bytes, entries under <run_id>/; .pt files stored, text deflated."""
    path = Path(path).resolve()
    store.read_run(path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for file in _carried(path):
            method = zipfile.ZIP_STORED if file.suffix == ".pt" else zipfile.ZIP_DEFLATED
            zf.write(file, f"{path.name}/{file.relative_to(path).as_posix()}", compress_type=method)
    return buffer.getvalue()


# ---- import -------------------------------------------------------------------------------------
def import_run(source: str | Path | bytes | BinaryIO, runs_dir: Path | None = None,
               on_duplicate: str = "ask", by=None) -> Path:
    """Take a run made elsewhere into the runs folder: `source` is a run folder, a .zip file, or
    zip bytes / a file object (an upload). Returns the new run folder. Raises ImportRefused.
    When the same run (its id, or the run it was imported from, and its creation time) is there
    already: on_duplicate "ask" raises RunExists, "copy" imports it under a new id and a name
    marked (copy), "skip" imports nothing and returns the run already there. by: the Person importing in class
    mode (core/people.py): the run becomes theirs whatever its run.json says, only their own runs count as
    the same run, and their disk share is checked (people.OverLimit)."""
    if on_duplicate not in ("ask", "copy", "skip"):
        raise ValueError(f"on_duplicate must be ask, copy or skip, got {on_duplicate!r}")
    root = Path(runs_dir or store.default_runs_dir())
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".import-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        if isinstance(source, (str, Path)) and Path(source).is_dir():
            _copy_folder(Path(source), staging)
        else:
            _unpack_zip(_open_zip(source), staging)
        owners.check_room(by, root, starting=None, adding_bytes=owners._folder_bytes(staging))
        return _adopt(staging, root, on_duplicate, owner=people.owner_of(by))
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
    if store.RUN_JSON in names:
        return ""
    tops = [n[:-len(store.RUN_JSON)] for n in names
            if n.endswith("/" + store.RUN_JSON) and n.count("/") == 1]
    if not tops:
        raise ImportRefused(f"the zip holds no run: no {store.RUN_JSON} at its top or in one folder at its top")
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
        _check_size(len(infos), sum(i.file_size for i in infos), dest.parent)
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


def _check_size(n_files: int, n_bytes: int, root: Path | None = None) -> None:
    """ImportRefused past the files and bytes of one run, or past the runs folder `root`'s disk budget
    (guards.RUNS_DISK) once the run is in."""
    if n_files > MAX_IMPORT_FILES:
        raise ImportRefused(f"{n_files:,} files; a run is imported with at most {MAX_IMPORT_FILES:,}")
    if n_bytes > MAX_IMPORT_BYTES:
        raise ImportRefused(f"{n_bytes / 2**30:.1f} GB unpacked; the limit is {MAX_IMPORT_BYTES / 2**30:.0f} GB")
    if root is not None and (why := guards.disk_problem("Importing this run", n_bytes, guards.folder_bytes(root),
                                                        "the runs folder", guards.RUNS_DISK,
                                                        "delete runs or raise the limit")):
        raise ImportRefused(why)


def _copy_folder(src: Path, dest: Path) -> None:
    src = Path(src)
    if src.is_symlink():
        raise ImportRefused(f"{src} is a symbolic link; name the run folder itself")
    if not (src / store.RUN_JSON).is_file():
        raise ImportRefused(f"{src} holds no {store.RUN_JSON}: it is not a run folder")
    files, n_bytes = [], 0
    for parent, dirs, names in os.walk(src):          # links are not followed: each is met, and refused
        for item in (Path(parent) / n for n in dirs + names):
            st = item.lstat()
            mode = st.st_mode
            if stat.S_ISLNK(mode):
                raise ImportRefused(f"refused: {item.relative_to(src)} is a symbolic link")
            if stat.S_ISREG(mode):
                files.append(item)
                n_bytes += st.st_size
            elif not stat.S_ISDIR(mode):               # a pipe, device or socket: never opened
                raise ImportRefused(f"refused: {item.relative_to(src)} is not a regular file or folder")
    _check_size(len(files), n_bytes, dest.parent)
    for file in files:
        target = dest / file.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with guards.open_regular(file, follow=False) as fin, open(target, "wb") as out:
                shutil.copyfileobj(fin, out)
        except ValueError:                             # swapped for a pipe or a link since it was listed
            raise ImportRefused(f"refused: {file.relative_to(src)} is not a regular file") from None


def _already_there(record: dict, root: Path, owner: str | None = None) -> Path | None:
    """The run of `owner` in the runs folder that `record` is a copy of: the same id, or imported from that
    id, and made at the same moment."""
    for r in store.readable(store.list_runs(root)):
        if r.owner == owner and r.created == record.created and record.id in (r.id, r.imported.get("from_id")):
            return r.path
    return None


def _adopt(staging: Path, root: Path, on_duplicate: str = "ask", owner: str | None = None) -> Path:
    """Check the unpacked run, give it a free id, mark it not running, move it into the runs folder.
    Its name is kept as a rename would keep it (runs.tidy_name: printable, one line, at most MAX_NAME)."""
    file = staging / store.RUN_JSON
    if file.stat().st_size > MAX_RUN_JSON_BYTES:
        raise ImportRefused(f"its {store.RUN_JSON} is larger than {MAX_RUN_JSON_BYTES // 2**20} MB")
    try:
        record = store.read_run(staging)
    except ValueError as exc:
        raise ImportRefused(f"refused: {str(exc).replace(str(staging), '<run>')}") from None
    record.name = store.tidy_name(record.name)
    _check_checkpoints(staging)
    for junk in [p for p in staging.rglob("*") if p.name.startswith(".") or p.name in _SKIP]:
        shutil.rmtree(junk) if junk.is_dir() else junk.unlink()
    record.owner = owner           # the importer's, never what the file claims
    if (existing := _already_there(record, root, owner)) is not None:
        if on_duplicate == "skip":
            return existing
        if on_duplicate == "ask":
            raise RunExists(existing, store.read_run(existing).title)
        record.name = f"{record.title} (copy)"[:store.MAX_NAME]
    original = record.id
    record.status = record.status if record.status in store.FINISHED else "interrupted"   # never queued/running
    record.pid, record.imported = None, {"from_id": original, "from_host": record.host, "at": store._now()}
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
        store.validate_run_id(original)
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
    from cnn_core.runs.checkpoints import (  # torch: only when there are checkpoints
        CheckpointError,
        load_checkpoint,
    )

    for pt in pts:
        try:
            load_checkpoint(pt)
        except CheckpointError as exc:
            raise ImportRefused(str(exc).replace(str(folder), "<run>")) from None
