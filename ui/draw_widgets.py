"""The Draw page's widgets and caches: the canvas with its Clear button, the image upload, the run picker,
and one cached read-only model per run (keyed by run folder + best.pt mtime). Work is cnn_core.predict's."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

CANVAS = "draw.canvas"           # the canvas's key is CANVAS.<n>; Clear moves n on, which remounts it blank
NONCE = "draw.canvas_n"
RUN, STROKE, SOURCE, UPLOAD, ALL = "draw.run", "draw.stroke", "draw.source", "draw.upload", "draw.all"
DEFAULT_STROKE = 18              # px on the 280 px canvas: about a pen's width on a 28 px MNIST digit
SIDE = 280


@st.cache_resource(max_entries=8, show_spinner="Loading the model…")
def _model(path: str, mtime: float):
    """(model in eval mode, meta) of one run; shared by every session and never trained."""
    from cnn_core.predict import load_model

    return load_model(Path(path), which="best")   # a Path: the bundled model lies outside the runs folder


def load(record: dict):
    """The cached (model, meta) of a run record; a new best.pt (new mtime) loads afresh."""
    from cnn_core import runs

    path = Path(record["path"])
    return _model(str(path), (path / runs.BEST).stat().st_mtime)


def canvas_key() -> str:
    return f"{CANVAS}.{st.session_state.get(NONCE, 0)}"


def _clear() -> None:
    st.session_state[NONCE] = st.session_state.get(NONCE, 0) + 1


def canvas_input():
    """The canvas (white ink on black) with a stroke-width slider and Clear; RGBA array or None."""
    from streamlit_drawable_canvas import st_canvas

    width = st.session_state.get(STROKE, DEFAULT_STROKE)
    result = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                       height=SIDE, width=SIDE, drawing_mode="freedraw", key=canvas_key(),
                       return_image_data=True)
    a, b = st.columns([3, 2], vertical_alignment="bottom")
    a.slider("Stroke width", 6, 40, DEFAULT_STROKE, step=2, key=STROKE,
             help="Pen width in canvas pixels. MNIST digits have strokes about a tenth of the digit's height.")
    b.button("Clear", key="draw.clear", on_click=_clear, icon=":material/delete:", width="stretch")
    return result.image_data


def upload_input() -> bytes | None:
    """An uploaded PNG/JPEG (light or dark background); its bytes, or None."""
    file = st.file_uploader("A picture of one digit", type=["png", "jpg", "jpeg"], key=UPLOAD,
                            help="Dark ink on light paper or light on dark: both are read. At most 10 MB "
                                 "and 40 million pixels.")
    return file.getvalue() if file is not None else None


def run_picker(records: list[dict]) -> dict:
    """Selectbox over the MNIST runs (the bundled model first, so preselected); the chosen record."""
    from cnn_core import views

    by_path = {r["path"]: r for r in records}

    def label(path: str) -> str:
        text = views.run_label(by_path[path])
        return text if "bundled" in text.lower() or by_path[path].get("host") != "bundled" else f"{text} · bundled"

    if st.session_state.get(RUN) not in by_path:
        st.session_state.pop(RUN, None)
    path = st.selectbox("Model", list(by_path), format_func=label, key=RUN,
                        help="Every run trained on MNIST that has saved its best weights.")
    return by_path[path]


def model_input(image, caption: str = "What the model sees: 28×28") -> None:
    """The preprocessed (1, 28, 28) uint8 image, enlarged 6x with sharp pixels."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image)[0]                                             # (28, 28) uint8
    st.image(Image.fromarray(pixels).resize((168, 168), Image.NEAREST), caption=caption, width=168,
             alt="The drawing as the model reads it: 28 by 28 grey pixels, the digit centred")


def probs_chart(probs, classes, best: int, height: int = 300, key: str = "draw.probs") -> None:
    """Horizontal bars of all ten probabilities, the predicted digit in green, values written beside."""
    import plotly.graph_objects as go

    names = [str(c) for c in classes]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", cliponaxis=False,
                           marker_color=["#2e7d32" if i == best else "#90a4ae" for i in range(len(names))],
                           text=[f"{p:.1%}" if p >= 0.005 else "" for p in probs], textposition="outside",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=45, t=5, b=5), bargap=0.25,
                      xaxis=dict(range=[0, 1], tickformat=".0%"),
                      yaxis=dict(type="category", dtick=1, autorange="reversed", title=None))
    st.plotly_chart(fig, config={"displayModeBar": False}, key=key)
