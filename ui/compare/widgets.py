"""Streamlit pieces of the Compare page: the runs table with its filters and selection, and the per-run
actions. Data comes from cnn_core.analysis.compare / cnn_core.runs.archive; figures from ui/figures."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from cnn_core.analysis import compare
from cnn_core.core import people
from cnn_core.export import formats
from cnn_core.runs import archive, store
from cnn_core.train import jobs
from ui import nav, own_data, signin, views
from ui.compare import state

_PCT = st.column_config.NumberColumn(format="percent")
TABLE_CONFIG = {
    "name": st.column_config.TextColumn("name", width="medium", pinned=True),   # stays while scrolling sideways
    "arch_params": st.column_config.TextColumn("arch params"),
    "lr": st.column_config.NumberColumn("lr", format="%g"),
    "batch_size": st.column_config.NumberColumn("batch"),
    "weight_decay": st.column_config.NumberColumn("weight decay", format="%g"),
    "params": st.column_config.NumberColumn("parameters", format="localized"),
    "epochs": st.column_config.NumberColumn("epochs", help="finished epochs"),
    "best_val_acc": st.column_config.NumberColumn("best val acc", format="percent"),
    "final_val_acc": st.column_config.NumberColumn("final val acc", format="percent"),
    "test_acc": st.column_config.NumberColumn("test acc", format="percent", help="best-validation weights"),
    "wall_time": st.column_config.NumberColumn("wall time (s)", format="%.1f"),
    "images_per_sec": st.column_config.NumberColumn("images/s", format="%.0f"),
}


# ---- table and selection ------------------------------------------------------------------------
def filters(table: pd.DataFrame) -> pd.DataFrame:
    """Three multiselects (dataset, architecture, status) over the table; returns the rows kept."""
    cols = st.columns(3)
    chosen = [col.multiselect(title, sorted(table[column].dropna().unique()), key=state.filter_by(column),
                              placeholder="all")
              for col, title, column in zip(cols, ("Dataset", "Architecture", "Status"),
                                            ("dataset", "arch", "status"))]
    return compare.filter_table(table, *chosen)


def runs_table(shown: pd.DataFrame, all_ids: list[str], labels: dict[str, str]) -> list[str]:
    """The sortable table (tick rows to compare) and the 'Runs to compare' multiselect; the ids picked."""
    event = st.dataframe(shown.assign(created=shown["created"].map(views.fmt_created)), hide_index=True,
                         key=state.table(tuple(shown["id"])), on_select="rerun", selection_mode="multi-row",
                         column_order=[c for c in shown.columns if c != "id"], column_config=TABLE_CONFIG)
    ticked = [shown.iloc[i]["id"] for i in event.selection.rows if i < len(shown)]
    if ticked and ticked != st.session_state.get(state.TICKED):
        st.session_state[state.PICK] = ticked
    st.session_state[state.TICKED] = ticked
    if state.PICK not in st.session_state and (asked := st.query_params.get("runs")):
        st.session_state[state.PICK] = asked.split(",")     # a link's runs (Learn: a lesson's); unknown ids go
    st.session_state[state.PICK] = [i for i in st.session_state.get(state.PICK, []) if i in all_ids]
    return st.multiselect("Runs to compare", all_ids, key=state.PICK, format_func=lambda i: labels.get(i, i),
                          placeholder="tick rows in the table, or choose runs here")


# ---- actions on one run -------------------------------------------------------------------------
def _rename(path: Path, key: str) -> None:
    try:
        renamed = store.rename_run(path, st.session_state[key], by=signin.me())
        st.session_state[state.PICKED] = path.name   # the picker shows the new name
        nav.flash(state.FLASH, "success", f"Renamed to '{views.md(renamed.name)}'.")
    except ValueError as exc:
        nav.flash(state.FLASH, "error", views.md(exc))


def _save_note(path: Path, key: str) -> None:
    try:
        store.set_note(path, st.session_state[key], by=signin.me())
        nav.flash(state.FLASH, "success", "Note saved.")
    except ValueError as exc:
        nav.flash(state.FLASH, "error", views.md(exc))


def _delete(path: Path, name: str) -> None:
    st.session_state.pop(state.CONFIRM, None)
    try:
        was = jobs.delete_run(path, by=signin.me())
        stopped = " (it was stopped first)" if was in store.ACTIVE else ""
        nav.flash(state.FLASH, "success", f"Deleted run '{views.md(name)}'{stopped}.")
        st.session_state[state.PICK] = [i for i in st.session_state.get(state.PICK, []) if i != path.name]
        st.session_state.pop(state.PICKED, None)
    except ValueError as exc:
        nav.flash(state.FLASH, "error", views.md(exc))


def edit_run(record: store.Run | store.UnreadableRun) -> None:
    """Rename, note, delete (with a confirmation); a run whose run.json cannot be read can only be deleted. In
    class mode only for whoever may change the run (its owner, a teacher): another's is named as theirs."""
    path, rid, name = Path(record.path), record.id, record.title
    if not record.corrupt and not people.may_change(record.owner, signin.me()):
        st.caption(views.looking_only(record.owner, "open"))
        if record.note:
            st.markdown(f"**Note:** {views.md(record.note)}")
        return
    if record.corrupt:
        st.error(f"Its run.json cannot be read ({views.md(record.error)}): it can only be deleted.")
    else:
        left, right = st.columns(2)
        left.text_input("Name", name, key=state.name(rid), max_chars=store.MAX_NAME)
        left.button("Rename", key=state.rename(rid), on_click=_rename, args=(path, state.name(rid)))
        right.text_area("Note", record.note or "", key=state.note(rid), height=80)
        right.button("Save note", key=state.save_note(rid), on_click=_save_note, args=(path, state.note(rid)))
    if st.session_state.get(state.CONFIRM) != rid:
        # one key for every run, and the run asked about is the one picked when the click arrives: a click
        # on the button still drawn for the run picked before (the page had not redrawn yet) asked about that one
        st.button("Delete run…", key=state.DELETE, icon=":material/delete:",
                  on_click=lambda: st.session_state.update({state.CONFIRM: st.session_state.get(state.PICKED, rid)}))
        return
    live = record.effective_status in store.ACTIVE
    st.warning(f"Delete '{views.md(name)}' and every file in its folder? This cannot be undone."
               + (" It is training now: it will be stopped first." if live else ""))
    yes, no = st.columns(2)
    yes.button("Yes, delete", key=state.delete_yes(rid), type="primary", on_click=_delete, args=(path, name))
    no.button("Cancel", key=state.delete_no(rid), on_click=lambda: st.session_state.pop(state.CONFIRM))


