"""The Draw page's widgets and caches: the canvas with its Clear button, the image upload, the run picker,
and one cached read-only model per run (keyed by run folder + best.pt mtime). Work is cnn_core.analysis.predict's."""
from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from cnn_core.runs import store
from ui import compute, views
from ui.draw import state
from ui.figures import CONFIG, images

DEFAULT_STROKE = 18              # px on the 280 px canvas: about a pen's width on a 28 px MNIST digit
SIDE = 280
# On a phone (Streamlit stacks columns under 640 px) the row's columns would come one under the other: the
# canvas, its pen, what the model sees, the picker, and the answer at y=1084 of an 800 px screen. There the
# columns give up their boxes (display: contents), so their parts line up in one column, ordered: the
# canvas, the answer right under it, then the rest as they were. Streamlit names a keyed container's box
# by the class st-key-<key, with what is not [a-zA-Z0-9_-] made '-'>.


def _css(key: str) -> str:
    return ".st-key-" + re.sub(r"[^a-zA-Z0-9_-]", "-", key)


_ROW = f'{_css(state.LAYOUT)} > [data-testid="stLayoutWrapper"] > [data-testid="stHorizontalBlock"]'
_COLUMN = f'{_ROW} > [data-testid="stColumn"]'
_PART = f'{_COLUMN} > [data-testid="stVerticalBlock"] > *'
PHONE_ORDER = f"""<style>@media (max-width: 640px) {{
  {_ROW} {{flex-direction: column; flex-wrap: nowrap; gap: 1rem}}
  {_COLUMN}, {_COLUMN} > [data-testid="stVerticalBlock"] {{display: contents}}
  {_PART} {{order: 2}}
  {_COLUMN}:first-child > [data-testid="stVerticalBlock"] > * {{order: 0}}
  {_PART}:has(> {_css(state.PEN)}) {{order: 2}}
  {_PART}:has({_css(state.ANSWER)}) {{order: 1}}
}}</style>"""


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model(path: str, mtime: float):
    """(model in eval mode, meta) of one run; shared by every session and never trained."""
    from cnn_core.analysis.predict import load_model

    return load_model(Path(path), which="best")   # a Path: the bundled model lies outside the runs folder


def load(record: store.Run):
    """The cached (model, meta) of a run record; a new best.pt (new mtime) loads afresh."""
    path = Path(record.path)
    return _model(str(path), (path / store.BEST).stat().st_mtime)


def canvas_key() -> str:
    return state.canvas(st.session_state.get(state.NONCE, 0))


def _clear() -> None:
    st.session_state[state.NONCE] = st.session_state.get(state.NONCE, 0) + 1


def canvas_input():
    """The canvas (white ink on black) with a stroke-width slider and Clear; RGBA array or None."""
    from streamlit_drawable_canvas import st_canvas

    width = st.session_state.get(state.STROKE, DEFAULT_STROKE)
    result = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                       height=SIDE, width=SIDE, drawing_mode="freedraw", key=canvas_key(),
                       return_image_data=True)
    a, b = st.container(key=state.PEN).columns([3, 2], vertical_alignment="bottom")
    a.slider("Stroke width", 6, 40, DEFAULT_STROKE, step=2, key=state.STROKE,
             help="Pen width in canvas pixels. MNIST digits have strokes about a tenth of the digit's height.")
    b.button("Clear", key=state.CLEAR, on_click=_clear, icon=":material/delete:", width="stretch")
    return result.image_data


def upload_input() -> bytes | None:
    """An uploaded PNG/JPEG (light or dark background); its bytes, or None."""
    file = st.file_uploader("A picture of one digit", type=["png", "jpg", "jpeg"], key=state.UPLOAD,
                            help="Dark ink on light paper or light on dark: both are read. At most 10 MB "
                                 "and 40 million pixels.")
    return file.getvalue() if file is not None else None


def run_picker(records: list) -> store.Run:
    """Selectbox over the runs that read drawings (the bundled model first, so preselected, unless the address
    names a run: ?run=<id>); the chosen one."""
    by_path = {str(r.path): r for r in records}

    def label(path: str) -> str:
        text = views.run_label(by_path[path])
        return text if "bundled" in text.lower() or by_path[path].host != "bundled" else f"{text} · bundled"

    wanted = st.query_params.get("run")         # a link from another page (Learn: ?run=<id>) picks that run, once
    linked = next((path for path, r in by_path.items() if r.id == wanted), None)
    if linked and st.session_state.get(state.LINKED) != wanted:
        st.session_state[state.RUN], st.session_state[state.LINKED] = linked, wanted
    if st.session_state.get(state.RUN) not in by_path:
        st.session_state.pop(state.RUN, None)
    path = st.selectbox("Model", list(by_path), format_func=label, key=state.RUN,
                        help="Every run trained on MNIST (or on a grey dataset added from your pictures) that "
                             "has saved its best weights.")
    return by_path[path]


