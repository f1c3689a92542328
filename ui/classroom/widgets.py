"""Streamlit pieces of the Class page (the teacher's): who is training and the queue (redrawn every few
seconds), the leaderboard with its links to Compare, and everyone's runs with Stop and Delete. The numbers
come from cnn_core (analysis.compare.leaderboard, train.jobs.queue); every change goes through the library
with the teacher as `by=`, which checks it again."""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from cnn_core.analysis import compare
from cnn_core.core import people
from cnn_core.runs import store
from cnn_core.train import jobs
from ui import nav, views
from ui.classroom import state
from ui.compare.widgets import TABLE_CONFIG

REFRESH_S = 5                 # Who is training and the queue redraw this often
NO_OWNER = "—"                # a run made outside class mode (the administrator's) has no owner
_OWNER = st.column_config.TextColumn("owner", help="who made it; — : made outside class mode (the CLI, the "
                                                   "laptop dashboard)", pinned=True)
_PCT = st.column_config.NumberColumn(format="percent")


def _who(owner: str | None) -> str:
    return owner or NO_OWNER


# ---- who is training, the queue -----------------------------------------------------------------------------
@st.fragment(run_every=REFRESH_S)
def live(slots: int) -> None:
    """The runs training now and the runs waiting, in the order they will get a slot (`slots`: how many
    train at once)."""
    records = store.readable(store.list_runs())
    st.subheader("Who is training")
    _training(records, slots)
    st.subheader("The queue")
    _queue(jobs.queue(), {r.id: r for r in records})


def _training(records: list[store.Run], slots: int) -> None:
    now = [r for r in records if r.effective_status in ("running", "paused")]
    st.caption(f"{views.count(len(now), 'run')} training now, of at most {slots} at once.")
    if not now:
        return
    rows = [{"owner": _who(r.owner), "name": compare.short_name(r), "dataset": r.dataset,
             "done": _fraction(r.progress), "progress": views.progress_text(r.progress, r.world_size, r.hosts),
             "status": "paused" if r.effective_status == "paused" else "training"}
            for r in now]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"owner": _OWNER, "done": st.column_config.ProgressColumn(
                     "done", min_value=0.0, max_value=1.0, format="percent", help="steps done of all its steps")})


def _fraction(progress: dict) -> float:
    total = progress.get("total_steps") or 0
    return min(progress.get("step", 0) / total, 1.0) if total else 0.0


def _queue(line: list[dict], by_id: dict[str, store.Run]) -> None:
    st.caption("The queue takes turns between people: whoever has the fewest runs training or ahead in line goes "
               "next, so a learner who launches many runs does not hold the others back. Turn 1 is a person's "
               "first run in line while none of theirs trains; each run of theirs training or ahead adds a turn.")
    waiting = [q for q in line if not q["training"] and q["run"] in by_id]
    if not waiting:
        st.caption("No run is waiting for a slot.")
        return
    now = time.time()
    rows = []
    for place, q in enumerate(waiting, 1):
        r = by_id[q["run"]]
        rows.append({"place": place, "owner": _who(r.owner), "name": compare.short_name(r), "dataset": r.dataset,
                     "turn": q["turn"] + 1,
                     "waiting": views.fmt_duration(now - r.queued_at) if r.queued_at else views.fmt_duration(None)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"owner": _OWNER, "place": st.column_config.NumberColumn("place", help="1: next"),
                                "waiting": st.column_config.TextColumn("waiting for", help="minutes:seconds")})


# ---- the leaderboard ----------------------------------------------------------------------------------------
_BOARD_CONFIG = {**TABLE_CONFIG, "owner": _OWNER, "rank": st.column_config.NumberColumn("#", width="small"),
                 "runs": st.column_config.NumberColumn("runs", help="completed runs of theirs on this dataset"),
                 "epochs": st.column_config.NumberColumn("epochs", help="epochs it trained")}
_BOARD_ORDER = ["rank", "owner", "test_acc", "name", "arch", "epochs", "lr", "batch_size", "optimizer", "runs"]


def leaderboard(board: pd.DataFrame) -> None:
    """The leaderboard's rows (compare.leaderboard) of one dataset, best first: the dataset a selectbox, the one
    most people trained on first; ticked rows open in Compare, else the top three."""
    if board.empty:
        st.info("No finished run with a test accuracy yet: the leaderboard lists each person's best once their "
                "runs complete.")
        return
    sizes = board["dataset"].value_counts()
    datasets = sorted(sizes.index, key=lambda d: (-sizes[d], d))
    dataset = st.selectbox("Dataset", datasets, key=state.DATASET,
                           format_func=lambda d: f"{d} ({views.count(int(sizes[d]), 'person', 'people')})")
    rows = board[board["dataset"] == dataset].reset_index(drop=True)
    rows.insert(0, "rank", range(1, len(rows) + 1))
    event = st.dataframe(rows, hide_index=True, width="stretch", key=state.board(tuple(rows["run_id"])),
                         on_select="rerun", selection_mode="multi-row", column_order=_BOARD_ORDER,
                         column_config=_BOARD_CONFIG)
    ticked = [rows.iloc[i] for i in event.selection.rows if i < len(rows)]
    if len(ticked) == 1:
        row = ticked[0]
        nav.link("compare", f"Open {views.md(row['owner'])}'s best in Compare: {views.md(views.short(row['name']))}",
                 runs=[row["run_id"]])
    elif ticked:
        nav.link("compare", f"Open the {len(ticked)} ticked runs in Compare", runs=[r["run_id"] for r in ticked])
    else:
        top = list(rows["run_id"][:3])
        nav.link("compare", "Open the best run in Compare" if len(top) == 1 else f"Compare the top {len(top)}",
                 runs=top)
        st.caption("Tick rows to open those runs in Compare instead.")


