"""Torch work that a page runs in the server process (an attack, a robustness curve, a lesson's measure), on
one torch thread; and such results kept when a progress bar drawn outside the work rules out st.cache_data.

The server's torch uses both cores (2 threads). For small work (one 28x28 picture, a few hundred) each op then
waits for the other core, and on a busy 2-core machine (a training run beside it, the usual case) that cost far
more than it gave, measured here: Draw's search for the smallest fooling change 3.5-16 s on 2 threads against
0.2-0.4 s on one; 100 test digits attacked (PGD, simple CNN) 13.4 s against 1.9 s; 200 (bundled deep CNN)
10 s against 4.7 s.

torch.set_num_threads sets the process's count (each thread keeps the count it started with): the lock keeps
two blocks from restoring each other's value, and the count restored is the one the first block found. A page
run whose first torch op falls inside a block (a fraction of a second) runs on one thread too."""
from __future__ import annotations

import contextlib
import threading

_LOCK = threading.Lock()
_DEFAULT: list[int] = []         # the server's own thread count, read by the first block


@contextlib.contextmanager
def one_thread():
    """Run the block's torch work on one thread (see the module's doc)."""
    import torch

    with _LOCK:
        if not _DEFAULT:
            _DEFAULT.append(torch.get_num_threads())
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(_DEFAULT[0])


# Results a page computed with a progress bar of its own (a robustness curve): kept per process by a key the
# caller names (its weights file and mtime, n, method). Not st.cache_data: it replays what a cached call drew,
# and a bar drawn outside the call and moved inside it raised CacheReplayClosureError on the second use.
_KEPT: dict[tuple, object] = {}
KEEP_AT_MOST = 64


def kept(key: tuple):
    """What keep() stored under `key`, or None."""
    return _KEPT.get(key)


def keep(key: tuple, value):
    """Store `value` under `key` (the oldest goes past KEEP_AT_MOST); returns it."""
    while len(_KEPT) >= KEEP_AT_MOST:
        _KEPT.pop(next(iter(_KEPT)), None)
    _KEPT[key] = value
    return value
