"""Fault points for the reliability tests: $CNN_FAULT="kill@<point>:<n>" makes this process SIGKILL
itself the n-th time it reaches <point>, the moment where a real crash does the most harm:

    step             after an optimizer step, before anything about it is written
    checkpoint-write a checkpoint's temp file is written, not yet renamed over the old one
    metrics-append   half a metrics line is on disk, the rest not
    run-json-write   run.json's temp file is written, not yet renamed over the old one
    dataset-write    a dataset cache's images are on disk, its sidecar (what makes it ready) not yet

Unset (always, outside tests), `ACTIVE` is False and every hook is one attribute read.
"""
from __future__ import annotations

import os
import signal

ENV = "CNN_FAULT"
POINTS = ("step", "checkpoint-write", "metrics-append", "run-json-write", "dataset-write")


def _parse(spec: str | None) -> tuple[str, int] | None:
    if not spec:
        return None
    try:
        action, rest = spec.split("@", 1)
        point, n = rest.rsplit(":", 1)
        if action != "kill" or point not in POINTS or int(n) < 1:
            raise ValueError
        return point, int(n)
    except ValueError:
        raise ValueError(f"{ENV}={spec!r}: expected kill@<point>:<n>, point one of {', '.join(POINTS)}") from None


_TARGET = _parse(os.environ.get(ENV))
ACTIVE = _TARGET is not None
_seen: dict[str, int] = {}


def reached(point: str) -> None:
    """Count a pass through `point`; on the n-th pass of the configured point, die as kill -9 would."""
    if not ACTIVE:
        return
    _seen[point] = _seen.get(point, 0) + 1
    if _TARGET == (point, _seen[point]):
        os.kill(os.getpid(), signal.SIGKILL)
