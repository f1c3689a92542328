"""The Inspect page's views, one function per tab, each given the run's loaded weights (and, but for
Filters, its test-set predictions) in a Context. A new view: its numbers in cnn_core/analysis/inspection.py, its
function here and a line in TABS (the page and its browser test read TABS); its widget keys in state.py; a new
kind of picture goes to ui/figures/images.py."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import streamlit as st

from cnn_core.analysis import inspection
from ui import views
from ui.figures import CONFIG, images
from ui.inspector import maps, state
from ui.inspector import widgets as iw
from ui.inspector.fool import fool_it


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
    iw.keep_valid(state.FILTER_LAYER, list(layers), next(iter(layers)))
    name = a.selectbox("Conv layer", list(layers), key=state.FILTER_LAYER,
                       format_func=lambda n: f"{n} · {' × '.join(map(str, layers[n].shape))}")
    per_filter = b.toggle("Per-filter colour scale", key=state.PER_FILTER,
                          help="Off: one colour scale for the whole layer, so strong and weak filters compare. "
                               "On: each filter stretched to its own range, so every pattern shows.")
    grads = c.toggle("Gradients on a batch", key=state.GRADS,
                     help="d(loss)/d(weight) on 64 test images: how the next step would change each kernel.")
    st.plotly_chart(images.filters_figure(layers[name], name, per_filter), config=CONFIG)
    if grads:
        g = iw.filter_gradients(*stamp_args)[name]
        st.plotly_chart(images.filters_figure(g, f"gradient of {name}", per_filter), config=CONFIG)


def feature_maps(ctx: Context) -> None:
    """A test image (picked here, used by Attribution and Fool it too), its top-3, and every layer's output."""
    ctx.index, maps = iw.image_card(ctx.preds, ctx.test, ctx.stamp)
    if not maps:
        st.info("This model has no conv layers, so there are no feature maps: it flattens the image at once.")
        return
    kernel_to_map(ctx, maps)
    st.caption("Each layer's output for the chosen image, channel by channel (left to right, top to bottom), "
               "on one colour scale per layer.")
    for row in range(0, len(maps), 2):      # a row of two at a time: stacked on a phone, still in network order
        for col, (i, fm) in zip(st.columns(2), enumerate(maps[row:row + 2], start=row)):
            title = f"{fm.name} · {fm.kind} · output {' × '.join(map(str, fm.shape))}"
            col.plotly_chart(images.feature_map_figure(fm.maps, title), config=CONFIG, key=state.feature_map(i))


def kernel_to_map(ctx: Context, maps: list) -> None:
    """CNN Explainer's link: click a kernel of a conv layer and see the map it makes from the chosen image."""
    layers = dict(inspection.conv_filters(ctx.net))
    by_name = {fm.name: fm for fm in maps}
    shown = [n for n in layers if n.removeprefix("features.") in by_name]
    if not shown:
        return
    st.markdown("**A kernel and the map it makes.** Click a kernel: beside it, what it produces from this image "
                "(before the activation).")
    a, b = st.columns([1, 1], gap="medium")
    iw.keep_valid(state.K_LAYER, shown, shown[0])
    name = a.selectbox("Conv layer", shown, key=state.K_LAYER)
    event = a.plotly_chart(images.kernel_picker_figure(layers[name], name), config=CONFIG, on_select="rerun",
                           selection_mode="points", key=state.kernels(name))
    points = (event.selection.points if event and event.selection else None) or []
    k = int(points[0]["customdata"]) if points and points[0].get("customdata") is not None else 0
    fm = by_name[name.removeprefix("features.")]
    weight = layers[name][k]                                       # (in, kh, kw)
    b.plotly_chart(images.filters_figure(weight[None], f"{name} filter {k} · {' × '.join(map(str, weight.shape))}"),
                   config=CONFIG, key=state.KERNEL_ONE)
    b.plotly_chart(images.feature_map_figure(fm.maps[k:k + 1], f"its map: {name} channel {k} · "
                                             f"{' × '.join(map(str, fm.maps.shape[1:]))}", height=260),
                   config=CONFIG, key=state.KERNEL_MAP)
    b.caption(f"Filter {k} slides over the {weight.shape[0]} input channel(s); at each position it multiplies "
              "its weights by the pixels under it and adds them up (plus its bias): one value of this map.")


