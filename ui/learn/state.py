"""Every session-state key and widget key of the Learn page, named once. The strings are what users'
sessions and the tests hold; a new key gets its name here."""
from __future__ import annotations

FLASH = "learn.flash"                # the message shown once after Run (nav.flash)
OPEN = "learn.open"                  # the lesson last run: it stays open once done, its result in view


def guess(lesson: str) -> str:
    """The learner's answer to a lesson's question, given before its experiments run."""
    return f"learn.guess.{lesson}"


def run(lesson: str) -> str:
    """A lesson's Run button."""
    return f"learn.run.{lesson}"

