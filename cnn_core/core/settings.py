"""One spec per setting: its kind, range or choices, the words a person reads, where the form shows it.

A TrainConfig field and an architecture's knob (models.Param) are both a Setting. From it come the
validation message (`check`), the CLI flag (cli.py), the Train form's widget (ui/train_form.py) and
the value a widget can hold (`widget_value`, `kind_problem`). No torch here: the pages import it early.
"""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Callable

KINDS = ("int", "float", "bool", "choice", "text", "params", "layers")


def parse_value(text: str):
    """A value typed on a command line as JSON when it parses (numbers, true/false, null), else the text
    itself. Not argparse's type=: a bad value reaches TrainConfig.validate(), which says what is allowed."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Setting:
    name: str
    kind: str                        # one of KINDS; "params" is the architecture's own knobs (not a widget);
                                     # "layers" a layer list, drawn by the layer editor
    default: object = None
    low: float | None = None         # int, float: the allowed range (inclusive unless low_open / high_open)
    high: float | None = None
    choices: tuple | Callable[[], tuple] = ()   # choice: the values, or a function that lists them (registries)
    help: str = ""                   # one sentence a learner understands, with units and meaning
    label: str = ""                  # what the form calls it ("Learning rate"); the name when empty
    noun: str = ""                   # what a message calls it ("learning rate must be ..."); the name when empty
    unit: str = ""                   # "epochs", "images": said in the CLI's help
    low_open: bool = False
    high_open: bool = False
    optional: bool = False           # None is allowed and means "decided elsewhere" (val_size: the dataset's)
    section: str = ""                # the Train form's section that draws it; "" = no widget of its own
    step: float | None = None        # number widgets: the +/- step, and the display format
    fmt: str | None = None
    placeholder: str | None = None   # number widgets: shown when empty (an optional setting)
    when: tuple[str, object] | None = None   # the form enables it only while setting when[0] is when[1]
    checker: Callable[[object], str | None] | None = None   # a value's problem beyond kind and range

    @property
    def title(self) -> str:
        return self.label or self.name

    @property
    def what(self) -> str:
        return self.noun or self.name

    def options(self) -> tuple:
        return tuple(self.choices()) if callable(self.choices) else tuple(self.choices)

    # ---- checks -------------------------------------------------------------------------------
    def span(self) -> str:
        """The allowed range in words: 'between 1 and 1,000', 'in (0, 10]', 'at least 0'."""
        lo, hi = (None if x is None else _fmt(x, self.kind) for x in (self.low, self.high))
        if self.low_open or self.high_open:
            return f"in {'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"
        if hi is None:
            return f"at least {lo}"
        return f"between {lo} and {hi}" if lo is not None else f"at most {hi}"

    def kind_problem(self, value) -> str | None:
        """Why a widget of this setting cannot hold `value` (text for a number, an unknown choice), or None.
        A number of the right kind but out of range is fine here: `check` says what is wrong with it."""
        if value is None and self.optional:
            return None
        if self.kind == "bool":
            return None if isinstance(value, bool) else "is not true or false"
        if self.kind == "choice":
            opts = self.options()
            return None if _among(value, opts) else f"is not one of {', '.join(map(str, opts))}"
        if self.kind == "text":
            return None if isinstance(value, str) else "is not text"
        if self.kind in ("int", "float"):
            if not is_number(value):
                return "is not a number"
            if self.kind == "int" and isinstance(value, float) and not value.is_integer():
                return "is not a whole number"
        return None

    def check(self, value) -> str | None:
        """The message for a bad `value` ('learning rate must be in (0, 10], got 0'), or None when fine."""
        if value is None and self.optional:
            return None
        got = f"got {value!r}"
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"{self.what} must be true or false, {got}"
        if self.kind == "choice":
            if self.checker:
                return self.checker(value)
            opts = self.options()
            return None if _among(value, opts) else f"{self.what} must be one of {', '.join(map(str, opts))}; {got}"
        if self.kind == "text":
            if not isinstance(value, str):
                return f"{self.what} must be text, {got}"
            return self.checker(value) if self.checker else None
        if self.kind == "params":
            return None if isinstance(value, dict) else f"{self.name} must be an object of parameter values, {got}"
        if self.kind == "layers":           # a layer list (cnn_core.nets.layers); the checker says what is wrong
            return self.checker(value) if self.checker else None
        whole = self.kind == "int"
        if not (is_whole(value) if whole else is_number(value)):
            return f"{self.what} must be {'a whole number' if whole else 'a number'} {self.span()}, {got}"
        if not math.isfinite(value):
            return f"{self.what} must be a finite number, got {value}"
        low_ok = self.low is None or (value > self.low if self.low_open else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.high_open else value <= self.high)
        if not (low_ok and high_ok):
            return f"{self.what} must be {self.span()}, got {_fmt(value, self.kind)}"
        return self.checker(value) if self.checker else None

    # ---- values -------------------------------------------------------------------------------
    def widget_value(self, value):
        """`value` as this setting's widget holds it: 1 -> 1.0 for a float, 2.0 -> 2 for an int."""
        if self.kind == "float" and is_number(value):
            return float(value)
        if self.kind == "int" and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def coerce(self, value):
        """A checked value as the code uses it: 2.0 -> 2 for an int, the registry's own object for a choice."""
        if value is None:
            return None
        if self.kind == "int":
            return int(value)
        if self.kind == "float":
            return float(value)
        if self.kind == "choice" and not self.checker:
            return next(c for c in self.options() if c == value)
        if self.kind == "layers":           # a copy: the default list is shared
            return json.loads(json.dumps(value))
        return value


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_whole(value) -> bool:
    return is_number(value) and (isinstance(value, int) or (math.isfinite(value) and value.is_integer()))


def _among(value, options) -> bool:
    return not isinstance(value, bool) and any(value == o for o in options)


def _fmt(x, kind: str) -> str:
    if kind == "int" and is_whole(x):
        return f"{int(x):,}"
    return f"{x:g}" if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x)


# ---- dataclass fields described by a Setting ----------------------------------------------------
def setting(kind: str, default=MISSING, *, default_factory=MISSING, **spec):
    """A dataclass field whose Setting is in its metadata (the name is the field's own)."""
    shown = default_factory() if default_factory is not MISSING else default
    meta = {"setting": Setting("", kind, shown, **spec)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def specs(cls) -> dict[str, Setting]:
    """Every field of a dataclass that carries a Setting, by name, in declared order."""
    return {f.name: replace(f.metadata["setting"], name=f.name) for f in fields(cls) if "setting" in f.metadata}