def confusion(ctx: Context) -> None:
    """The confusion matrix, the per-class report, and the images of one cell."""
    preds, test, stamp_args = ctx.preds, ctx.test, ctx.stamp
    k = len(test.classes)
    cm = inspection.confusion_matrix(preds.y, preds.pred, k)
    st.markdown(f"**Test accuracy {preds.correct.mean():.2%}** on {len(preds.y):,} test images.")
    worst = inspection.most_confused(cm)
    iw.reset_on(state.CM_TRUE, worst[0], stamp_args)
    iw.reset_on(state.CM_PRED, worst[1], stamp_args)
    a, b, c = st.columns(3)
    normalized = a.toggle("Normalize rows", key=state.CM_NORM, help="Show each true class's images as shares.")
    name = test.classes.__getitem__
    t = b.selectbox("True class", range(k), key=state.CM_TRUE, format_func=name)
    p = c.selectbox("Predicted class", range(k), key=state.CM_PRED, format_func=name)
    left, right = st.columns(2)
    chart = state.cm_chart(t, p)        # a new chart for each pair: a click on the last cell clicked selects again
    left.plotly_chart(images.confusion_figure(cm, test.classes, normalized, highlight=(t, p), clickable=True),
                      config=CONFIG, on_select=partial(_open_cell, chart), selection_mode="points", key=chart)
    left.caption("Click a cell to see its pictures below.")
    right.table(iw.class_report_text(inspection.class_report(cm, test.classes)))
    right.caption("A class's accuracy is its recall: of the images that are X, the share called X. "
                  "Precision: of the images called X, the share that are X. – : the model never called any "
                  "image X (or there is none), so there is nothing to measure.")
    st.markdown(f"**True {views.md(test.classes[t])}, predicted {views.md(test.classes[p])}:** {cm[t, p]} image(s), "
                "most confident first")
    iw.gallery(inspection.cell_indices(preds, t, p), test.images, preds, test.classes, 24)


def _open_cell(chart: str) -> None:
    """A click on a cell of the confusion matrix (before the page reruns): its pair becomes the true and
    predicted class of the boxes above it, and so of the pictures below."""
    points = ((st.session_state.get(chart) or {}).get("selection") or {}).get("points") or []
    cell = points[0].get("customdata") if points else None
    if cell:
        st.session_state[state.CM_TRUE], st.session_state[state.CM_PRED] = int(cell[0]), int(cell[1])


def mistakes(ctx: Context) -> None:
    """The test images the model gets wrong, most confident first."""
    preds, test = ctx.preds, ctx.test
    wrong = inspection.mistakes(preds)
    st.markdown(f"**{views.count(len(wrong), 'mistake')}** of {views.count(len(preds.y), 'test image')}, the most confident first "
                "(true → predicted, confidence).")
    if not len(wrong):
        st.success("These weights classify every test image correctly. Try an earlier epoch on the slider.")
        return
    limit = st.slider("Show", 8, 96, 32, step=8, key=state.MISTAKES_N)
    iw.gallery(wrong, test.images, preds, test.classes, limit)


def attributions(ctx: Context) -> None:
    """Which pixels made the model say a class in the chosen test image: captum's four maps side by side."""
    from cnn_core.analysis import attribution

    net, preds, test, index, stamp_args = ctx.net, ctx.preds, ctx.test, ctx.index, ctx.stamp
    layers = [name for name, _ in inspection.feature_layers(net)]
    cam_layer = inspection.default_cam_layer(net)
    a, b = st.columns(2)
    iw.reset_on(state.ATTR_CLASS, int(preds.pred[index]), (stamp_args, index))
    target = a.selectbox("Explain class", range(len(test.classes)), key=state.ATTR_CLASS,
                         format_func=test.classes.__getitem__, help="Set to the predicted class for each new image.")
    layer = None
    if cam_layer:
        iw.keep_valid(state.ATTR_LAYER, layers, cam_layer)
        layer = b.selectbox("Grad-CAM layer", layers, key=state.ATTR_LAYER, help="Grad-CAM's usual choice: the "
                            "last conv layer's output, after its activation. Earlier layers: finer, less "
                            "class-specific.")
    st.caption(f"Test image #{index}: true {views.md(test.classes[preds.y[index]])}, predicted "
               f"{views.md(test.classes[preds.pred[index]])}. Choose another image in the Feature maps tab. "
               "Red: the pixel speaks for the class, blue: against it (the two signed maps); orange: where "
               "the others are strongest. Each map is scaled to its own largest value.")
    heats = iw.attributions(*stamp_args, index, target)          # a copy: st.cache_data hands out copies
    if layer and layer != cam_layer:
        heats["grad-cam"] = iw.grad_cam(*stamp_args, index, target, layer)
    picture = images.to_rgb(test.images[index])
    for col, (method, heat) in zip(st.columns(len(heats)), heats.items()):
        name = "Grad-CAM" if method == "grad-cam" else method.capitalize()
        title = f"{name} · {views.plot_text(layer)}" if method == "grad-cam" else name
        col.plotly_chart(images.attribution_figure(picture, heat, title, method in attribution.SIGNED),
                         config=CONFIG, key=state.attribution_map(method))
        col.caption(f"**{name}:** {attribution.METHODS[method]}.")
        if method == "grad-cam" and (note := _tiny_cam_note(iw.map_sizes(*stamp_args), layer, heat.shape)):
            col.caption(note)


def _tiny_cam_note(sizes: dict, layer: str, picture: tuple[int, int]) -> str | None:
    """The caveat of a Grad-CAM map at or below inspection.TINY_CAM a side, with the nearest finer layer."""
    h, w = sizes.get(layer, (picture[0], picture[1]))
    if max(h, w) > inspection.TINY_CAM:
        return None
    finer = inspection.finer_cam_layer(sizes, layer)
    return (f":material/warning: {views.md(layer)}'s maps are only {h}×{w}: upsampled to the "
            f"{picture[1]}×{picture[0]} picture, each cell lights a broad block, often of the background. "
            + (f"Try an earlier layer ({views.md(finer)}, {sizes[finer][0]}×{sizes[finer][1]}) for a finer map."
               if finer else "An earlier layer gives a finer map."))


