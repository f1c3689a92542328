"""Your own pictures on the dashboard: add a dataset from an uploaded zip or a folder on the server, with a
preview before and after (Home); rename and delete the added ones (Home); classify many pictures with a
trained run (Inspect and Draw). The work is cnn_core.data.pictures' and cnn_core.analysis.predict's."""
from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from ui import nav, views
from ui.figures import CONFIG, images

K = "own"                        # widget keys of the add panel: own.<what>
READ = f"{K}.read"               # (signature of source and options, the ImageSet read) kept for Add
TILE = 48                        # px of one sample picture in the previews and the classify-many table
THUMBS = 2_000                   # rows of the classify-many table that get a thumbnail (a data URL each)
PICTURES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]
FOLDERS_OFF = ("Reading folders on the server is off: this dashboard is served beyond this machine. Whoever runs "
               "it can set CNN_IMPORT_ROOTS to the folders it may read.")


# ---- pure helpers: frames and pictures -----------------------------------------------------------------

def counts_frame(classes, counts: dict) -> pd.DataFrame:
    """One row per class: training and test pictures and their sum, with a total row."""
    rows = [{"class": c, "train": counts[c]["train"], "test": counts[c]["test"]} for c in classes]
    frame = pd.DataFrame(rows)
    frame["total"] = frame["train"] + frame["test"]
    total = {"class": "all", **{k: int(frame[k].sum()) for k in ("train", "test", "total")}}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


def tile(image, side: int = TILE) -> Image.Image:
    """A (C, H, W) uint8 picture as a PIL image `side` px wide, sharp pixels."""
    a = np.asarray(image)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    return Image.fromarray(a).resize((side, side), Image.NEAREST)


def strip(samples, side: int = TILE) -> np.ndarray:
    """Pictures (N, C, H, W) uint8 side by side, 2 px apart: an (side, N * (side + 2), 3) array."""
    out = np.full((side, len(samples) * (side + 2), 3), 255, dtype=np.uint8)
    for i, p in enumerate(samples):
        out[:, i * (side + 2):i * (side + 2) + side] = np.asarray(tile(p, side).convert("RGB"))
    return out


def data_url(image, side: int = TILE) -> str:
    buf = io.BytesIO()
    tile(image, side).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def many_frame(result, k: int = 3, thumbs: int = THUMBS) -> pd.DataFrame:
    """The classify-many table: a thumbnail (the first `thumbs` rows), file, label, right or wrong, top k."""
    frame = pd.DataFrame(result.rows(k))
    frame.insert(0, "picture", [data_url(x) if i < thumbs else None for i, x in enumerate(result.images)])
    if frame["label"].isna().all():
        frame = frame.drop(columns=["label", "correct"])
    return frame


# ---- a path on the server's disk, typed in the browser ------------------------------------------------

def folders_off() -> bool:
    """Served beyond loopback with no CNN_IMPORT_ROOTS: the folder boxes are off (docs/SECURITY.md)."""
    from cnn_core.data import guards
    from ui import access

    return access.served_beyond_loopback() and not guards.roots_named()


def server_folder(label: str, key: str, placeholder: str) -> str:
    """A box for a path on the server's disk, '' when empty; while folders are off it is disabled, says why,
    and what it holds is never used. The path is read only through guards.confine (the import folders)."""
    from cnn_core.data import guards

    off = folders_off()
    where = ", ".join(str(r) for r in guards.import_roots()) if not off else ""
    text = st.text_input(label, key=key, placeholder=placeholder, disabled=off,
                         help=FOLDERS_OFF if off else f"On the machine that runs the dashboard, under {where} "
                         "(CNN_IMPORT_ROOTS names the folders it may read); a name alone is looked for there.")
    if off:
        st.caption(FOLDERS_OFF)
        return ""
    return text.strip()


# ---- Home: the datasets added, and adding one -------------------------------------------------------

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
                               key=f"{K}.how") or "Upload a zip"
    if how == "Upload a zip":
        up = st.file_uploader("A .zip of class folders", type=["zip"], key=f"{K}.zip",
                              help="cat/1.png, dog/2.jpg, … or train/<class>/… and test/<class>/…")
        if up is None:
            return None, None, None
        raw = up.getvalue()
        return raw, up.name, ("zip", up.name, len(raw), up.file_id)
    folder = server_folder("Folder on the server's disk", f"{K}.folder", "pets")
    return (folder, None, ("folder", folder)) if folder else (None, None, None)


