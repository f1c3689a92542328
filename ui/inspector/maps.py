"""Inspect's two views across the saved epochs: the Class map (a fixed sample of test pictures laid out in 2-D
by the last hidden layer's features, PCA at once or t-SNE on request; a click opens a picture in the other
views) and Dreams (the picture each class, or each filter of a conv layer, scores highest on). The numbers are
cnn_core.analysis.embedding's and dream's; here they are cached per run, weights file and method, and drawn."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from ui import views
from ui.figures import CONFIG, images
from ui.inspector import state
from ui.inspector import widgets as iw

if TYPE_CHECKING:
    from ui.inspector.tabs import Context

METHODS = {"pca": "PCA", "tsne": "t-SNE"}
THUMB = 112          # px a side of a dream picture (28 px x 4): three to a row on a 400 px phone
MAP_HEIGHT = 560


# ---- caches: per (run folder, weights key, file mtime[, method or layer]) ------------------------------------
@st.cache_data(max_entries=48, show_spinner=False)
def class_map(path: str, key: str, stamp: int, method: str):
    """embedding.ClassMap of the fixed sample of test pictures (embedding.sample) under these weights."""
    from cnn_core.analysis import embedding, inspection

    net, meta = iw.model(path, key, stamp)
    test = iw.test_for(meta)
    inspection.check_fits(test, meta)
    return embedding.class_map(net, meta, test.images, test.y, embedding.sample(test.y.numpy()), method)


@st.cache_data(max_entries=48, show_spinner=False)
def dreams(path: str, key: str, stamp: int, layer: str | None):
    """dream.Dreams of every class (layer None) or of the first filters of conv feature layer `layer`."""
    from cnn_core.analysis import dream

    net, meta = iw.model(path, key, stamp)
    return dream.classes(net, meta) if layer is None else dream.filters(net, meta, layer)


# ---- the epoch picked in a tab -----------------------------------------------------------------------------
def _epoch_weights(ctx: Context, key: str) -> tuple[tuple, list]:
    """An epoch slider over the run's snapshots (following the page's weights until moved); the stamp
    (path, weights key, mtime) of the picked epoch, and every snapshot's Weights. No snapshots: the page's
    weights and why there are none."""
    from cnn_core.analysis import snapshots

    path = Path(ctx.stamp[0])
    snaps = [w for w in snapshots.weights_choices(path) if w.epoch is not None]
    if not snaps:
        why = "why: the note above" if snapshots.snapshot_note(path) else "none saved"
        st.caption(f"No per-epoch snapshots to scrub through ({why}): this view shows the weights chosen above.")
        return ctx.stamp, []
    by_epoch = {w.epoch: w for w in snaps}
    page_key = ctx.stamp[1]          # "epoch-003", "best" or "latest"
    page_epoch = next((w.epoch for w in snaps if w.key == page_key),
                      ctx.meta.get("epoch") if page_key == "best" else None)
    iw.reset_on(key, page_epoch if page_epoch in by_epoch else snaps[-1].epoch, ctx.stamp)
    if len(snaps) == 1:
        st.caption(f"Only {snaps[0].label} is saved so far.")
        chosen = snaps[0]
    else:
        iw.keep_valid(key, list(by_epoch), snaps[-1].epoch)
        epoch = st.select_slider("Epoch", list(by_epoch), key=key,
                                 format_func=lambda e: f"epoch {e}" + (" (untrained)" if e == 0 else ""),
                                 help="The run's saved snapshots: epoch 0 is before any training. It follows "
                                      "the weights chosen above until you move it.")
        chosen = by_epoch[epoch]
    return (str(path), chosen.key, chosen.stamp), snaps


# ---- Class map ---------------------------------------------------------------------------------------------
def class_map_view(ctx: Context) -> None:
    """The fixed sample of test pictures in 2-D by the last hidden features, at a saved epoch."""
    st.markdown("Each dot is one of the same test pictures, placed by what the network's last hidden layer makes "
                "of it (the features its final layer reads), squeezed into two dimensions; its colour is the "
                "true class and ✕ marks one the model gets wrong. Move the epoch: before training the classes lie "
                "mixed, and as the network learns they pull apart into islands it can tell apart.")
    if ctx.test is None:
        st.info("The class map needs the run's test pictures, which cannot be used here (see Feature maps).")
        return
    a, b = st.columns([1, 2], vertical_alignment="bottom")
    method = a.radio("Map", list(METHODS), key=state.MAP_METHOD, format_func=METHODS.get, horizontal=True,
                     help="PCA: the two directions along which the features vary most, a straight projection "
                          "(instant). t-SNE: keeps each picture's nearest neighbours near it; clusters show "
                          "clearly, but distances between clusters mean little (a few seconds).")
    with b:
        stamp, snaps = _epoch_weights(ctx, state.MAP_EPOCH)
    try:
        cmap = _oriented_map(stamp, method, snaps)
    except ValueError as exc:      # no dense layer, a test set that does not fit
        st.info(f"No class map for this model: {views.md(exc)}.")
        return
    epoch = next((w.epoch for w in snaps if w.key == stamp[1]), None)
    classes = ctx.test.classes
    left, right = st.columns([3, 1], gap="medium")
    fig = _map_figure(cmap, classes, st.session_state.get(state.MAP_PICKED), epoch)
    left.plotly_chart(fig, config=CONFIG, key=state.MAP_CHART, on_select=_on_pick, selection_mode="points")
    left.markdown(_knn_text(cmap, len(classes)))
    with right:
        _picked_card(ctx, cmap, epoch)


def _oriented_map(stamp: tuple, method: str, snaps: list):
    """The map, each axis's sign flipped to agree with the last snapshot's PCA map (t-SNE: with this epoch's
    PCA map, which it starts from), so that scrubbing epochs does not mirror the picture for no reason."""
    if method == "tsne":
        with st.spinner("t-SNE takes a few seconds (once per epoch: the map is kept)…"):
            cmap = class_map(*stamp, "tsne")
        ref = _oriented_map(stamp, "pca", snaps).points
    else:
        cmap = class_map(*stamp, "pca")
        if not snaps or snaps[-1].key == stamp[1]:
            return cmap
        ref = class_map(stamp[0], snaps[-1].key, snaps[-1].stamp, "pca").points
    cmap.points = cmap.points * _signs(cmap.points, ref)     # a copy: st.cache_data hands out copies
    return cmap


def _signs(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(2,) of +1/-1: each axis of `points` (N, 2) turned to correlate positively with the same axis of `ref`."""
    if points.shape != ref.shape:
        return np.ones(2, np.float32)
    dot = ((points - points.mean(0)) * (ref - ref.mean(0))).sum(0)       # (2,)
    return np.where(dot < 0, -1.0, 1.0).astype(np.float32)


