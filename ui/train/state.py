"""Every session-state key and widget key of the Train page, named once: the New run form, the layer editor
("le."), the Sweep tab ("sweep.") and the live panel. The strings are what users' sessions and the tests
hold; a new key gets its name here."""
from __future__ import annotations

# ---- the New run form -----------------------------------------------------------------------------------
READY = "train.ready"                # the form's defaults are set (once per session)
FLASH = "train.flash"                # the message shown once on the New run and Live tabs (nav.flash)
SLIP_BLOCKS = "train.slip_blocks"    # the deep residual net's "n_blocks * [ResBlock(n)]" toggle
PRESET, PRESET_FLASH = "train.preset", "train.preset.flash"   # the preset picked (applied at once), its message
PRESET_APPLIED = "train.preset.applied"   # {"name", "dataset", "arch", "before": the form's values, "changed": fields}
PRESET_UNDO = "train.preset.undo"         # the Undo button: the form as it was before the preset
CLONE, CLONE_BTN, CLONE_FLASH = "train.clone", "train.clone_btn", "train.clone.flash"
LAUNCH, LAUNCH_BOTTOM = "train.launch", "train.launch_bottom"   # Launch above the form and below it
PROCESSES = "train.processes"        # how many processes train the run (torchrun)
MORE = "train.more"                  # the More settings expander (open or not): kept when its label's count changes


def field(name: str) -> str:
    """The widget of setting `name` (a TrainConfig field), and of the run name: field("name")."""
    return f"train.{name}"


def pkey(arch: str, name: str) -> str:
    """The widget of architecture `arch`'s knob `name` (each architecture keeps its own values)."""
    return f"train.p.{arch}.{name}"


# ---- the layer editor (architecture "custom") -------------------------------------------------------------
LAYERS = pkey("custom", "layers")    # the list of layers: the form reads it as the custom architecture's knob
LAYERS_FROM = LAYERS + ".from"       # the model the list was last loaded from
LE_UIDS, LE_LAST = "le.uids", "le.last"   # a stable widget key per row; the list as the editor last left it
LE_START, LE_LOAD, LE_DOWNLOAD = "le.start", "le.load", "le.download"
LE_ADD_TYPE, LE_ADD = "le.add_type", "le.add"
LE_OPEN = "le.open"                  # the uid of the row whose editor is open (one at a time), or None


def le_row(uid: str) -> str:
    """The bordered container of a layer's line (its words, up, down, edit) and, while open, its editor; the
    uid moves with the layer."""
    return f"le.row.{uid}"


def le_edit(uid: str) -> str:
    """A row's edit button: opens (or closes) its editor under its line, the layer's fields, its position,
    remove."""
    return f"le.edit.{uid}"


def le_type(uid: str) -> str:
    return f"le.{uid}.type"


def le_field(uid: str, kind: str, name: str) -> str:
    """The widget of field `name` (kernel, stride, ...) of a row's layer of type `kind`: a new type, new
    widgets (a linear layer's "out" is not a conv's), in the same row and open editor."""
    return f"le.{uid}.{kind}.{name}"


def le_up(uid: str) -> str:
    return f"le.up.{uid}"


def le_down(uid: str) -> str:
    return f"le.down.{uid}"


def le_pos(uid: str) -> str:
    """The "Move to position" picker of a row (1 to the number of layers)."""
    return f"le.pos.{uid}"


def le_del(uid: str) -> str:
    return f"le.del.{uid}"


# ---- the Sweep tab --------------------------------------------------------------------------------------
SWEEP_MODE, SWEEP_TRIALS, SWEEP_OBJECTIVE = "sweep.mode", "sweep.trials", "sweep.objective"
SWEEP_PRUNE, SWEEP_BACKEND, SWEEP_CLUSTER = "sweep.prune", "sweep.backend", "sweep.cluster"
SWEEP_LAUNCH, SWEEP_FLASH, SWEEP_PICK = "sweep.launch", "sweep.flash", "sweep.pick"


def sweep_rows(mode: str) -> str:
    """The table of swept fields of a space mode (Grid, Sample): each mode keeps its own rows."""
    return f"sweep.rows.{mode}"


def sweep_cancel(sweep_id: str) -> str:
    return f"sweep.cancel.{sweep_id}"


def sweep_resume(sweep_id: str) -> str:
    return f"sweep.resume.{sweep_id}"


# ---- the watched run and the tabs --------------------------------------------------------------------------
WATCH = "train.watch"                # the run-picker widget
WATCHING = "train.watching"          # the watched run, kept while the picker is off screen (other pages)
TAB = "train.tab"                    # the New run / Sweep / Live tabs
LAST_TAB = "train.last_tab"          # the tab last open, kept while the page is off screen

# ---- the live panel ---------------------------------------------------------------------------------------
SIGNATURE = "train.signature"        # what, when it changes, needs the whole page redrawn (live._signature)
CHARTS = "train.charts"              # the charts last drawn: {"key", "figures"}
CHARTS_FAST = "train.charts_fast"    # the charts redraw every 2 s (a run's first logged points), not every 8 s
TICK = "train.tick"                  # (LiveRun, runs in progress) the ticking panel last read: the controls draw them
SMOOTHING, LOG_SCALE = "train.smoothing", "train.loss_log"
CHART_LOSS, CHART_ACC, CHART_LR = "train.chart.loss", "train.chart.acc", "train.chart.lr"


def chart(metric: str) -> str:
    """The chart of a metric of metrics_log.CURVES without a chart of its own (beyond loss and accuracy)."""
    return f"train.chart.{metric}"
STOP, PAUSE, CONTINUE = "train.stop", "train.pause", "train.continue"
STEER_LR, STEER = "train.steer_lr", "train.steer"      # the new learning rate and its Set rate button
RESUME, RESTART = "train.resume", "train.restart"
MORE_N, MORE = "train.more_n", "train.more"            # how many epochs more, and Train more
STEER_NOTICE = "train.steer_notice"    # what was asked of the watched run from the live panel (views.steering_notice)
