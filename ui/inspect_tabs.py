"""The Inspect page's views, one function per tab, each given the run's loaded weights (and, but for
Filters, its test-set predictions) in a Context. A new view: its numbers in cnn_core/inspection.py, its
function here and a line in TABS; a new kind of picture goes to ui/figures/images.py."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from cnn_core import inspection
from ui import inspect_widgets as iw
from ui.figures import CONFIG, images


@dataclass
class Context:
    """What a view draws from: the model and its metadata, the cache key of its weights, and (when the
    test set can be used) the predictions on it, the test set, the chosen test image."""
    net: object
    meta: dict
    stamp: tuple            # (run folder, weights key, file mtime): the caches' key
    preds: object = None    # inspection.Predictions
    test: object = None     # inspection.TestSet
    index: int = 0          # the test image chosen on Feature maps


def filters(ctx: Context) -> None:
    """The conv filters of a layer (or, with no conv layer, the first dense layer's weights as images)."""
    net, stamp_args = ctx.net, ctx.stamp
    layers = dict(inspection.conv_filters(net))
    if not layers:
        dense = inspection.dense_templates(net)
        st.info("This model has no conv layers: it sees the image as one flat vector. Below, each hidden "
                "unit of its first dense layer shows its weights as an image: the pattern that excites it most.")
        if dense:
            st.plotly_chart(images.filters_figure(dense[1], dense[0], per_filter=True), config=CONFIG)
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
    st.plotly_chart(images.filters_figure(layers[name], name, per_filter), config=CONFIG)
    if grads:
        g = iw.filter_gradients(*stamp_args)[name]
        st.plotly_chart(images.filters_figure(g, f"gradient of {name}", per_filter), config=CONFIG)


def feature_maps(ctx: Context) -> None:
    """A test image (picked here, used by Saliency too), its top-3, and every layer's output for it."""
    ctx.index, maps = iw.image_card(ctx.preds, ctx.test, ctx.stamp)
    if not maps:
        st.info("This model has no conv layers, so there are no feature maps: it flattens the image at once.")
        return
    st.caption("Each layer's output for the chosen image, channel by channel (left to right, top to bottom), "
               "on one colour scale per layer.")
    for row in range(0, len(maps), 2):      # a row of two at a time: stacked on a phone, still in network order
        for col, (i, fm) in zip(st.columns(2), enumerate(maps[row:row + 2], start=row)):
            title = f"{fm.name} · {fm.kind} · output {' × '.join(map(str, fm.shape))}"
            col.plotly_chart(images.feature_map_figure(fm.maps, title), config=CONFIG, key=f"inspect.fm.{i}")


def confusion(ctx: Context) -> None:
    """The confusion matrix, the per-class report, and the images of one cell."""
    preds, test, stamp_args = ctx.preds, ctx.test, ctx.stamp
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
    left.plotly_chart(images.confusion_figure(cm, test.classes, normalized, highlight=(t, p)), config=CONFIG)
    right.table(iw.class_report_text(inspection.class_report(cm, test.classes)))
    right.caption("A class's accuracy is its recall: of the images that are X, the share called X. "
                  "Precision: of the images called X, the share that are X. – : the model never called any "
                  "image X (or there is none), so there is nothing to measure.")
    st.markdown(f"**True {test.classes[t]}, predicted {test.classes[p]}:** {cm[t, p]} image(s), most confident first")
    iw.gallery(inspection.cell_indices(preds, t, p), test.images, preds, test.classes, 24)


def mistakes(ctx: Context) -> None:
    """The test images the model gets wrong, most confident first."""
    preds, test = ctx.preds, ctx.test
    wrong = inspection.mistakes(preds)
    st.markdown(f"**{len(wrong):,} mistakes** of {len(preds.y):,} test images, the most confident first "
                "(true → predicted, confidence).")
    if not len(wrong):
        st.success("These weights classify every test image correctly. Try an earlier epoch on the slider.")
        return
    limit = st.slider("Show", 8, 96, 32, step=8, key="inspect.mistakes_n")
    iw.gallery(wrong, test.images, preds, test.classes, limit)


def saliency(ctx: Context) -> None:
    """Where the model looks in the chosen test image: Grad-CAM or input gradients."""
    net, preds, test, index, stamp_args = ctx.net, ctx.preds, ctx.test, ctx.index, ctx.stamp
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
    st.plotly_chart(images.saliency_figure(images.to_rgb(test.images[index]), heat, title), config=CONFIG)


def classify_many(ctx: Context) -> None:
    """Many pictures of a person's own read by these weights (DIGITS' Classify Many)."""
    from ui import own_data

    own_data.classify_many(ctx.net, ctx.meta, "inspect")


TABS = {"Filters": filters, "Feature maps": feature_maps, "Confusion": confusion, "Mistakes": mistakes,
        "Saliency": saliency, "Classify many": classify_many}
NEEDS_TEST = ("Feature maps", "Confusion", "Mistakes", "Saliency")   # the others draw from the weights alone