def histograms(ctx: Context) -> None:
    """TensorBoard's histograms: one layer's weights over the saved epochs, and its gradients as logged at
    the end of every epoch, with the epoch chosen above marked."""
    import plotly.express as px

    from cnn_core.analysis import snapshots

    path = ctx.stamp[0]
    weights = iw.weight_histories(str(path), tuple(snapshots.snapshot_epochs(path)))
    grads = inspection.gradient_history(path)
    names = list(dict.fromkeys([*weights, *grads]))
    if not names:
        st.info("This run saved no snapshots and logged no gradients (runs made before histograms were "
                "recorded, or a model too big for snapshots): there is nothing to draw.")
        return
    iw.keep_valid(state.HIST_LAYER, names, names[0])
    name = st.selectbox("Layer", names, key=state.HIST_LAYER,
                        help="Conv and linear layers: the values of their weight tensors.")
    chosen = ctx.meta.get("epoch") if isinstance(ctx.meta.get("epoch"), int) else None
    left, right = st.columns(2)
    if name in weights and len(weights[name]) >= 1:
        frame = inspection.histogram_frame(weights[name])
        grid = frame.pivot(index="value", columns="epoch", values="share")
        fig = px.imshow(grid, origin="lower", aspect="auto", color_continuous_scale="Blues",
                        labels={"x": "epoch", "y": "weight value", "color": "share"},
                        title=f"{name}: weights over epochs (0 = before training)")
        fig.update_yaxes(tickformat=".2g")
        if chosen is not None:
            fig.add_vline(x=chosen, line=dict(color="#e65100", width=2))
        left.plotly_chart(fig, config=CONFIG, key=state.HIST_W)
    else:
        left.info("No snapshots of this layer's weights (the run saved none).")
    if name in grads:
        _gradients(right, name, grads[name], chosen)
    else:
        right.info("No gradients were logged for this run (runs made before this version).")
    st.caption("Weights: each column is one saved epoch, darker where more weights have that value; a "
               "distribution that widens or drifts shows the layer learning. Gradients: how the last step of each "
               "epoch would move the weights. Their size (log scale) shrinks slowly as training settles; a size "
               "that falls by powers of ten is a vanishing gradient, one that climbs an exploding one. The orange "
               "line marks the epoch picked above; its gradients' spread is drawn below the size.")


def _gradients(where, name: str, by_epoch: dict[int, dict], chosen: int | None) -> None:
    """The gradient's size (RMS) at each epoch's end, on a log axis that shows vanishing and exploding
    alike; under it the histogram of the picked epoch (the last logged one before it, for epoch 0 or best)."""
    import plotly.express as px

    sizes = inspection.gradient_sizes(by_epoch)
    fig = px.line(sizes, x="epoch", y="rms", markers=True, log_y=True, height=300,
                  title=f"{name}: gradient size at each epoch's end",
                  labels={"rms": "root mean square" + (" (estimated)" if sizes["estimated"].any() else "")})
    fig.update_traces(line_color="#e65100")
    fig.update_xaxes(dtick=1 if len(sizes) <= 20 else None)
    if chosen is not None and chosen >= 1:
        fig.add_vline(x=chosen, line=dict(color="#e65100", width=2, dash="dot"))
    where.plotly_chart(fig, config=CONFIG, key=state.HIST_G)
    shown = max([e for e in by_epoch if chosen is None or e <= max(chosen, 1)], default=min(by_epoch))
    frame = inspection.gradient_frame({shown: by_epoch[shown]})
    bars = px.bar(frame, x="value", y="share", height=260, title=f"its spread at the end of epoch {shown}",
                  labels={"value": "gradient value", "share": "share of the weights"})
    bars.update_traces(marker_color="#fb8c00")
    bars.update_layout(bargap=0)
    bars.update_xaxes(tickformat=".1e")
    where.plotly_chart(bars, config=CONFIG, key=state.HIST_G_SPREAD)


def classify_many(ctx: Context) -> None:
    """Many pictures of a person's own read by these weights (DIGITS' Classify Many)."""
    from ui import own_data

    own_data.classify_many(ctx.net, ctx.meta, state.MANY, state.many)


TABS = {"Filters": filters, "Feature maps": feature_maps, "Confusion": confusion, "Mistakes": mistakes,
        "Attribution": attributions, "Fool it": fool_it, "Histograms": histograms, "Class map": maps.class_map_view,
        "Dreams": maps.dreams_view, "Classify many": classify_many}
NEEDS_TEST = ("Feature maps", "Confusion", "Mistakes", "Attribution", "Fool it")   # the others: the weights alone
ASKS_FIRST = ("Classify many",)   # a form first: it draws only what it is then given (the others draw at once)