def _map_figure(cmap, classes, picked: int | None, epoch: int | None):
    """The scatter: a trace per true class (legend: class names), ✕ for a mistake, the clicked picture ringed."""
    import pandas as pd
    import plotly.express as px
    import plotly.graph_objects as go

    names = [views.plot_text(c) for c in classes]
    frame = pd.DataFrame({"x": cmap.points[:, 0], "y": cmap.points[:, 1], "index": cmap.indices,
                          "class": [names[c] for c in cmap.y], "predicted": [names[c] for c in cmap.pred],
                          "wrong": cmap.y != cmap.pred})
    palette = px.colors.qualitative.D3 if len(classes) <= 10 else px.colors.qualitative.Alphabet
    axis = "PC" if cmap.method == "pca" else "t-SNE "
    when = f"epoch {epoch}" if epoch is not None else "the chosen weights"
    fig = px.scatter(frame, x="x", y="y", color="class", category_orders={"class": names}, render_mode="svg",
                     custom_data=["index", "class", "predicted"], color_discrete_sequence=palette,
                     labels={"x": f"{axis}1", "y": f"{axis}2", "class": "true class"}, height=MAP_HEIGHT,
                     title=f"{METHODS[cmap.method]} of the last hidden features ({cmap.dims:,} a picture) · {when}")
    for trace in fig.data:
        wrong = frame.loc[frame["class"] == trace.name, "wrong"].to_numpy()
        trace.marker.symbol = np.where(wrong, "x", "circle").tolist()
        trace.marker.size = np.where(wrong, 9, 7).tolist()
        trace.unselected = dict(marker=dict(opacity=0.9))          # a click must not fade the whole map
        trace.selected = dict(marker=dict(opacity=1))
    fig.update_traces(opacity=0.9, hovertemplate="test image #%{customdata[0]}<br>true %{customdata[1]}"
                                                 "<br>predicted %{customdata[2]}<extra></extra>")
    fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="misclassified",
                             marker=dict(symbol="x", color="#444", size=8)))
    at = np.flatnonzero(cmap.indices == picked) if picked is not None else []
    if len(at):
        fig.add_trace(go.Scatter(x=cmap.points[at, 0], y=cmap.points[at, 1], mode="markers", hoverinfo="skip",
                                 name=f"#{picked} (clicked)", marker=dict(symbol="circle-open", size=18,
                                                                          color="black", line=dict(width=2))))
    fig.update_layout(margin=dict(l=10, r=10, t=40, b=10), title_font_size=14, plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="top", y=-0.12, x=0, title_text="true class "),
                      clickmode="event+select", dragmode="pan")
    fig.update_xaxes(showticklabels=False, gridcolor="#eee", zeroline=False)
    fig.update_yaxes(showticklabels=False, gridcolor="#eee", zeroline=False)
    return fig