def model_input(image) -> None:
    """The model's input (1, H, W) uint8 (28 x 28 for MNIST), enlarged to 168 px with sharp pixels."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image)[0]                                             # (H, W) uint8
    h, w = pixels.shape
    st.image(Image.fromarray(pixels).resize((168, 168), Image.NEAREST), caption=f"What the model sees: {w}×{h}",
             width=168, alt=f"The drawing as the model reads it: {w} by {h} grey pixels")


def probs_chart(probs, classes, best: int, height: int = 300, key: str = state.PROBS) -> None:
    """Bars of every class's probability, the predicted one in green."""
    st.plotly_chart(images.probs_figure(probs, classes, best, height=height), config=CONFIG, key=key)


# ---- what the page shows of one input: cnn_core.analysis.predict imports torch (2.7 s here), so it is imported
# in these functions, which run once the canvas is on screen -------------------------------------------
def prepared(source: str, raw, left, middle):
    """The ink (H, W) in [0, 1] of the drawing or the upload, checked to hold a digit; None, with a friendly
    word, when none. drawing.drawing_for_model makes each model's input of it."""
    from cnn_core.analysis import drawing, predict

    if raw is None:
        middle.info("Draw a digit with the mouse (or a finger): white ink on the black square."
                    if source == "Draw" else "Upload a PNG or JPEG of one digit.", icon=":material/gesture:")
        return None
    try:
        ink = drawing.ink_from_rgba(raw) if source == "Draw" else predict.ink_from_upload(raw)
        predict.mnist_preprocess(ink)    # the check that there is ink to read
        return ink
    except ValueError as exc:            # the library's words: an empty drawing, or a refused file
        text = str(exc)[0].upper() + str(exc)[1:]
        if source == "Draw" and "empty" in text:     # a blank canvas is no error; an empty file is
            middle.info(text, icon=":material/gesture:")
        else:
            left.error(text, icon=":material/error:")
        return None


def every_answer(records: list[store.Run], ink) -> None:
    """Each run's answer to the same drawing, side by side."""
    from cnn_core.analysis import drawing

    st.subheader("Every run's answer")
    cols = st.columns(min(len(records), 4))
    for i, record in enumerate(records):
        col, name = cols[i % len(cols)], record.title
        try:
            model, meta = load(record)
        except ValueError as exc:        # CheckpointError: a best.pt that is corrupt or does not fit
            col.error(f"{views.md(name)}: {views.md(exc)}")
            continue
        probs = drawing.probabilities(model, meta, drawing.drawing_for_model(ink, meta))
        best = int(probs.argmax())
        with col:
            st.metric(views.md(name), views.md(meta["classes"][best]), help=views.md(record.path))
            st.caption(f"{probs[best]:.1%} sure")
            probs_chart(probs, meta["classes"], best, height=230, key=state.probs(i))


def first_layer(model, meta: dict, image) -> None:
    """The first conv layer's feature maps for this input."""
    from cnn_core.analysis import drawing

    st.subheader("What the first conv layer sees")
    maps = drawing.first_conv_maps(model, meta, image)
    if maps is None:
        st.info("This model has no conv layers: it reads the 784 pixels as one flat vector.",
                icon=":material/info:")
        return
    name, values = maps
    st.caption(f"Each tile is one filter's response to this drawing ({name}: {values.shape[0]} maps of "
               f"{values.shape[1]}×{values.shape[2]}); bright where the filter's pattern is present.")
    st.plotly_chart(images.feature_map_figure(values, f"{name} output"), config=CONFIG, key=state.MAPS)


# ---- Fool the model: the smallest change to what the model reads that makes it read something else -------
FOOL_ROUNDS = 5      # the search halves the budget 5 times: the change found is the smallest to within budget/32
                     # (0.3 -> 0.01); 6 PGD attacks of 20 steps
FOOL_SIDE = 96       # px of each picture on screen (28 model pixels, 3.4 px each): three in a row on a 400 px phone
ANY = -1             # "Make it read": any other class


