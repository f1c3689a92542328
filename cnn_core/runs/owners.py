"""Runs and datasets by owner, in class mode (core/people.py): what a person may see, what they use of the
machine, and the limits checked before a run is made, launched or given more epochs, or a dataset or run is
added. Outside class mode (by=None) every check passes and every listing is whole."""
from __future__ import annotations

import os
from pathlib import Path

from cnn_core.core import people
from cnn_core.runs import store


def visible(records: list, by: people.Person | None) -> list:
    """The records of a listing (runs, sweeps, datasets: anything with an `owner`) `by` may open. An unreadable
    run (no owner to read) is for the administrator and teachers only."""
    if by is None or by.teacher:
        return list(records)
    return [r for r in records if not getattr(r, "corrupt", False) and people.may_see(getattr(r, "owner", None), by)]


def mine(records: list, by: people.Person | None) -> list:
    """The records `by` owns (the administrator: those without an owner)."""
    owner = people.owner_of(by)
    return [r for r in records if not getattr(r, "corrupt", False) and getattr(r, "owner", None) == owner]


def _folder_bytes(folder: Path) -> int:
    total = 0
    for base, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:          # removed while counted
                pass
    return total


def disk_used(owner: str | None, runs_dir: Path | None = None, data_dir: Path | None = None) -> int:
    """Bytes the owner's runs and added datasets take."""
    from cnn_core.data import pictures

    runs = sum(_folder_bytes(r.path) for r in store.readable(store.list_runs(runs_dir)) if r.owner == owner)
    data = 0
    for info in pictures.added(data_dir):
        if info.owner == owner:
            data += sum(f.stat().st_size for f in pictures.files_of(info.id, data_dir) if f.exists())
    return runs + data


def active(owner: str | None, runs_dir: Path | None = None, leave_out: str | None = None) -> list[store.Run]:
    """The owner's runs training or waiting now (but run `leave_out`)."""
    return [r for r in store.readable(store.list_runs(runs_dir))
            if r.owner == owner and r.id != leave_out and r.effective_status in store.ACTIVE]


def check_room(by: people.Person | None, runs_dir: Path | None = None, *, epochs: int | None = None,
               n_params: int | None = None, starting: str | None = "new", adding_bytes: int = 0,
               data_dir: Path | None = None, count: int = 1) -> None:
    """Raise people.OverLimit, naming the limit and the numbers, when what `by` is about to do passes one of
    their limits: a run of `epochs` epochs and `n_params` weights, starting (`starting`: "new" for a run about
    to be made, a run id for one about to be launched, None when none starts; `count` of them: a lesson's
    experiments), `adding_bytes` more on disk."""
    limits = by.limits if by is not None else None
    if limits is None:
        return
    if epochs is not None and epochs > limits.max_epochs:
        raise people.OverLimit(f"This run asks for {epochs:,} epochs; the class allows at most {limits.max_epochs:,} "
                               "per run (max_epochs). Ask your teacher for more, or train fewer.")
    if n_params is not None and n_params > limits.max_params:
        raise people.OverLimit(f"This model has {n_params:,} weights; the class allows at most {limits.max_params:,} "
                               "per model (max_params). Make it narrower or shallower.")
    if starting is not None and len(busy := active(by.email, runs_dir, leave_out=starting)) + count > limits.max_runs:
        more = f"; these {count} more would pass" if count > 1 else ","
        raise people.OverLimit(f"You have {len(busy)} {'run' if len(busy) == 1 else 'runs'} training or waiting{more} "
                               f"the most the class allows each learner (max_runs = {limits.max_runs}): wait for "
                               "one to finish, or stop one.")
    used = disk_used(by.email, runs_dir, data_dir)
    if used + adding_bytes > limits.max_disk_mb * 1_000_000:
        raise people.OverLimit(f"Your runs and datasets take {used / 1e6:,.0f} MB"
                               + (f" (and this adds {adding_bytes / 1e6:,.0f} MB)" if adding_bytes else "")
                               + f"; the class allows {limits.max_disk_mb:,} MB each (max_disk_mb). Delete a run "
                               "or a dataset you no longer need.")


def add_dataset(name: str, source, options=None, data_dir=None, upload_name: str | None = None, progress=None,
                read=None, by: people.Person | None = None, runs_dir: Path | None = None):
    """pictures.add, with `by`'s disk share checked first (the pictures read, if `read` is not given, to know
    their size): the dataset is theirs. Its DatasetInfo."""
    from cnn_core.data import pictures

    if by is not None and by.limits is not None:
        read = read or pictures.read_source(source, options, upload_name, progress)
        check_room(by, runs_dir, starting=None, adding_bytes=pictures.size_of(read), data_dir=data_dir)
    return pictures.add(name, source, options, data_dir, upload_name, progress, read, by=by)
