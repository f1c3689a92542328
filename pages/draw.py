"""Draw: sketch a digit (or upload a picture of one) and watch the MNIST runs read it."""
import streamlit as st

from ui import draw_widgets as dw, nav

nav.ensure_frame()

st.title("Draw")
st.caption("Draw a digit in the black square. It is prepared the way MNIST's digits were: cropped to the "
           "ink, fitted into a 20×20 box and centred by its centre of mass in 28×28. Then the model reads it.")
CHART = {"displayModeBar": False}


def prepared(source: str, raw, left, middle):
    """The (1, 28, 28) model input from the drawing or the upload; None, with a friendly word, when none."""
    from cnn_core import predict

    if raw is None:
        middle.info("Draw a digit with the mouse (or a finger): white ink on the black square."
                    if source == "Draw" else "Upload a PNG or JPEG of one digit.", icon=":material/gesture:")
        return None
    try:
        ink = predict.ink_from_rgba(raw) if source == "Draw" else predict.ink_from_upload(raw)
        return predict.mnist_preprocess(ink)
    except ValueError as exc:            # the library's words: an empty drawing, or a refused file
        text = str(exc)[0].upper() + str(exc)[1:]
        if source == "Draw" and "empty" in text:     # a blank canvas is no error; an empty file is
            middle.info(text, icon=":material/gesture:")
        else:
            left.error(text, icon=":material/error:")
        return None


def every_answer(records: list[dict], image) -> None:
    """Each MNIST run's answer to the same input, side by side."""
    from cnn_core import predict

    st.subheader("Every MNIST run's answer")
    cols = st.columns(min(len(records), 4))
    for i, record in enumerate(records):
        col, name = cols[i % len(cols)], record.get("name") or record["id"]
        try:
            model, meta = dw.load(record)
        except ValueError as exc:        # CheckpointError: a best.pt that is corrupt or does not fit
            col.error(f"{name}: {exc}")
            continue
        probs = predict.probabilities(model, meta, image)
        best = int(probs.argmax())
        with col:
            st.metric(name, meta["classes"][best], help=record["path"])
            st.caption(f"{probs[best]:.1%} sure")
            dw.probs_chart(probs, meta["classes"], best, height=230, key=f"draw.probs.{i}")


def first_layer(model, meta: dict, image) -> None:
    """The first conv layer's feature maps for this input."""
    from cnn_core import inspection_plots as plots, predict

    st.subheader("What the first conv layer sees")
    maps = predict.first_conv_maps(model, meta, image)
    if maps is None:
        st.info("This model has no conv layers: it reads the 784 pixels as one flat vector.",
                icon=":material/info:")
        return
    name, values = maps
    st.caption(f"Each tile is one filter's response to this drawing ({name}: {values.shape[0]} maps of "
               f"{values.shape[1]}×{values.shape[2]}); bright where the filter's pattern is present.")
    st.plotly_chart(plots.feature_map_figure(values, f"{name} output"), config=CHART, key="draw.maps")


def main() -> None:
    left, middle, right = st.columns([5, 3, 6], gap="medium")
    with left:
        source = st.segmented_control("Input", ["Draw", "Upload"], default="Draw", key=dw.SOURCE,
                                      label_visibility="collapsed") or "Draw"
        raw = dw.canvas_input() if source == "Draw" else dw.upload_input()

    from cnn_core import predict     # torch: imported once the canvas is on screen

    records = predict.mnist_runs()
    if not records:
        with right:
            st.warning("No model can read digits yet: the bundled model (models/mnist-bundled) is missing "
                       "and no run trained on MNIST has saved its best weights.", icon=":material/model_training:")
            nav.link("train", "Train a model on MNIST")
        return
    with right:
        record = dw.run_picker(records)
    image = prepared(source, raw, left, middle)
    if image is None:
        return
    with middle:
        dw.model_input(image)
    try:
        model, meta = dw.load(record)
    except ValueError as exc:        # CheckpointError: a best.pt that is corrupt, hostile or does not fit
        right.error(str(exc), icon=":material/error:")
        return
    probs = predict.probabilities(model, meta, image)
    best, second = (int(i) for i in probs.argsort()[::-1][:2])
    with right:
        st.markdown(f"## Prediction: {meta['classes'][best]}")
        st.caption(f"{probs[best]:.1%} sure · second guess {meta['classes'][second]} ({probs[second]:.1%})")
        dw.probs_chart(probs, meta["classes"], best)
        show_all = len(records) > 1 and st.toggle(f"Every MNIST run's answer ({len(records)} runs)", key=dw.ALL)
    if show_all:
        every_answer(records, image)
    first_layer(model, meta, image)


main()
