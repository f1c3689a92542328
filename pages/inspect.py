"""Inspect: what a run's network learned — filters, feature maps, confusion, mistakes, saliency — at any epoch."""
from pathlib import Path

import streamlit as st

from ui import inspect_widgets as iw

st.title("Inspect")
st.caption("Pick a run and a moment of its training, then look inside: the filters it learned, what each "
           "layer sees in a test image, which classes it confuses, its most confident mistakes, and where "
           "it looks.")
CHART = {"displayModeBar": False}


def header(record: dict):
    """Run and weights pickers, with a word on running runs and missing snapshots; the Weights or None."""
    from cnn_core import inspection

    path = Path(record["path"])
    status = record["effective_status"]
    if status in ("running", "queued"):
        p = record.get("progress") or {}
        st.info(f"This run is still {status} (epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}): you see "
                "the weights saved so far. New epochs appear here when the page reruns.",
                icon=":material/directions_run:")
        st.button("Check for new epochs", key="inspect.refresh", icon=":material/refresh:")
    weights = iw.weights_picker(path, record)
    if weights is not None and (note := inspection.snapshot_note(path, record)):
        st.info(note, icon=":material/photo_library:")
    return weights


def filters_tab(net, meta, stamp_args) -> None:
    from cnn_core import inspection, inspection_plots as plots

    layers = dict(inspection.conv_filters(net))
    if not layers:
        dense = inspection.dense_templates(net)
        st.info("This model has no conv layers: it sees the image as one flat vector. Below, each hidden "
                "unit of its first dense layer is drawn as the image that excites it most.")
        if dense:
            st.plotly_chart(plots.filters_figure(dense[1], dense[0], per_filter=True), config=CHART)
        return
    a, b, c = st.columns([2, 1, 1])
    name = a.selectbox("Conv layer", list(layers), key="inspect.filter_layer",
                       format_func=lambda n: f"{n} · {' × '.join(map(str, layers[n].shape))}")
    per_filter = b.toggle("Per-filter colour scale", key="inspect.per_filter",
                          help="Off: one colour scale for the whole layer, so strong and weak filters compare. "
                               "On: each filter stretched to its own range, so every pattern shows.")
    grads = c.toggle("Gradients on a batch", key="inspect.grads",
                     help="d(loss)/d(weight) on 64 test images: how the next step would change each kernel.")
    st.plotly_chart(plots.filters_figure(layers[name], name, per_filter), config=CHART)
    if grads:
        g = iw.filter_gradients(*stamp_args)[name]
        st.plotly_chart(plots.filters_figure(g, f"gradient of {name}", per_filter), config=CHART)


def image_card(preds, test, stamp_args) -> int:
    from cnn_core import inspection, inspection_plots as plots

    with st.container(border=True):
        pick, pic, probs = st.columns([3, 2, 4])
        with pick:
            index = iw.image_picker(preds, test.classes)
        maps, p = iw.feature_maps(*stamp_args, index)
        true = int(preds.y[index])
        pic.image(inspection.to_rgb(test.images[index], scale=6), width=168,
                  caption=f"test image #{index} · true class {test.classes[true]}")
        with probs:
            top = inspection.top_k(p, test.classes)
            st.markdown("**Top 3:** " + " · ".join(f"{c} {v:.1%}" for c, v in top))
            st.plotly_chart(plots.probs_figure(p, test.classes, true, height=200), config=CHART)
    return index


def feature_maps_tab(maps) -> None:
    from cnn_core import inspection_plots as plots

    if not maps:
        st.info("This model has no conv layers, so there are no feature maps: it flattens the image at once.")
        return
    st.caption("Each layer's output for the chosen image, channel by channel (left to right, top to bottom), "
               "on one colour scale per layer.")
    cols = st.columns(2)
    for i, fm in enumerate(maps):
        title = f"{fm.name} · {fm.kind} · output {' × '.join(map(str, fm.shape))}"
        cols[i % 2].plotly_chart(plots.feature_map_figure(fm.maps, title), config=CHART, key=f"inspect.fm.{i}")


