"""Your own pictures where several pages take them: a box for a folder on the server's disk (Home, Compare's
import, Classify many), Classify many with a trained run (Inspect and Draw), and the picture tiles they show.
Home's add panel and its list of added datasets are ui/home/own_pictures.py. The work is
cnn_core.data.pictures' and cnn_core.analysis.predict's."""
from __future__ import annotations

import base64
import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from ui import views
from ui.figures import CONFIG, images

TILE = 48                        # px of one sample picture in the previews and the classify-many table
THUMBS = 2_000                   # rows of the classify-many table that get a thumbnail (a data URL each)
PICTURES = ["png", "jpg", "jpeg", "bmp", "gif", "webp"]
FOLDERS_OFF = ("Reading folders on the server is off: this dashboard is served beyond this machine. Whoever runs "
               "it can set CNN_IMPORT_ROOTS to the folders it may read.")


# ---- pure helpers: pictures and the classify-many table -------------------------------------------------

def tile(image, side: int = TILE) -> Image.Image:
    """A (C, H, W) uint8 picture as a PIL image `side` px wide, sharp pixels."""
    a = np.asarray(image)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    return Image.fromarray(a).resize((side, side), Image.NEAREST)


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


def progress_bar(text: str):
    """A progress bar and the callback (done, total, message) that moves it, as the library reports."""
    bar = st.progress(0.0, text=text)
    return lambda done, total, msg: bar.progress(min(done / total, 1.0) if total else 0.0, text=msg)


# ---- Inspect and Draw: classify many -----------------------------------------------------------------

def classify_many(model, meta: dict, kept: str, key: Callable[[str], str]) -> None:
    """Upload pictures or a zip (or name a folder): a sortable table of the top 3 per picture with thumbnails,
    a CSV download; with class folders, accuracy, the confusion matrix and the mistakes. The page's state names
    the keys: `kept` holds the result, key(part) is each widget's (files, folder, go, csv, cm)."""
    from cnn_core.analysis import predict
    from cnn_core.data import guards

    st.caption("Pictures are fitted to the model's input as its training pictures were. Put them in folders "
               f"named after classes ({', '.join(views.md(c) for c in meta['classes'][:3])}, …) to get accuracy "
               "and a confusion matrix.")
    files = st.file_uploader("Pictures, or a .zip of them", type=PICTURES + ["zip"], accept_multiple_files=True,
                             key=key("files"))
    folder = server_folder("or a folder on the server's disk", key("folder"), "check")
    if st.button("Classify", key=key("go"), icon=":material/play_arrow:", disabled=not files and not folder):
        try:
            sources = [(f.name, f.getvalue()) for f in files or []] + ([str(guards.confine(folder))] if folder else [])
            if not sources:
                return
            result = predict.classify_many(model, meta, sources, progress=progress_bar("Reading the pictures…"))
        except ValueError as exc:
            st.error(views.md(exc), icon=":material/error:")     # it quotes file names from the zip
            return
        st.session_state[kept] = (meta.get("dataset"), result)
    found = st.session_state.get(kept)
    if found is None or list(found[1].classes) != list(meta["classes"]):
        return
    result = found[1]
    frame = many_frame(result)
    acc = result.accuracy()
    line = f"**{views.count(len(result.files), 'picture')}** read"
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
                       "text/csv", key=key("csv"), icon=":material/download:")
    if result.skipped:
        with st.expander(f"{views.count(len(result.skipped), 'picture')} could not be read"):
            st.dataframe(pd.DataFrame(result.skipped, columns=["file", "why"]), hide_index=True)
    cm = result.confusion()
    if cm is not None:
        st.plotly_chart(images.confusion_figure(cm, result.classes), config=CONFIG, key=key("cm"))
        wrong = frame[frame["correct"] == False]  # noqa: E712  (pandas: a boolean column, None where unlabelled)
        st.markdown(f"**Mistakes: {len(wrong):,}**")
        if len(wrong):
            st.dataframe(wrong, hide_index=True, width="stretch", row_height=TILE + 4,
                         column_config={"picture": st.column_config.ImageColumn("picture", width="small")})