def _options_widgets():
    from cnn_core.data import pictures

    a, b, c = st.columns(3)
    name = a.text_input("Name", key=f"{K}.name", max_chars=40, placeholder="pets",
                        help="1-40 lowercase letters, digits, - and _. Runs and the CLI use it: train --dataset NAME")
    size = b.number_input("Size (px)", pictures.SIZES[0], pictures.SIZES[1], 32, step=8, key=f"{K}.size",
                          help="Every picture is stored as a square this wide. 32 trains fast on a CPU.")
    channels = c.radio("Channels", [3, 1], format_func={3: "colour", 1: "grey"}.get, horizontal=True,
                       key=f"{K}.channels")
    d, e, f = st.columns(3)
    fit = d.selectbox("Fit", list(pictures.FITS), key=f"{K}.fit", help="\n\n".join(
        f"**{k}**: {v}" for k, v in pictures.FITS.items()))
    val = e.slider("Validation share", 0.05, 0.5, 0.1, step=0.05, key=f"{K}.val",
                   help="Held out of training at training time to pick the best epoch.")
    test = f.slider("Test share", 0.05, 0.5, 0.1, step=0.05, key=f"{K}.test",
                    help="Split off for the final test. A source with train/ and test/ folders keeps its own.")
    return name.strip(), pictures.Options(int(size), int(channels), float(val), float(test), fit)


def _progress_bar(text: str):
    bar = st.progress(0.0, text=text)
    return lambda done, total, msg: bar.progress(min(done / total, 1.0) if total else 0.0, text=msg)


def add_panel() -> None:
    """Upload a zip or name a folder, set the size, channels, fit and shares, Preview, Add."""
    from cnn_core.data import guards, pictures

    st.caption("Put each class's pictures in a folder named after the class (cat/1.png, dog/2.jpg, …), or in "
               "train/<class>/ and test/<class>/ to keep your own split. PNG, JPEG, BMP, GIF and WebP; any size.")
    source, upload_name, signature = _source_widgets()
    name, options = _options_widgets()
    a, b = st.columns(2)
    preview = a.button("Preview", key=f"{K}.preview", icon=":material/visibility:", width="stretch",
                       disabled=source is None)
    add = b.button("Add dataset", key=f"{K}.add", type="primary", icon=":material/add:", width="stretch",
                   disabled=source is None)
    signature = (signature, tuple(vars(options).values()))
    kept = st.session_state.get(READ)
    if source is None:                     # a click that a disabled button should not have sent
        preview = add = False
    try:
        if (preview or add) and isinstance(source, str):
            source = str(guards.confine(source))       # the one message for any path outside the import folders
        if add:
            pictures.check_name(name, _data_dir())
        if (preview or add) and (kept is None or kept[0] != signature):
            kept = (signature, pictures.read_source(source, options, upload_name,
                                                     _progress_bar("Reading the pictures…")))
            st.session_state[READ] = kept
        if add:
            info = pictures.add(name, source, options, upload_name=upload_name, read=kept[1])
            st.session_state.pop(READ, None)
            nav.flash("home", "success",
                      f"Added **{info.id}**: {views.md(kept[1].report.summary())}. Pick it on Train.")
            st.rerun()
    except ValueError as exc:              # pictures.Refused and unreadable sources: the reason, nothing written
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
    from cnn_core.data import catalog, pictures

    infos = pictures.added()
    if not infos:
        st.caption("None yet: add one below.")
    for info in infos:
        own, status = info.own, catalog.dataset_status(info.id)
        with st.container(border=True):
            c, h, w = info.input_shape
            st.markdown(f"**{info.id}** :violet-badge[yours] · {len(info.classes)} classes · "
                        f"{status.n_train:,} train · {status.n_test:,} test · {w}×{h} "
                        f"{'grey' if c == 1 else 'colour'}, {own['fit']}")
            st.caption(f"From {views.md(own['origin'])}"
                       + (f" · :orange[{len(own['warnings'])} warning(s)]" if own["warnings"] else ""))
            look, rename, delete = st.columns(3)
            with look.popover("Look", icon=":material/visibility:", width="stretch"):
                _look(info)
            with rename.popover("Rename", icon=":material/edit:", width="stretch"):
                new = st.text_input("New name", key=f"{K}.rename.{info.id}", max_chars=40)
                st.caption("Runs trained on it keep the old name: they open, but cannot read its test set.")
                if st.button("Rename", key=f"{K}.rename_btn.{info.id}", disabled=not new.strip()):
                    _act(lambda: pictures.rename(info.id, new.strip()), f"Renamed {info.id} to {new.strip()}.")
            with delete.popover("Delete", icon=":material/delete:", width="stretch"):
                st.caption(f"This deletes the cached pictures of {info.id} ({status.n_train + status.n_test:,}); "
                           f"your originals ({views.md(own['origin'])}) are not touched.")
                if st.button("Delete for good", key=f"{K}.delete_btn.{info.id}", type="primary"):
                    _act(lambda: pictures.delete(info.id), f"Deleted {info.id}.")


