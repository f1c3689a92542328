"""Every session-state key and widget key of the Class page (the teacher's), named once: the leaderboard's
dataset and table, Everyone's runs (its filter, the run picked, Stop and Delete with its confirmation). The
strings are what users' sessions and the tests hold; a new key gets its name here."""
from __future__ import annotations

FLASH = "class.flash"                # the message shown once under the title (nav.flash)

# ---- the leaderboard ----------------------------------------------------------------------------------------
DATASET = "class.dataset"            # the dataset whose leaderboard is shown


def board(rows: tuple) -> str:
    """The leaderboard table of these rows (their run ids): new rows, a new key, so a fresh selection."""
    return "class.board." + str(abs(hash(rows)))


# ---- everyone's runs ----------------------------------------------------------------------------------------
OWNERS = "class.owners"              # the people whose runs are listed (empty: everyone)
PICKED = "class.run"                 # the id of the run that Stop and Delete act on (its selectbox's state)
STOP = "class.stop"
CONFIRM = "class.confirm"            # the id of the run whose deletion is being asked about
DELETE = "class.delete"              # one key for every run (ui/compare/widgets.py's edit_run says why)


def delete_yes(rid: str) -> str:
    return f"class.delete_yes.{rid}"


def delete_no(rid: str) -> str:
    return f"class.delete_no.{rid}"