def confusion_tab(preds, test) -> None:
    from cnn_core import inspection, inspection_plots as plots

    k = len(test.classes)
    cm = inspection.confusion_matrix(preds.y, preds.pred, k)
    st.markdown(f"**Test accuracy {preds.correct.mean():.2%}** on {len(preds.y):,} test images.")
    worst = inspection.most_confused(cm)
    a, b, c = st.columns([1, 1, 1])
    normalized = a.toggle("Normalize rows", key="inspect.cm_norm", help="Show each true class's images as shares.")
    t = b.selectbox("True class", range(k), index=worst[0], key="inspect.cm_true", format_func=lambda i: test.classes[i])
    p = c.selectbox("Predicted class", range(k), index=worst[1], key="inspect.cm_pred",
                    format_func=lambda i: test.classes[i])
    left, right = st.columns([3, 2])
    left.plotly_chart(plots.confusion_figure(cm, test.classes, normalized, highlight=(t, p)), config=CHART)
    right.dataframe(inspection.class_report(cm, test.classes), hide_index=True, width="stretch",
                    column_config={c: st.column_config.NumberColumn(format="percent")
                                   for c in ("accuracy (recall)", "precision", "F1")})
    right.caption("A class's accuracy is its recall: of the images that are X, the share called X. "
                  "Precision: of the images called X, the share that are X.")
    st.markdown(f"**True {test.classes[t]}, predicted {test.classes[p]}:** {cm[t, p]} image(s), most confident first")
    iw.gallery(inspection.cell_indices(preds, t, p), test.images, preds, test.classes, 24, "cell")


def mistakes_tab(preds, test) -> None:
    from cnn_core import inspection

    wrong = inspection.mistakes(preds)
    st.markdown(f"**{len(wrong):,} mistakes** of {len(preds.y):,} test images, the most confident first "
                "(true → predicted, confidence).")
    limit = st.slider("Show", 8, 96, 32, step=8, key="inspect.mistakes_n")
    iw.gallery(wrong, test.images, preds, test.classes, limit, "mistakes")


def saliency_tab(net, preds, test, index, stamp_args) -> None:
    from cnn_core import inspection, inspection_plots as plots

    layers = [name for name, _ in inspection.feature_layers(net)]
    cam_layer = inspection.default_cam_layer(net)
    a, b, c = st.columns(3)
    target = a.selectbox("Explain class", range(len(test.classes)), index=int(preds.pred[index]),
                         key="inspect.sal_class", format_func=lambda i: test.classes[i],
                         help="Defaults to the predicted class.")
    method = b.radio("Method", ["Grad-CAM", "Gradient"] if cam_layer else ["Gradient"], horizontal=True,
                     key="inspect.sal_method", help="Grad-CAM: which regions of a conv layer's maps raise the "
                     "class score. Gradient: how much each input pixel moves the score.")
    layer = None
    if method == "Grad-CAM":
        layer = c.selectbox("Layer", layers, index=layers.index(cam_layer), key="inspect.sal_layer")
    st.caption(f"Test image #{index}: true {test.classes[preds.y[index]]}, predicted "
               f"{test.classes[preds.pred[index]]}. Choose another image in the Feature maps tab.")
    heat = iw.saliency(*stamp_args, index, target, method, layer)
    title = f"{method} for '{test.classes[target]}'" + (f" at {layer}" if layer else "")
    st.plotly_chart(plots.saliency_figure(inspection.to_rgb(test.images[index]), heat, title), config=CHART)


def main() -> None:
    record = iw.run_picker()
    weights = header(record) if record else None
    if weights is None:
        return
    stamp_args = (record["path"], weights.key, weights.stamp)
    try:
        net, meta = iw.model(*stamp_args)
    except ValueError as exc:   # CheckpointError: missing, empty, corrupt or foreign file
        st.error(f"These weights cannot be loaded: {exc}", icon=":material/error:")
        return
    tabs = st.tabs(["Filters", "Feature maps", "Confusion", "Mistakes", "Saliency"])
    with tabs[0]:
        filters_tab(net, meta, stamp_args)
    try:
        preds, test = iw.predictions(*stamp_args), iw.test_for(meta)
    except ValueError as exc:   # the dataset is not prepared here, or does not fit the model
        for tab in tabs[1:]:
            tab.error(f"The test set cannot be used: {exc}", icon=":material/error:")
        return
    with tabs[1]:
        index = image_card(preds, test, stamp_args)
        feature_maps_tab(iw.feature_maps(*stamp_args, index)[0])
    with tabs[2]:
        confusion_tab(preds, test)
    with tabs[3]:
        mistakes_tab(preds, test)
    with tabs[4]:
        saliency_tab(net, preds, test, index, stamp_args)


main()