def _act(action, done: str) -> None:
    try:
        action()
        nav.flash("home", "success", done)
    except ValueError as exc:
        nav.flash("home", "error", views.md(exc))
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


# ---- Inspect and Draw: classify many -----------------------------------------------------------------

def classify_many(model, meta: dict, where: str) -> None:
    """Upload pictures or a zip (or name a folder): a sortable table of the top 3 per picture with thumbnails,
    a CSV download; with class folders, accuracy, the confusion matrix and the mistakes."""
    from cnn_core.analysis import predict
    from cnn_core.data import guards

    key = f"{where}.many"
    st.caption("Pictures are fitted to the model's input as its training pictures were. Put them in folders "
               f"named after classes ({', '.join(views.md(c) for c in meta['classes'][:3])}, …) to get accuracy "
               "and a confusion matrix.")
    files = st.file_uploader("Pictures, or a .zip of them", type=PICTURES + ["zip"], accept_multiple_files=True,
                             key=f"{key}.files")
    folder = server_folder("or a folder on the server's disk", f"{key}.folder", "check")
    if st.button("Classify", key=f"{key}.go", icon=":material/play_arrow:", disabled=not files and not folder):
        try:
            sources = [(f.name, f.getvalue()) for f in files or []] + ([str(guards.confine(folder))] if folder else [])
            if not sources:
                return
            result = predict.classify_many(model, meta, sources, progress=_progress_bar("Reading the pictures…"))
        except ValueError as exc:
            st.error(views.md(exc), icon=":material/error:")     # it quotes file names from the zip
            return
        st.session_state[key] = (meta.get("dataset"), result)
    kept = st.session_state.get(key)
    if kept is None or list(kept[1].classes) != list(meta["classes"]):
        return
    result = kept[1]
    frame = many_frame(result)
    acc = result.accuracy()
    line = f"**{len(result.files):,} pictures** read"
    if acc is not None:
        line += f"; **accuracy {acc:.1%}** on the {len(result.labelled):,} in class folders"
    if result.skipped:
        line += f"; {len(result.skipped):,} could not be read"
    st.markdown(line + ".")
    st.dataframe(frame, hide_index=True, width="stretch", row_height=TILE + 4, column_config={
        "picture": st.column_config.ImageColumn("picture", width="small"),
        **{f"p{i}": st.column_config.ProgressColumn(f"p{i}", min_value=0.0, max_value=1.0, format="%.3f")
           for i in (1, 2, 3)}})
    if len(frame) > THUMBS:
        st.caption(f"Thumbnails for the first {THUMBS:,} rows.")
    st.download_button("Download CSV", result.to_csv(), "predictions.csv",   # formulas in names written as text
                       "text/csv", key=f"{key}.csv", icon=":material/download:")
    if result.skipped:
        with st.expander(f"{len(result.skipped):,} pictures could not be read"):
            st.dataframe(pd.DataFrame(result.skipped, columns=["file", "why"]), hide_index=True)
    cm = result.confusion()
    if cm is not None:
        st.plotly_chart(images.confusion_figure(cm, result.classes), config=CONFIG, key=f"{key}.cm")
        wrong = frame[frame["correct"] == False]  # noqa: E712  (pandas: a boolean column, None where unlabelled)
        st.markdown(f"**Mistakes: {len(wrong):,}**")
        if len(wrong):
            st.dataframe(wrong, hide_index=True, width="stretch", row_height=TILE + 4,
                         column_config={"picture": st.column_config.ImageColumn("picture", width="small")})
