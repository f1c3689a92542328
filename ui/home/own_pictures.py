"""Home's Your own pictures: add a dataset from an uploaded zip or a folder on the server, with a preview
before and after; rename and delete the added ones. The work is cnn_core.data.pictures'."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ui import nav, signin, views
from ui.home import state
from ui.own_data import TILE, progress_bar, server_folder, tile


def counts_frame(classes, counts: dict) -> pd.DataFrame:
    """One row per class: training and test pictures and their sum, with a total row."""
    rows = [{"class": c, "train": counts[c]["train"], "test": counts[c]["test"]} for c in classes]
    frame = pd.DataFrame(rows)
    frame["total"] = frame["train"] + frame["test"]
    total = {"class": "all", **{k: int(frame[k].sum()) for k in ("train", "test", "total")}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def strip(samples, side: int = TILE) -> np.ndarray:
    """Pictures (N, C, H, W) uint8 side by side, 2 px apart: an (side, N * (side + 2), 3) array."""
    out = np.full((side, len(samples) * (side + 2), 3), 255, dtype=np.uint8)
    for i, p in enumerate(samples):
        out[:, i * (side + 2):i * (side + 2) + side] = np.asarray(tile(p, side).convert("RGB"))
    return out


def show_report(report, classes, per_class=None, counts: dict | None = None) -> None:
    """Counts per class, sizes found, warnings, and a strip of sample pictures per class."""
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.dataframe(counts_frame(classes, counts or report.counts), hide_index=True, width="stretch")
        sizes = ", ".join(f"{size} ({n:,})" for size, n in report.sizes[:6])
        more = f" and {len(report.sizes) - 6} other sizes" if len(report.sizes) > 6 else ""
        st.caption(f"Sizes found: {sizes}{more}. {report.ignored:,} other files ignored.")
    with right:
        if per_class is not None:
            counts = counts or report.counts
            for c, samples in list(zip(classes, per_class))[:12]:
                n = min(len(samples), counts[c]["train"])
                if n:
                    st.image(strip(samples[:n]), caption=views.md(c))
            if len(classes) > 12:
                st.caption(f"… and {len(classes) - 12} more classes")
    for w in report.warnings:
        st.warning(views.md(w), icon=":material/warning:")   # it quotes file and class names


def _source_widgets():
    """The source chosen: (what read_source takes, its upload name, a signature that changes with it)."""
    how = st.segmented_control("Source", ["Upload a zip", "A folder on this machine"], default="Upload a zip",
                               key=state.OWN_HOW) or "Upload a zip"
    if how == "Upload a zip":
        up = st.file_uploader("A .zip of class folders", type=["zip"], key=state.OWN_ZIP,
                              help="cat/1.png, dog/2.jpg, … or train/<class>/… and test/<class>/…")
        if up is None:
            return None, None, None
        raw = up.getvalue()
        return raw, up.name, ("zip", up.name, len(raw), up.file_id)
    folder = server_folder("Folder on the server's disk", state.OWN_FOLDER, "pets")
    return (folder, None, ("folder", folder)) if folder else (None, None, None)


def _options_widgets():
    from cnn_core.data import pictures

    a, b, c = st.columns(3)
    name = a.text_input("Name", key=state.OWN_NAME, max_chars=40, placeholder="pets",
                        help="1-40 lowercase letters, digits, - and _. Runs and the CLI use it: train --dataset NAME")
    size = b.number_input("Size (px)", pictures.SIZES[0], pictures.SIZES[1], 32, step=8, key=state.OWN_SIZE,
                          help="Every picture is stored as a square this wide. 32 trains fast on a CPU.")
    channels = c.radio("Channels", [3, 1], format_func={3: "colour", 1: "grey"}.get, horizontal=True,
                       key=state.OWN_CHANNELS)
    d, e, f = st.columns(3)
    fit = d.selectbox("Fit", list(pictures.FITS), key=state.OWN_FIT, help="\n\n".join(
        f"**{k}**: {v}" for k, v in pictures.FITS.items()))
    val = e.slider("Validation share", 0.05, 0.5, 0.1, step=0.05, key=state.OWN_VAL,
                   help="Held out of training at training time to pick the best epoch.")
    test = f.slider("Test share", 0.05, 0.5, 0.1, step=0.05, key=state.OWN_TEST,
                    help="Split off for the final test. A source with train/ and test/ folders keeps its own.")
    return name.strip(), pictures.Options(int(size), int(channels), float(val), float(test), fit)


def add_panel() -> None:
    """Upload a zip or name a folder, set the size, channels, fit and shares, Preview, Add."""
    from cnn_core.data import guards, pictures
    from cnn_core.runs import owners

    st.caption("Put each class's pictures in a folder named after the class (cat/1.png, dog/2.jpg, …), or in "
               "train/<class>/ and test/<class>/ to keep your own split. PNG, JPEG, BMP, GIF and WebP; any size.")
    source, upload_name, signature = _source_widgets()
    name, options = _options_widgets()
    a, b = st.columns(2)
    preview = a.button("Preview", key=state.OWN_PREVIEW, icon=":material/visibility:", width="stretch",
                       disabled=source is None)
    add = b.button("Add dataset", key=state.OWN_ADD, type="primary", icon=":material/add:", width="stretch",
                   disabled=source is None)
    signature = (signature, tuple(vars(options).values()))
    kept = st.session_state.get(state.OWN_READ)
    if source is None:                     # a click that a disabled button should not have sent
        preview = add = False
    try:
        if (preview or add) and isinstance(source, str):
            source = str(guards.confine(source))       # the one message for any path outside the import folders
        if add:
            pictures.check_name(name, _data_dir())
        if (preview or add) and (kept is None or kept[0] != signature):
            kept = (signature, pictures.read_source(source, options, upload_name,
                                                     progress_bar("Reading the pictures…")))
            st.session_state[state.OWN_READ] = kept
        if add:
            info = owners.add_dataset(name, source, options, upload_name=upload_name, read=kept[1],
                                      by=signin.me())       # in class mode theirs, within their disk share
            st.session_state.pop(state.OWN_READ, None)
            nav.flash(state.FLASH, "success",
                      f"Added **{info.id}**: {views.md(kept[1].report.summary())}. Pick it on Train.")
            st.rerun()
    except ValueError as exc:     # pictures.Refused, unreadable sources, OverLimit: the reason, nothing written
        st.error(views.md(exc), icon=":material/error:")       # it quotes entry and folder names
        return
    if kept is not None and kept[0] == signature:
        found = kept[1]
        st.markdown(f"**Preview.** {views.md(found.report.summary())}")
        show_report(found.report, found.report.classes,
                    pictures.samples(found.train_x, found.train_y, len(found.report.classes)))


def _data_dir():
    from cnn_core.data import catalog

    return catalog.default_data_dir()


def added_list() -> None:
    """Each added dataset: its sizes and warnings, a look at its pictures, Rename and Delete."""
    from cnn_core.core import people
    from cnn_core.data import catalog, pictures
    from cnn_core.runs import owners

    me = signin.me()
    infos = owners.visible(pictures.added(), me)
    if not infos:
        st.caption("None yet: add one below.")
    for info in infos:
        own, status = info.own, catalog.dataset_status(info.id)
        with st.container(border=True):
            c, h, w = info.input_shape
            whose = "yours" if info.owner == people.owner_of(me) else f"by {views.whose(info.owner)}"
            st.markdown(f"**{info.id}** :violet-badge[{whose}] · {len(info.classes)} classes · "
                        f"{status.n_train:,} train · {status.n_test:,} test · {w}×{h} "
                        f"{'grey' if c == 1 else 'colour'}, {own['fit']}")
            st.caption(f"From {views.md(own['origin'])}"
                       + (f" · :orange[{len(own['warnings'])} warning(s)]" if own["warnings"] else ""))
            look, rename, delete = st.columns(3)
            with look.popover("Look", icon=":material/visibility:", width="stretch"):
                _look(info)
            if not people.may_change(info.owner, me):     # the teacher's (or a classmate's): to look at only
                continue
            with rename.popover("Rename", icon=":material/edit:", width="stretch"):
                new = st.text_input("New name", key=state.own_rename(info.id), max_chars=40)
                st.caption("Runs trained on it keep the old name: they open, but cannot read its test set.")
                if st.button("Rename", key=state.own_rename_button(info.id), disabled=not new.strip()):
                    _act(lambda: pictures.rename(info.id, new.strip(), by=me), f"Renamed {info.id} to {new.strip()}.")
            with delete.popover("Delete", icon=":material/delete:", width="stretch"):
                st.caption(f"This deletes the cached pictures of {info.id} ({status.n_train + status.n_test:,}); "
                           f"your originals ({views.md(own['origin'])}) are not touched.")
                if st.button("Delete for good", key=state.own_delete_button(info.id), type="primary"):
                    _act(lambda: pictures.delete(info.id, by=me), f"Deleted {info.id}.")


def _act(action, done: str) -> None:
    try:
        action()
        nav.flash(state.FLASH, "success", done)
    except ValueError as exc:
        nav.flash(state.FLASH, "error", views.md(exc))
    st.rerun()


def _look(info) -> None:
    from cnn_core.data import catalog, pictures

    report = pictures.report_of(info)
    try:
        raw = catalog.load_raw(info.id)
    except ValueError as exc:
        st.error(views.md(exc), icon=":material/error:")
        return
    show_report(report, report.classes, pictures.samples(raw.train_x, raw.train_y, len(info.classes)))