def _knn_text(cmap, k: int) -> str:
    """How well the 2-D map keeps the classes apart, next to the same measure in the full features."""
    return (f"**How well the map keeps the classes apart: 5 nearest neighbours agree {cmap.knn_acc:.0%}.** "
            f"For {cmap.knn_acc:.0%} of these {len(cmap.indices):,} pictures, most of their 5 nearest dots are of "
            f"their own class (by chance: about {1 / k:.0%}). In the full {cmap.dims:,} features, before squeezing "
            f"them into 2-D: {cmap.knn_acc_full:.0%}.")


def _on_pick() -> None:
    """A click on a dot (before the page reruns): that test picture becomes Feature maps' chosen image, which
    the views that explain an image use too."""
    event = st.session_state.get(state.MAP_CHART) or {}
    points = (event.get("selection") or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if not data:
        return
    index = int(data[0])
    st.session_state[state.MAP_PICKED] = index
    st.session_state[state.IMG_MODE] = "index"
    st.session_state[state.IMG_N] = index


def _picked_card(ctx: Context, cmap, epoch: int | None) -> None:
    """The clicked picture (the map cannot show one on hover), or what a click does."""
    picked = st.session_state.get(state.MAP_PICKED)
    if picked is None or not 0 <= picked < len(ctx.test.y):
        st.caption("Hover over (or tap) a dot for its index and classes; click one to see its picture here and "
                   "open it in Feature maps and the views that explain its image.")
        return
    classes, true = ctx.test.classes, int(ctx.test.y[picked])
    at = np.flatnonzero(cmap.indices == picked)
    said = f", read as {views.md(classes[cmap.pred[at[0]]])}" if len(at) else ""
    when = f" at epoch {epoch}" if epoch is not None and len(at) else ""
    st.image(images.to_rgb(ctx.test.images[picked], scale=5), width=140, output_format="PNG",
             alt=f"Test image {picked}, a {classes[true]}")
    st.markdown(f"**Test image #{picked}**: a {views.md(classes[true])}{said}{when}.")
    st.caption(f"Feature maps, and the views that explain its image, now show test image #{picked}.")


# ---- Dreams ----------------------------------------------------------------------------------------------------
def dreams_view(ctx: Context) -> None:
    """The picture each class (or each of a conv layer's first filters) scores highest on, at a saved epoch."""
    from cnn_core.analysis import inspection

    shown = {n for n, _ in inspection.feature_layers(ctx.net)}
    convs = [n.removeprefix("features.") for n, _ in inspection.conv_filters(ctx.net)]
    convs = [n for n in convs if n in shown]
    filters_now = st.session_state.get(state.DREAM_WHAT) == "filters"    # the radio's value, before it is drawn
    cols = st.columns([1, 1, 2] if filters_now else [1, 2], vertical_alignment="bottom")  # none empty: a gap on phones
    a, b, c = cols[0], cols[1], cols[-1]
    what = a.radio("Show", ["classes", "filters"], key=state.DREAM_WHAT, horizontal=True,
                   format_func={"classes": "Classes", "filters": "Filters"}.get,
                   help="Classes: the picture that gives each class the highest score. Filters: the picture that "
                        "excites each of a conv layer's first 16 filters most.")
    layer = None
    if what == "filters":
        if not convs:
            st.info("This model has no conv layers: it has no filters to dream of. Its classes can be shown.")
            return
        iw.keep_valid(state.DREAM_LAYER, convs, convs[0])
        layer = b.selectbox("Conv layer", convs, key=state.DREAM_LAYER,
                            help="Early layers respond to edges and spots; later ones to larger parts of a shape.")
    with c:
        stamp, _ = _epoch_weights(ctx, state.DREAM_EPOCH)
    if layer is None:
        st.markdown("Each picture starts as grey noise and is changed, step by step, until the network's score "
                    "for one class is as high as it gets: not a real image, the network's own idea of that class. "
                    "Look for strokes where that class's pictures have them; the percentage is how sure the "
                    "network is of its own picture, and near 100% for a blur a person cannot read shows how "
                    "little it needs to be sure.")
    else:
        st.markdown(f"The same climb from grey noise, towards the picture that makes each of "
                    f"{views.md(layer)}'s first filters respond most over its whole map: the pattern that filter "
                    "looks for, repeated. The number under each is that mean response. A first layer's filter often "
                    "gets a plain white or black picture (it weighs a small patch of pixels, and a flat picture "
                    "fills every patch); deeper layers show strokes and parts of shapes.")
    try:
        with st.spinner("Dreaming: climbing from grey noise…"):
            found = dreams(*stamp, layer)
    except ValueError as exc:      # a layer these weights do not have
        st.info(f"No dreams for these weights: {views.md(exc)}.")
        return
    pictures = [_tile(p) for p in found.pictures]
    if layer is None:
        captions = [f"{views.md(n)} · {_share(c)}" for n, c in zip(found.labels, found.confidence)]
        alts = [f"What the model sees as a {n}: {_share(c)} sure" for n, c in zip(found.labels, found.confidence)]
    else:
        captions = [f"{views.md(n)} · {c:.2f}" for n, c in zip(found.labels, found.confidence)]
        alts = [f"The pattern filter {n} responds to most" for n in found.labels]
    st.image(pictures, caption=captions, width=pictures[0].shape[1], alt=alts, output_format="PNG")  # JPEG blurs


def _tile(picture: np.ndarray) -> np.ndarray:
    """A (C, H, W) 0..1 picture as an RGBA tile about THUMB px wide: sharp pixels, a grey frame (a white or
    black picture still shows its edge) and a clear margin beside it (st.image sets a list edge to edge)."""
    rgb = images.to_rgb((picture * 255).round().astype(np.uint8), scale=max(1, THUMB // picture.shape[-1]))
    framed = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), constant_values=150)
    tile = np.concatenate([framed, np.full((*framed.shape[:2], 1), 255, np.uint8)], axis=2)   # (h, w, 4)
    return np.pad(tile, ((0, 0), (4, 4), (0, 0)), constant_values=0)                          # alpha 0 margin


def _share(p: float) -> str:
    """A probability as a person reads it: '<1%' rather than a '0%' that reads as never."""
    return "<1%" if p < 0.005 else f"{p:.0%}"
