"""Progress as text, for the terminal and the dashboard alike: a one-line bar and durations."""
from __future__ import annotations

import math
import re
import sys
import time

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")   # what a terminal acts on, bar \t \n \r


class Inert:
    """A text stream that shows control characters as escapes (\\x1b) instead of passing them on: a file name
    from a zip can hold an escape sequence that retitles, clears or rewrites the terminal. Newlines, tabs and
    the progress bar's carriage return pass as they are."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(_CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text))

    def __getattr__(self, name):
        return getattr(self.stream, name)


def count(n: int, noun: str, plural: str | None = None) -> str:
    """n and its noun, singular for one: count(1, "epoch") is "1 epoch", count(1200, "image") "1,200 images",
    count(2, "class") "2 classes"; `plural` where adding s or es is wrong."""
    if n == 1:
        return f"1 {noun}"
    plural = plural or noun + ("es" if noun.endswith(("s", "x", "sh", "tch")) else "s")   # epochs, batches
    return f"{n:,} {plural}"


def fmt_duration(seconds: float | None) -> str:
    """0:42, 12:05, 1:02:03; '--:--' when unknown."""
    if seconds is None or not math.isfinite(float(seconds)):
        return "--:--"
    s = int(round(float(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """A one-line progress bar on stderr (a line per update when stderr is not a terminal)."""

    def __init__(self, stream=None, width: int = 24):
        stream = stream or sys.stderr          # the stderr of now, not of when this module was imported
        self.stream, self.width, self.tty = stream, width, stream.isatty()
        self.last_line = 0.0

    def __call__(self, done: int, total: int, text: str = "") -> None:
        frac = done / total if total else 0.0
        filled = int(round(frac * self.width))
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {frac:6.1%} {text}"
        if self.tty:
            self.stream.write("\r" + line[:160].ljust(100))
            if done >= total:
                self.stream.write("\n")
        elif time.monotonic() - self.last_line > 5 or done >= total:
            self.stream.write(line + "\n")
            self.last_line = time.monotonic()
        self.stream.flush()
