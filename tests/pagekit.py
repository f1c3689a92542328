"""What page tests (AppTest) share: the text a person reads of an element. The pages pass text from elsewhere
(names, messages quoting them) through ui.views.md, which puts a backslash before punctuation; a reader sees
the characters without them."""
from __future__ import annotations

import re


def shown(text) -> str:
    """The text a reader sees of Markdown that views.md escaped (each backslash-escape read as its character)."""
    return re.sub(r"\\(.)", r"\1", str(text))


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
_PACKAGE = {"inspect": "inspector"}     # ui/inspector: a package named inspect would shadow the standard library


def page_file(name: str) -> str:
    """The file of the page `name` ("train" or "train.py"), for AppTest.from_file."""
    name = name.removesuffix(".py")
    return str(ROOT / "ui" / _PACKAGE.get(name, name) / "page.py")
