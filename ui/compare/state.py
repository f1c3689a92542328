"""Every session-state key and widget key of the Compare page, named once: the runs table and its picks,
the curves and charts, Run actions (per run: each run keeps its own boxes), import, and the Sweeps section.
The strings are what users' sessions and the tests hold; a new key gets its name here."""
from __future__ import annotations

FLASH = "compare.flash"              # the message shown once under the title (nav.flash)

# ---- the runs table and what is picked --------------------------------------------------------------------
PICK = "compare.pick"                # the ids of the runs being compared (the multiselect's state)
TICKED = "compare.ticked"            # the rows ticked in the table at the last draw
PICKED = "compare.action_run"        # the id of the run that Run actions act on (its selectbox's state)


def filter_by(column: str) -> str:
    """The multiselect that filters the table on `column` (dataset, arch, status)."""
    return f"compare.filter.{column}"


def table(rows: tuple) -> str:
    """The table of these rows (their ids): new rows, a new key, so a fresh selection."""
    return "compare.table." + str(abs(hash(rows)))


# ---- curves and charts -------------------------------------------------------------------------------------
GRANULARITY, X = "compare.granularity", "compare.x"


def curve(metric: str) -> str:
    """The overlay chart of one metric of metrics_log.CURVES ("compare.loss", "compare.acc", ...)."""
    return f"compare.{metric}"
PC_DATASET, PARCOORDS = "compare.pc_dataset", "compare.parcoords"

# ---- Run actions ------------------------------------------------------------------------------------------
TABS = "compare.tabs"                # Rename, note, delete | Download and export
CONFIRM = "compare.confirm"          # the id of the run whose deletion is being asked about
DELETE = "compare.delete"            # one key for every run (ui/compare/widgets.py says why)


def name(rid: str) -> str:
    return f"compare.name.{rid}"


def rename(rid: str) -> str:
    return f"compare.rename.{rid}"


def note(rid: str) -> str:
    return f"compare.note.{rid}"


def save_note(rid: str) -> str:
    return f"compare.savenote.{rid}"


def delete_yes(rid: str) -> str:
    return f"compare.delete_yes.{rid}"


def delete_no(rid: str) -> str:
    return f"compare.delete_no.{rid}"


def download(what: str, rid: str) -> str:
    """A download button of run `rid`: best, zip, script, or an export's kind (onnx, pt2, torchscript)."""
    return f"compare.dl_{what}.{rid}"


def export(rid: str) -> str:
    """The export results of run `rid`, kept to offer their downloads."""
    return f"compare.export.{rid}"


def export_button(rid: str) -> str:
    return f"compare.export_btn.{rid}"


# ---- import a run --------------------------------------------------------------------------------------------
IMPORT_N = "compare.import_n"        # moved on to empty the inputs (a new key, a fresh widget)
IMPORT, IMPORT_COPY, IMPORT_SKIP = "compare.import", "compare.import_copy", "compare.import_skip"
IMPORT_EXISTS = "compare.import_exists"   # what import said of a run already here, while the choice is open


def upload(n: int) -> str:
    return f"compare.upload.{n}"


def import_path(n: int) -> str:
    return f"compare.import_path.{n}"


# ---- the Sweeps section ----------------------------------------------------------------------------------------
SWEEP = "compare.sweep"              # the sweep picker


def sweep_curve(metric: str) -> str:
    """A sweep's overlay chart of one metric of metrics_log.CURVES ("compare.sweep_loss", ...)."""
    return f"compare.sweep_{metric}"
SWEEP_PC, SWEEP_IMP, SWEEP_DELETE = "compare.sweep_pc", "compare.sweep_imp", "compare.sweep_delete"

# ---- Robustness: how hard each picked run is to fool ------------------------------------------------------------
ROBUST_GO = "compare.robust_go"          # the "Robustness curves" button
ROBUST = "compare.robust"                # the run ids whose curves were asked for: drawn (from the cache) while picked
ROBUST_CHART = "compare.robust_chart"    # the chart: accuracy against the budget, a line per run
