"""Plotly figures for the Inspect page: filter grids, feature-map mosaics, confusion matrix, saliency overlay.

Each builder takes numpy arrays from cnn_core.inspection and returns a go.Figure; none runs a model.
Many small maps become ONE heatmap (a mosaic with blank gaps), which draws far faster than subplots.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

GAP = 1                  # blank pixels between tiles of a mosaic
DIVERGING = "RdBu_r"     # weights: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"   # activations
_MARGIN = dict(l=10, r=10, t=40, b=10)


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """(rows, cols) of a near-square grid for n tiles, at most max_cols wide."""
    cols = max(1, min(max_cols, math.ceil(math.sqrt(n))))
    return math.ceil(n / cols), cols


def mosaic(tiles: np.ndarray, cols: int, fill: float = np.nan) -> np.ndarray:
    """(N, h, w[, 3]) tiles -> one (rows*(h+GAP)-GAP, cols*(w+GAP)-GAP[, 3]) array, row by row; gaps = fill."""
    n, h, w = tiles.shape[:3]
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + GAP) - GAP, cols * (w + GAP) - GAP, *tiles.shape[3:]), fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + GAP):r * (h + GAP) + h, c * (w + GAP):c * (w + GAP) + w] = tiles[i]
    return out


def _image_layout(fig: go.Figure, title: str, rows_px: int, cols_px: int, max_height: int = 700) -> go.Figure:
    px = max(2.0, min(24.0, 640 / max(cols_px, 1), max_height / max(rows_px, 1)))   # screen px per pixel
    fig.update_layout(title=dict(text=title, font=dict(size=14)), margin=_MARGIN,
                      height=int(min(max_height, max(180, rows_px * px + 60))), plot_bgcolor="white")
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return fig


def _scaled(w: np.ndarray, per_filter: bool) -> tuple[np.ndarray, float]:
    """Weights divided by the largest |w| of the layer (shared) or of each filter (axis 0): -1..1."""
    if per_filter:
        top = np.abs(w).reshape(len(w), -1).max(1).reshape(-1, *([1] * (w.ndim - 1)))
        return w / np.where(top > 0, top, 1), 1.0
    top = float(np.abs(w).max()) or 1.0
    return w / top, top


def filters_figure(weight: np.ndarray, title: str, per_filter: bool = False, rgb: bool = True,
                   max_filters: int = 64, max_inputs: int = 64) -> go.Figure:
    """Kernels (out, in, kh, kw) as a picture. RGB input (in = 3) with rgb: one colour tile per filter
    (grey = 0); one input channel: one tile per filter; else one row per filter, one column per input
    channel. per_filter: each filter scaled to its own largest |weight| instead of the layer's."""
    w = weight[:max_filters, :max_inputs].astype(np.float32)
    out_ch, in_ch, kh, kw = w.shape
    shown = "" if w.shape == weight.shape else f" (first {out_ch} of {weight.shape[0]} filters" \
        f"{f' × {in_ch} of {weight.shape[1]} inputs' if in_ch < weight.shape[1] else ''})"
    scaled, top = _scaled(w, per_filter)
    scale_note = "each filter to its own range" if per_filter else f"shared range ±{top:.3g}"
    if in_ch == 3 and rgb:
        rows, cols = grid_shape(out_ch)
        tiles = (scaled.transpose(0, 2, 3, 1) * 127.5 + 127.5).clip(0, 255)        # (out, kh, kw, 3)
        z = mosaic(tiles, cols, fill=255.0).astype(np.uint8)
        fig = go.Figure(go.Image(z=z, hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>"))
        return _image_layout(fig, f"{title}{shown} · colour, {scale_note}", *z.shape[:2])
    if in_ch == 1:
        z = mosaic(scaled[:, 0], grid_shape(out_ch)[1])
    else:
        tiles = scaled.reshape(out_ch * in_ch, kh, kw)
        z = mosaic(tiles, in_ch)
    zmax = 1.0 if per_filter else top
    fig = go.Figure(go.Heatmap(z=z * (1.0 if per_filter else top), zmin=-zmax, zmax=zmax, zmid=0,
                               colorscale=DIVERGING, showscale=not per_filter,
                               hovertemplate="weight %{z:.3f}<extra></extra>"))
    layout_note = "rows: filters, columns: input channels · " if in_ch > 1 else ""
    return _image_layout(fig, f"{title}{shown} · {layout_note}{scale_note}", *z.shape)


def feature_map_figure(maps: np.ndarray, title: str, max_maps: int = 64, height: int = 320) -> go.Figure:
    """One layer's maps (C, H, W) as a mosaic heatmap on the layer's shared colour scale."""
    m = maps[:max_maps].astype(np.float32)
    rows, cols = grid_shape(len(m))
    z = mosaic(m, cols)
    lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
    shown = f" (first {len(m)} of {len(maps)})" if len(m) < len(maps) else ""
    fig = go.Figure(go.Heatmap(z=z, zmin=lo, zmax=hi if hi > lo else lo + 1, colorscale=SEQUENTIAL,
                               colorbar=dict(thickness=10), hovertemplate="%{z:.3f}<extra></extra>"))
    return _image_layout(fig, f"{title}{shown}", *z.shape, max_height=height)


def confusion_figure(cm: np.ndarray, classes, normalized: bool = False, highlight: tuple[int, int] | None = None
                     ) -> go.Figure:
    """Rows: true class, columns: predicted class; counts, or shares of each true class."""
    names = [str(c) for c in classes]
    z = cm.astype(float)
    if normalized:
        totals = z.sum(1, keepdims=True)
        z = np.divide(z, totals, out=np.zeros_like(z), where=totals > 0)
    text = [[f"{v:.0%}" if normalized else f"{int(v)}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues", zmin=0,
        hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>", colorbar=dict(thickness=10)))
    if highlight is not None:
        t, p = highlight
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, xref="x", yref="y",
                      line=dict(color="#d32f2f", width=3))
    side = max(320, min(640, 48 * len(names) + 140))
    fig.update_layout(height=side, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="predicted", side="top", tickangle=-30 if len(names) > 6 else 0),
                      yaxis=dict(title="true", autorange="reversed"))
    return fig


def saliency_figure(image_rgb: np.ndarray, heat: np.ndarray, title: str, opacity: float = 0.5) -> go.Figure:
    """The test image, and the same image under the saliency heat map (H, W) in 0..1."""
    fig = make_subplots(1, 2, subplot_titles=("test image", title), horizontal_spacing=0.04)
    for col in (1, 2):
        fig.add_trace(go.Image(z=image_rgb, hoverinfo="skip"), 1, col)
    fig.add_trace(go.Heatmap(z=heat, zmin=0, zmax=1, colorscale="Jet", opacity=opacity,
                             colorbar=dict(thickness=10), hovertemplate="%{z:.2f}<extra></extra>"), 1, 2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def probs_figure(probs: np.ndarray, classes, true_class: int | None = None, height: int = 260) -> go.Figure:
    """Horizontal bars: the model's probability for every class; the true class in green."""
    names = [str(c) for c in classes]
    colours = ["#2e7d32" if i == true_class else "#90a4ae" for i in range(len(names))]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colours,
                           text=[f"{p:.1%}" for p in probs], textposition="outside",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=10, r=40, t=10, b=10),
                      xaxis=dict(range=[0, 1.15], tickformat=".0%"), yaxis=dict(autorange="reversed"))
    return fig
