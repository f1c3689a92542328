"""What page tests (AppTest) share: the text a person reads of an element. The pages pass text from elsewhere
(names, messages quoting them) through ui.views.md, which puts a backslash before punctuation; a reader sees
the characters without them."""
from __future__ import annotations

import re


def shown(text) -> str:
    """The text a reader sees of Markdown that views.md escaped (each backslash-escape read as its character)."""
    return re.sub(r"\\(.)", r"\1", str(text))