# ---- everyone's runs ----------------------------------------------------------------------------------------
_RUNS_ORDER = ["owner", "name", "status", "dataset", "test_acc", "arch", "epochs", "created"]


def everyone(records: list, me: people.Person) -> None:
    """Every run with its owner (a filter by person), and Stop and Delete on the run picked."""
    nav.show_flash(state.FLASH)          # here, by the actions: what Stop and Delete said
    if not records:
        st.info("No runs yet.")
        return
    owner_of = {r.id: _who(getattr(r, "owner", None)) for r in records}
    table = compare.runs_table(records)
    table.insert(0, "owner", table["id"].map(owner_of))
    chosen = st.multiselect("People", sorted(set(owner_of.values())), key=state.OWNERS, placeholder="everyone")
    shown = table[table["owner"].isin(chosen)] if chosen else table
    st.caption(f"{len(shown)} of {views.count(len(table), 'run')} · click a column header to sort")
    st.dataframe(shown.assign(created=shown["created"].map(views.fmt_created)), hide_index=True, width="stretch",
                 column_order=_RUNS_ORDER, column_config={**TABLE_CONFIG, "owner": _OWNER})
    labels = {rid: f"{owner_of[rid]} · {name} · {status}"
              for rid, name, status in zip(shown["id"], shown["name"], shown["status"])}
    if not labels:
        return
    if st.session_state.get(state.PICKED) not in labels:
        st.session_state.pop(state.PICKED, None)
    rid = st.selectbox("Run", list(labels), key=state.PICKED, format_func=labels.get)
    record = next(r for r in records if r.id == rid)
    _actions(record, owner_of[rid], me)


def _actions(record, owner: str, me: people.Person) -> None:
    """Stop (a run training or waiting), Delete (with a confirmation), and where to look at it."""
    path, rid, name = Path(record.path), record.id, record.title
    live = record.effective_status in store.ACTIVE
    stop, delete, look = st.columns(3)
    stop.button("Stop", key=state.STOP, icon=":material/stop:", disabled=not live, on_click=_stop,
                args=(path, name, me), help="It saves a checkpoint and stops within a step; its owner can resume it"
                if live else f"It is {record.effective_status}, not training or waiting")
    if not record.corrupt:
        with look:
            if live:
                nav.link("train", "Watch on Train", run=rid)
            else:
                nav.link("compare", "Open in Compare", runs=[rid])
    if st.session_state.get(state.CONFIRM) != rid:
        # one key for every run, and the run asked about is the one picked when the click arrives (as Compare)
        delete.button("Delete run…", key=state.DELETE, icon=":material/delete:", on_click=_ask, args=(rid,))
        return
    st.warning(f"Delete {views.md(owner)}'s run '{views.md(name)}' and every file in its folder? This cannot be "
               "undone." + (" It is training now: it will be stopped first." if live else ""))
    yes, no = st.columns(2)
    yes.button("Yes, delete", key=state.delete_yes(rid), type="primary", on_click=_delete, args=(path, name, owner, me))
    no.button("Cancel", key=state.delete_no(rid), on_click=lambda: st.session_state.pop(state.CONFIRM, None))


def _ask(rid: str) -> None:
    st.session_state[state.CONFIRM] = st.session_state.get(state.PICKED, rid)


def _stop(path: Path, name: str, me: people.Person) -> None:
    try:
        was = jobs.cancel(path, by=me)
    except ValueError as exc:            # people.NotYours too: the library's word
        nav.flash(state.FLASH, "error", views.md(exc))
        return
    if was == "queued":
        nav.flash(state.FLASH, "info", f"Stop asked of '{views.md(name)}': it leaves the queue.")
    elif was in store.ACTIVE:
        nav.flash(state.FLASH, "info", f"Stop asked of '{views.md(name)}': it saves a checkpoint and stops "
                                       "within a step.")
    else:
        nav.flash(state.FLASH, "info", f"'{views.md(name)}' was not training ({was}): nothing to stop.")


def _delete(path: Path, name: str, owner: str, me: people.Person) -> None:
    st.session_state.pop(state.CONFIRM, None)
    try:
        was = jobs.delete_run(path, by=me)
    except ValueError as exc:
        nav.flash(state.FLASH, "error", views.md(exc))
        return
    stopped = " (it was stopped first)" if was in store.ACTIVE else ""
    nav.flash(state.FLASH, "success", f"Deleted {views.md(owner)}'s run '{views.md(name)}'{stopped}.")
    st.session_state.pop(state.PICKED, None)