@st.fragment
def fool_it(record: store.Run, model, meta: dict, image, probs) -> None:
    """Under the answer: a budget, "any other" or a class to make it read, and Find the smallest change; the
    search's result stays shown while the drawing, the model, the budget and the wish are the same. A
    fragment: its widgets rerun it alone, not the canvas, the answer and the maps (1.8-2.5 s on a busy
    2-core machine for the whole page, against the search's 0.2-0.8 s)."""
    import hashlib

    classes, best = meta["classes"], int(probs.argmax())
    with st.expander("Fool the model", icon=":material/blur_on:", key=state.FOOL):
        st.caption(f"How little must the picture change before the model stops reading "
                   f"{views.md(classes[best])}? Each pixel may move by at most the budget, a share of "
                   "black-to-white; the search finds the smallest change that works.")
        a, b = st.columns([3, 2])
        eps = a.slider("Budget", 0.01, 0.30, 0.30, step=0.01, key=state.FOOL_EPS,
                       help="The most any one pixel may change: 0.10 lets each pixel move a tenth of the way "
                            "from black to white. The change found is often much smaller.")
        wishes = [ANY, *(i for i in range(len(classes)) if i != best)]
        if st.session_state.get(state.FOOL_TARGET) not in wishes:
            st.session_state.pop(state.FOOL_TARGET, None)      # it reads that class already: back to any other
        wish = b.selectbox("Make it read", wishes, key=state.FOOL_TARGET,
                           format_func=lambda i: "any other" if i == ANY else str(classes[i]))
        target = None if wish == ANY else wish
        asked = (str(record.path), hashlib.sha1(image.numpy().tobytes()).hexdigest(), eps, target)
        if st.button("Find the smallest change", key=state.FOOL_GO, icon=":material/search:"):
            st.session_state[state.FOOLED] = (asked, *_search(model, meta, image, eps, target))
        kept = st.session_state.get(state.FOOLED)
        if kept is not None and kept[0] == asked:
            _fooled(kept[1], kept[2], classes, best, target)


def _search(model, meta: dict, image, eps: float, target: int | None):
    """(the smallest attack within the budget, the seconds it took), on one torch thread (ui/compute.py)."""
    import time

    from cnn_core.analysis import adversarial

    start = time.perf_counter()
    with compute.one_thread():       # 0.2-0.8 s; 3.5-16 s on the server's 2 threads beside a training run
        found = adversarial.smallest_attack(model, meta, image, eps, "pgd", target, rounds=FOOL_ROUNDS)
    return found, time.perf_counter() - start


def _picture_uri(a, title: str) -> str:
    """(C, H, W) in 0..1 as an <img> of FOOL_SIDE px, each model pixel a sharp square."""
    import base64
    import html
    import io

    import numpy as np
    from PIL import Image

    a = np.clip(np.asarray(a, dtype=np.float32), 0, 1)
    a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray((a * 255).round().astype(np.uint8)).resize((FOOL_SIDE * 2, FOOL_SIDE * 2), Image.NEAREST).save(
        buf, format="PNG")
    return (f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}" width="{FOOL_SIDE}" '
            f'height="{FOOL_SIDE}" alt="{html.escape(title)}" style="image-rendering: pixelated; display: block">')


def _fooled(found, seconds: float, classes, best: int, target: int | None) -> None:
    """What the model reads, the change (stretched to be seen), the changed picture, its new top-3, and the
    change's real size in words."""
    import html

    from cnn_core.analysis import adversarial, predict

    new = int(found.after.argmax())
    worked = new != best if target is None else new == target
    stretch = 0.5 / max(found.size, 1e-8)
    panels = [(found.original, "What the model reads", f"reads {classes[best]}"),
              (adversarial.amplified(found), f"The change, {stretch:.0f}× stronger" if found.size else "The change",
               "grey: unchanged; lighter, darker: moved"),
              (found.changed, "The changed picture", f"reads {classes[new]}")]
    figures = "".join(
        f'<figure style="margin: 0; width: {FOOL_SIDE}px">{_picture_uri(a, title)}'
        f'<figcaption style="font-size: 0.8rem; line-height: 1.25; margin-top: 0.25rem"><b>{html.escape(title)}</b>'
        f'<br>{html.escape(note)}</figcaption></figure>' for a, title, note in panels)
    size = f"no pixel changed by more than {found.size:.0%} of black-to-white ({found.size:.3f})"
    top = " · ".join(f"{views.md(name)} {p:.0%}" if p >= 0.005 else f"{views.md(name)} <1%"
                     for name, p in predict.top_k(found.after, classes))
    with st.container(key=state.FOOL_RESULT):
        st.html(f'<div style="display: flex; flex-wrap: wrap; gap: 0.5rem">{figures}</div>')
        st.markdown(f"**Now it reads {views.md(classes[new])}** · top 3: {top}")
        if worked:
            st.caption(f"{size[0].upper()}{size[1:]}. Found in {seconds:.1f} s.")
        else:
            wish = "anything else" if target is None else views.md(classes[target])
            st.caption(f"Within a budget of {found.eps:.2f} no change made it read {wish} ({size}). "
                       "Raise the budget and try again.")
