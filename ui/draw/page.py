"""Draw: sketch a digit (or upload a picture of one) and watch the MNIST runs read it."""
import streamlit as st

from ui import nav, signin, views
from ui.draw import state
from ui.draw import widgets as dw

st.title("Draw")
st.caption("Draw a digit in the black square. It is prepared the way MNIST's digits were: cropped to the "
           "ink, fitted into a 20×20 box and centred by its centre of mass in 28×28. Then the model reads it.")


def main() -> None:
    st.html(dw.PHONE_ORDER)
    left, middle, right = st.container(key=state.LAYOUT).columns([5, 3, 6], gap="medium")
    with left:
        source = st.segmented_control("Input", ["Draw", "Upload"], default="Draw", key=state.SOURCE,
                                      label_visibility="collapsed") or "Draw"
        raw = dw.canvas_input() if source == "Draw" else dw.upload_input()

    from cnn_core.analysis import drawing  # torch (2.7 s): after the canvas shows
    from cnn_core.runs import owners

    records = owners.visible(drawing.drawable_runs(), signin.me())     # in class mode: what this person may open
    if not records:
        with right:
            st.warning("No model can read digits yet: the bundled model (models/mnist-bundled) is missing "
                       "and no run trained on MNIST has saved its best weights.", icon=":material/model_training:")
            nav.link("train", "Train a model on MNIST")
        return
    with right:
        record = dw.run_picker(records)
    ink = dw.prepared(source, raw, left, middle)
    try:
        model, meta = dw.load(record)
    except ValueError as exc:        # CheckpointError: a best.pt that is corrupt, hostile or does not fit
        right.error(views.md(exc), icon=":material/error:")
        return
    if ink is not None:
        answer(records, record, model, meta, ink, middle, right)
    with st.expander("Classify many pictures with this model", icon=":material/photo_library:"):
        from ui import own_data

        own_data.classify_many(model, meta, state.MANY, state.many)


def answer(records, record, model, meta: dict, ink, middle, right) -> None:
    """What the chosen run reads in the drawing, how little fools it, every run's answer on demand, the first
    layer's maps."""
    from cnn_core.analysis import drawing

    image = drawing.drawing_for_model(ink, meta)
    with middle:
        dw.model_input(image)
    probs = drawing.probabilities(model, meta, image)
    best, second = (int(i) for i in probs.argsort()[::-1][:2])
    with right:
        with st.container(key=state.ANSWER):
            st.markdown(f"## Prediction: {views.md(meta['classes'][best])}")
            st.caption(f"{probs[best]:.1%} sure · second guess {views.md(meta['classes'][second])} "
                       f"({probs[second]:.1%})")
        dw.probs_chart(probs, meta["classes"], best)
        dw.fool_it(record, model, meta, image, probs)
        show_all = len(records) > 1 and st.toggle(f"Every run's answer ({len(records)} runs)", key=state.ALL)
    if show_all:
        dw.every_answer(records, ink)
    dw.first_layer(model, meta, image)


main()
