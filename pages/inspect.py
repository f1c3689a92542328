"""Inspect: what a run's network learned — filters, feature maps, confusion, mistakes, saliency — at any epoch."""
import streamlit as st

from ui import nav, inspect_widgets as iw

nav.ensure_frame()

st.title("Inspect")
st.caption("Pick a run and a moment of its training, then look inside: the filters it learned, what each "
           "layer sees in a test image, which classes it confuses, its most confident mistakes, and where "
           "it looks.")
CHART = {"displayModeBar": False}


def filters_tab(net, meta, stamp_args) -> None:
    from cnn_core import inspection, inspection_plots as plots

    layers = dict(inspection.conv_filters(net))
    if not layers:
        dense = inspection.dense_templates(net)
        st.info("This model has no conv layers: it sees the image as one flat vector. Below, each hidden "
                "unit of its first dense layer shows its weights as an image: the pattern that excites it most.")
        if dense:
            st.plotly_chart(plots.filters_figure(dense[1], dense[0], per_filter=True), config=CHART)
        return
    a, b, c = st.columns([2, 1, 1])
    iw.keep_valid("inspect.filter_layer", list(layers), next(iter(layers)))
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


def feature_maps_tab(maps) -> None:
    from cnn_core import inspection_plots as plots

    if not maps:
        st.info("This model has no conv layers, so there are no feature maps: it flattens the image at once.")
        return
    st.caption("Each layer's output for the chosen image, channel by channel (left to right, top to bottom), "
               "on one colour scale per layer.")
    for row in range(0, len(maps), 2):      # a row of two at a time: stacked on a phone, still in network order
        for col, (i, fm) in zip(st.columns(2), enumerate(maps[row:row + 2], start=row)):
            title = f"{fm.name} · {fm.kind} · output {' × '.join(map(str, fm.shape))}"
            col.plotly_chart(plots.feature_map_figure(fm.maps, title), config=CHART, key=f"inspect.fm.{i}")


def confusion_tab(preds, test, stamp_args) -> None:
    from cnn_core import inspection, inspection_plots as plots

    k = len(test.classes)
    cm = inspection.confusion_matrix(preds.y, preds.pred, k)
    st.markdown(f"**Test accuracy {preds.correct.mean():.2%}** on {len(preds.y):,} test images.")
    worst = inspection.most_confused(cm)
    iw.reset_on("inspect.cm_true", worst[0], stamp_args)
    iw.reset_on("inspect.cm_pred", worst[1], stamp_args)
    a, b, c = st.columns(3)
    normalized = a.toggle("Normalize rows", key="inspect.cm_norm", help="Show each true class's images as shares.")
    name = test.classes.__getitem__
    t = b.selectbox("True class", range(k), key="inspect.cm_true", format_func=name)
    p = c.selectbox("Predicted class", range(k), key="inspect.cm_pred", format_func=name)
    left, right = st.columns(2)
    left.plotly_chart(plots.confusion_figure(cm, test.classes, normalized, highlight=(t, p)), config=CHART)
    right.table(iw.class_report_text(inspection.class_report(cm, test.classes)))
    right.caption("A class's accuracy is its recall: of the images that are X, the share called X. "
                  "Precision: of the images called X, the share that are X. – : the model never called any "
                  "image X (or there is none), so there is nothing to measure.")
    st.markdown(f"**True {test.classes[t]}, predicted {test.classes[p]}:** {cm[t, p]} image(s), most confident first")
    iw.gallery(inspection.cell_indices(preds, t, p), test.images, preds, test.classes, 24)


def mistakes_tab(preds, test) -> None:
    from cnn_core import inspection

    wrong = inspection.mistakes(preds)
    st.markdown(f"**{len(wrong):,} mistakes** of {len(preds.y):,} test images, the most confident first "
                "(true → predicted, confidence).")
    if not len(wrong):
        st.success("These weights classify every test image correctly. Try an earlier epoch on the slider.")
        return
    limit = st.slider("Show", 8, 96, 32, step=8, key="inspect.mistakes_n")
    iw.gallery(wrong, test.images, preds, test.classes, limit)


def saliency_tab(net, preds, test, index, stamp_args) -> None:
    from cnn_core import inspection, inspection_plots as plots

    layers = [name for name, _ in inspection.feature_layers(net)]
    cam_layer = inspection.default_cam_layer(net)
    a, b, c = st.columns(3)
    iw.reset_on("inspect.sal_class", int(preds.pred[index]), (stamp_args, index))
    target = a.selectbox("Explain class", range(len(test.classes)), key="inspect.sal_class",
                         format_func=test.classes.__getitem__, help="Set to the predicted class for each new image.")
    method = b.radio("Method", ["Grad-CAM", "Gradient"] if cam_layer else ["Gradient"], horizontal=True,
                     key="inspect.sal_method", help="Grad-CAM: which regions of a conv layer's maps raise the "
                     "class score. Gradient: how much each input pixel moves the score.")
    layer = None
    if method == "Grad-CAM":
        iw.keep_valid("inspect.sal_layer", layers, cam_layer)
        layer = c.selectbox("Layer", layers, key="inspect.sal_layer", help="Grad-CAM's usual choice: the last conv "
                            "layer's output, after its activation. Earlier layers: finer, less class-specific.")
    st.caption(f"Test image #{index}: true {test.classes[preds.y[index]]}, predicted "
               f"{test.classes[preds.pred[index]]}. Choose another image in the Feature maps tab.")
    heat = iw.saliency(*stamp_args, index, target, method, layer)
    title = f"{method} for '{test.classes[target]}'" + (f" at {layer}" if layer else "")
    st.plotly_chart(plots.saliency_figure(plots.to_rgb(test.images[index]), heat, title), config=CHART)


def main() -> None:
    record = iw.run_picker()
    weights = iw.weights_header(record) if record else None
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
        index, maps = iw.image_card(preds, test, stamp_args)
        feature_maps_tab(maps)
    with tabs[2]:
        confusion_tab(preds, test, stamp_args)
    with tabs[3]:
        mistakes_tab(preds, test)
    with tabs[4]:
        saliency_tab(net, preds, test, index, stamp_args)


main()