def take_away(record: store.Run) -> None:
    """Download best.pt and the zipped folder; export to ONNX and TorchScript, checked against PyTorch."""
    path, rid = Path(record.path), record.id
    best = path / store.BEST
    cols = st.columns(3)
    cols[0].download_button("Download best.pt", (lambda: best.read_bytes()) if best.is_file() else b"",
                            file_name=f"{rid}-best.pt", disabled=not best.is_file(), on_click="ignore",
                            key=state.download("best", rid), icon=":material/download:")
    cols[1].download_button("Download run folder (.zip)", lambda: archive.zip_run(path), file_name=f"{rid}.zip",
                            mime="application/zip", on_click="ignore", key=state.download("zip", rid),
                            icon=":material/folder_zip:")
    st.download_button("Download as a PyTorch script (.py)", lambda: _script(path), file_name=f"{rid}.py",
                       mime="text/x-python", on_click="ignore", key=state.download("script", rid),
                       disabled=not best.is_file(), icon=":material/code:",
                       help="One file of plain PyTorch (no cnn_core): the model written out layer by layer, the "
                            "data, split, augmentation, optimizer, schedule and loop. `python FILE.py --epochs 1 "
                            "--data-dir data` prints one JSON line per epoch; its head says what is exact.")
    why_not = ("the run has no best.pt yet" if not best.is_file() else None
               if people.may_change(record.owner, signin.me()) else   # an export is written into the run's folder
               "The exports are written into the run's folder: only its owner or a teacher exports it")
    if cols[2].button("Export ONNX, .pt2, TorchScript", key=state.export_button(rid), disabled=why_not is not None,
                      help=why_not or "ONNX (onnxruntime and other runtimes), torch.export's .pt2 (plain torch: "
                           "torch.export.load(path).module()), TorchScript (the old format, deprecated upstream); "
                           "each is loaded back and checked against the PyTorch model"):
        with st.spinner("Exporting and checking against PyTorch…"):
            try:
                st.session_state[state.export(rid)] = [formats.export_model(path, k, by=signin.me()) for k in formats.EXPORTS]
            except Exception as exc:  # noqa: BLE001  any exporter failure is shown, never a traceback
                st.error(f"Export failed: {type(exc).__name__}: {views.md(str(exc)[:500])}")
    for result in st.session_state.get(state.export(rid), []):
        (st.success if result.ok else st.error)(views.md(result.message))
        st.download_button(f"Download {result.path.name}", lambda p=result.path: p.read_bytes(),
                           file_name=result.path.name, on_click="ignore", key=state.download(result.kind, rid))


