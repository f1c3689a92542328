"""Every session-state key and widget key of the Home page, named once: the datasets' Prepare buttons and
Your own pictures ("own.": the add panel, each added dataset's Rename and Delete). The strings are what
users' sessions and the tests hold; a new key gets its name here."""
from __future__ import annotations

FLASH = "home.flash"                 # the message shown once above the datasets (nav.flash)


def prepare(dataset: str) -> str:
    """A dataset card's Prepare button."""
    return f"home.prepare.{dataset}"


# ---- Your own pictures: the add panel -----------------------------------------------------------------------
OWN_HOW, OWN_ZIP, OWN_FOLDER = "own.how", "own.zip", "own.folder"      # the source: a zip or a folder
OWN_NAME, OWN_SIZE, OWN_CHANNELS, OWN_FIT = "own.name", "own.size", "own.channels", "own.fit"
OWN_VAL, OWN_TEST = "own.val", "own.test"                                # the validation and test shares
OWN_PREVIEW, OWN_ADD = "own.preview", "own.add"
OWN_READ = "own.read"                # (signature of source and options, the ImageSet read) kept for Add


# ---- Your own pictures: each added dataset ------------------------------------------------------------------
def own_rename(dataset: str) -> str:
    """The new-name box of an added dataset."""
    return f"own.rename.{dataset}"


def own_rename_button(dataset: str) -> str:
    return f"own.rename_btn.{dataset}"


def own_delete_button(dataset: str) -> str:
    return f"own.delete_btn.{dataset}"