def import_panel() -> None:
    """Import a run folder or zip made on another machine; on success the page reruns to list it. A run
    that is already here is not added again unasked: import it as a copy, or skip it."""
    n = st.session_state.setdefault(state.IMPORT_N, 0)       # a new key empties the inputs
    upload = st.file_uploader("A run zipped on another machine", type=["zip"], key=state.upload(n))
    folder = own_data.server_folder("…or a run folder (or its zip) on the server's disk", state.import_path(n),
                                    "my-run")
    source = (lambda: upload.getvalue()) if upload else (lambda: _typed_run(folder))
    if st.button("Import", key=state.IMPORT, disabled=not (upload or folder)):
        _import(source, "ask")
    if (exists := st.session_state.get(state.IMPORT_EXISTS)) is not None:
        st.warning(f"{views.md(exists)}.", icon=":material/content_copy:")
        copy, skip = st.columns(2)
        if copy.button("Import as a copy", key=state.IMPORT_COPY):
            _import(source, "copy")
        if skip.button("Skip", key=state.IMPORT_SKIP):
            st.session_state.pop(state.IMPORT_EXISTS, None)
            st.session_state[state.IMPORT_N] = n + 1
            nav.flash(state.FLASH, "info", "Not imported: the run is already here.")
            st.rerun()


def _typed_run(folder: str) -> Path:
    """The folder typed in the import box, read only under the import folders (guards.confine's one message)."""
    from cnn_core.data import guards

    if not folder:
        raise ValueError("name a run folder, or upload its zip")
    return guards.confine(folder, "the run folder")


def _import(source, on_duplicate: str) -> None:
    st.session_state.pop(state.IMPORT_EXISTS, None)
    try:
        new = archive.import_run(source(), on_duplicate=on_duplicate, by=signin.me())      # the importer's
    except archive.RunExists as exc:
        st.session_state[state.IMPORT_EXISTS] = str(exc)[0].upper() + str(exc)[1:]
        return
    except ValueError as exc:
        st.error(f"Not imported: {views.md(exc)}")
        return
    st.session_state[state.IMPORT_N] += 1
    nav.flash(state.FLASH, "success", f"Imported as run `{new.name}` ({store.read_run(new).status}).")
    st.rerun()


def _script(path) -> str:
    from cnn_core.export import standalone

    try:
        return standalone.script(path)
    except (ValueError, OSError) as exc:        # shown as the file's only line rather than a traceback
        return f"# this run cannot be written out as a script: {exc}\n"
