"""Plotly figures of what a network holds and sees (Inspect, Draw): filter grids, feature-map mosaics,
the confusion matrix, saliency and attribution overlays, class probabilities, the robustness curve.

Each builder takes numpy arrays from cnn_core.analysis.inspection or cnn_core.analysis.predict and returns a go.Figure;
none runs a model.
Many small maps become ONE heatmap (a mosaic with blank gaps), which draws far faster than subplots.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from ui.views import plot_text

GAP = 1                  # blank pixels between tiles of a mosaic
DIVERGING = "RdBu_r"     # weights: blue negative, white zero, red positive
SEQUENTIAL = "Viridis"   # activations
# Attribution maps laid over the picture: 0 is transparent, so the picture shows wherever a map says nothing.
SIGNED_OVERLAY = [[0.0, "rgba(33,102,172,0.95)"], [0.25, "rgba(103,169,207,0.7)"], [0.5, "rgba(255,255,255,0)"],
                  [0.75, "rgba(239,138,98,0.7)"], [1.0, "rgba(178,24,43,0.95)"]]   # blue -, red +, centred at 0
UNSIGNED_OVERLAY = [[0.0, "rgba(255,237,160,0)"], [0.3, "rgba(254,178,76,0.55)"], [1.0, "rgba(240,59,32,0.9)"]]
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


def to_rgb(image, scale: int = 1) -> np.ndarray:
    """A (C, H, W) uint8 image (tensor or array) as (H*scale, W*scale, 3) uint8, enlarged with sharp pixels."""
    a = np.asarray(image)
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a[:3]
    a = a.transpose(1, 2, 0)                                           # (H, W, 3)
    return np.ascontiguousarray(a.repeat(scale, 0).repeat(scale, 1) if scale > 1 else a)


def pixels_rgb(picture: np.ndarray, scale: int = 1) -> np.ndarray:
    """A (C, H, W) picture in 0..1 (an attack's original, change or result) as to_rgb's uint8 (H*s, W*s, 3)."""
    return to_rgb(np.clip(np.rint(np.asarray(picture) * 255), 0, 255).astype(np.uint8), scale)


def _axes(scale_to: str = "x") -> tuple[dict, dict]:
    """Hidden axes with square pixels, row 0 at the top (as images are drawn)."""
    return (dict(visible=False, constrain="domain"),
            dict(visible=False, autorange="reversed", scaleanchor=scale_to, constrain="domain"))


def _image_figure(trace: dict, title: str, rows_px: int, cols_px: int, max_height: int = 700) -> go.Figure:
    """One trace on image axes, sized to its pixels. Figures here are built in one call from plain dicts:
    go.Heatmap objects and update_* calls each re-validate, several ms apiece, per layer."""
    px = max(2.0, min(24.0, 640 / max(cols_px, 1), max_height / max(rows_px, 1)))   # screen px per pixel
    xaxis, yaxis = _axes()
    return go.Figure(data=[trace], layout=dict(
        title=dict(text=title, font=dict(size=14)), margin=_MARGIN, plot_bgcolor="white",
        height=int(min(max_height, max(180, rows_px * px + 60))), xaxis=xaxis, yaxis=yaxis))


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
        trace = dict(type="image", z=z, hovertemplate="x %{x}, y %{y}<br>RGB %{z}<extra></extra>")
        return _image_figure(trace, f"{title}{shown} · colour (grey = 0), {scale_note}", *z.shape[:2])
    if in_ch == 1:
        z = mosaic(scaled[:, 0], grid_shape(out_ch)[1])
    else:
        tiles = scaled.reshape(out_ch * in_ch, kh, kw)
        z = mosaic(tiles, in_ch)
    zmax = 1.0 if per_filter else top
    trace = dict(type="heatmap", z=z * (1.0 if per_filter else top), zmin=-zmax, zmax=zmax, zmid=0,
                       colorscale=DIVERGING, showscale=not per_filter,
                       hovertemplate="weight %{z:.3f}<extra></extra>")
    layout_note = "rows: filters, columns: input channels · " if in_ch > 1 else ""
    return _image_figure(trace, f"{title}{shown} · {layout_note}{scale_note}", *z.shape)


def kernel_centres(weight_shape: tuple, max_filters: int = 64, max_inputs: int = 64, rgb: bool = True):
    """Where filters_figure draws each kernel: (x, y, filter index) of every tile's centre."""
    out_ch, in_ch, kh, kw = weight_shape
    out_ch, in_ch = min(out_ch, max_filters), min(in_ch, max_inputs)
    points = []
    if (in_ch == 3 and rgb) or in_ch == 1:
        cols = grid_shape(out_ch)[1]
        for k in range(out_ch):
            r, c = divmod(k, cols)
            points.append((c * (kw + GAP) + (kw - 1) / 2, r * (kh + GAP) + (kh - 1) / 2, k))
    else:
        for k in range(out_ch):
            for j in range(in_ch):
                points.append((j * (kw + GAP) + (kw - 1) / 2, k * (kh + GAP) + (kh - 1) / 2, k))
    return points


def kernel_picker_figure(weight: np.ndarray, title: str, per_filter: bool = False) -> go.Figure:
    """filters_figure with a clickable point on every kernel (Streamlit selects scatter points, not heatmap
    cells): the selection's customdata is the filter's index."""
    fig = filters_figure(weight, title, per_filter)
    xs, ys, ks = zip(*kernel_centres(weight.shape))
    fig.add_scatter(x=xs, y=ys, customdata=ks, mode="markers", showlegend=False, name="kernels",
                    marker=dict(size=max(8, 240 // max(len(set(xs)), 1)), color="rgba(0,0,0,0.01)", symbol="square"),
                    hovertemplate="filter %{customdata}: click to see its map<extra></extra>")
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def feature_map_figure(maps: np.ndarray, title: str, max_maps: int = 64, height: int = 320) -> go.Figure:
    """One layer's maps (C, H, W) as a mosaic heatmap on the layer's shared colour scale."""
    m = maps[:max_maps].astype(np.float32)
    rows, cols = grid_shape(len(m))
    z = mosaic(m, cols)
    lo, hi = float(np.nanmin(m)), float(np.nanmax(m))
    shown = f" (first {len(m)} of {len(maps)})" if len(m) < len(maps) else ""
    trace = dict(type="heatmap", z=z, zmin=lo, zmax=hi if hi > lo else lo + 1, colorscale=SEQUENTIAL,
                       colorbar=dict(thickness=10), hovertemplate="%{z:.3f}<extra></extra>")
    return _image_figure(trace, f"{title}{shown}", *z.shape, max_height=height)


def confusion_figure(cm: np.ndarray, classes, normalized: bool = False, highlight: tuple[int, int] | None = None,
                     clickable: bool = False) -> go.Figure:
    """Rows: true class, columns: predicted class; counts, or shares of each true class. clickable: a
    see-through point on every cell (Streamlit reports clicks on scatter points, not on heatmap cells;
    streamlit issues 8760 and 15042), its customdata (true, predicted)."""
    names = [plot_text(c) for c in classes]      # a dataset's folder names: plotly draws <a>, <span> in them
    z = cm.astype(float)
    if normalized:
        totals = z.sum(1, keepdims=True)
        z = np.divide(z, totals, out=np.zeros_like(z), where=totals > 0)
    text = [[f"{v:.0%}" if normalized else f"{int(v)}" for v in row] for row in z]
    shapes = []
    if highlight is not None:
        t, p = highlight
        shapes.append(dict(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5, xref="x", yref="y",
                           line=dict(color="#d32f2f", width=3)))
    tilt = -30 if max(map(len, names)) > 4 else 0
    height = max(320, min(640, 48 * len(names) + 140))
    heat = dict(type="heatmap", z=z, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues",
                zmin=0, hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>", colorbar=dict(thickness=10))
    data = [heat]
    if clickable:
        del heat["hovertemplate"]                       # the points answer the hover instead
        heat["hoverinfo"] = "skip"
        k = len(names)
        cells = [(t, p) for t in range(k) for p in range(k)]
        data.append(dict(type="scatter", mode="markers", name="cells", showlegend=False,
                         x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], customdata=cells,
                         text=[text[t][p] for t, p in cells],
                         marker=dict(size=6, color="rgba(0,0,0,0.01)"),    # small: see hoverdistance
                         selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
                         hovertemplate="true %{y}, predicted %{x}: %{text}<br>click to see them<extra></extra>"))
    return go.Figure(
        data=data,
        layout=dict(height=height, margin=dict(l=10, r=10, t=30, b=10), shapes=shapes,
                    clickmode="event+select" if clickable else None, dragmode=False if clickable else None,
                    # a click anywhere in a cell picks its point, the nearest centre. Markers as big as a cell
                    # overlap on a phone, where plotly then picks the neighbour (distance 0 to both)
                    hovermode="closest", hoverdistance=200 if clickable else None,
                    # ranges fixed to the cells: the click points' markers would pad them
                    xaxis=dict(title="predicted", side="top", type="category", dtick=1, tickangle=tilt,
                               range=[-0.5, len(names) - 0.5], showgrid=False),
                    yaxis=dict(title="true", type="category", dtick=1, range=[len(names) - 0.5, -0.5],
                               showgrid=False)))


def saliency_figure(image_rgb: np.ndarray, heat: np.ndarray, title: str, opacity: float = 0.5) -> go.Figure:
    """The test image (left), and the same image under the saliency heat map (H, W) in 0..1 (right)."""
    x1, y1 = _axes("x")
    x2, y2 = _axes("x2")
    heads = [dict(text=t, x=x, y=1.0, xref="paper", yref="paper", xanchor="center", yanchor="bottom",
                  showarrow=False, font=dict(size=14)) for t, x in (("test image", 0.23), (title, 0.75))]
    return go.Figure(
        data=[dict(type="image", z=image_rgb, hoverinfo="skip"),
              dict(type="image", z=image_rgb, hoverinfo="skip", xaxis="x2", yaxis="y2"),
              dict(type="heatmap", z=heat, zmin=0, zmax=1, colorscale="Jet", opacity=opacity, xaxis="x2",
                   yaxis="y2", colorbar=dict(thickness=10), hovertemplate="%{z:.2f}<extra></extra>")],
        layout=dict(height=360, margin=dict(l=10, r=10, t=40, b=10), annotations=heads,
                    xaxis={**x1, "domain": [0, 0.46]}, yaxis=y1,
                    xaxis2={**x2, "domain": [0.5, 0.96]}, yaxis2={**y2, "anchor": "x2"}))


def pictures_figure(pictures: list[np.ndarray], heads: list[str], height: int = 220) -> go.Figure:
    """Pictures (H, W, 3) uint8 side by side, each under its heading: one figure that narrows with the
    screen (three st.image columns stack into a tall column on a phone)."""
    n, gap = len(pictures), 0.02
    data, layout = [], dict(height=height, margin=dict(l=5, r=5, t=30, b=5), plot_bgcolor="white", annotations=[])
    for i, (picture, head) in enumerate(zip(pictures, heads)):
        suffix = "" if i == 0 else str(i + 1)
        xaxis, yaxis = _axes(f"x{suffix}")
        layout[f"xaxis{suffix}"] = {**xaxis, "domain": [i / n + gap, (i + 1) / n - gap]}
        layout[f"yaxis{suffix}"] = {**yaxis, "anchor": f"x{suffix}", "constraintoward": "top"}   # under its head
        data.append(dict(type="image", z=picture, hoverinfo="skip", xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        layout["annotations"].append(dict(text=head, x=(i + 0.5) / n, y=1.0, xref="paper", yref="paper",
                                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
    return go.Figure(data=data, layout=layout)


def attribution_figure(image_rgb: np.ndarray, heat: np.ndarray, title: str, signed: bool,
                       height: int = 250) -> go.Figure:
    """One attribution map (H, W) laid over the picture (H, W, 3): signed maps (-1..1) red where a pixel
    helps the class and blue where it speaks against it, white-clear at 0; the others (0..1) clear to orange."""
    xaxis, yaxis = _axes()
    scale = dict(zmin=-1, zmax=1, zmid=0, colorscale=SIGNED_OVERLAY) if signed else \
        dict(zmin=0, zmax=1, colorscale=UNSIGNED_OVERLAY)
    return go.Figure(
        data=[dict(type="image", z=image_rgb, hoverinfo="skip"),
              dict(type="heatmap", z=heat, **scale, colorbar=dict(thickness=8, len=0.9, tickvals=[-1, 0, 1]
                                                                  if signed else [0, 1]),
                   hovertemplate="%{z:.2f}<extra></extra>")],
        layout=dict(height=height, margin=dict(l=5, r=5, t=30, b=5), title=dict(text=title, font=dict(size=14)),
                    plot_bgcolor="white", xaxis=xaxis, yaxis=yaxis))


def robustness_figure(budgets, accuracy, median: float | None, colour: bool) -> go.Figure:
    """Test accuracy (0..1) against the attack's budget, the median fooling budget marked. Colour budgets
    are labelled in 1/255 steps as well, the unit those papers use."""
    ticks = [f"{b:.3f}<br>({round(b * 255)}/255)" for b in budgets] if colour else None
    fig = go.Figure(
        data=[dict(type="scatter", x=list(budgets), y=list(accuracy), mode="lines+markers", name="accuracy",
                   line=dict(color="#d32f2f", width=2), showlegend=False,
                   hovertemplate="budget %{x:.3f}: accuracy %{y:.1%}<extra></extra>")],
        layout=dict(height=340, margin=dict(l=10, r=10, t=40, b=10),
                    title=dict(text="Test accuracy under attack", font=dict(size=14)),
                    xaxis=dict(title="budget: the most any pixel may change",
                               tickvals=list(budgets)[::2] if colour else None,
                               ticktext=ticks[::2] if colour else None),
                    yaxis=dict(title="test accuracy", range=[0, 1.02], tickformat=".0%")))
    if median is not None:
        fig.add_vline(x=median, line=dict(color="#616161", width=1, dash="dot"),
                      annotation=dict(text=f"median fooling budget {median:.3g}", font=dict(size=12)),
                      annotation_position="top right")
    return fig


def probs_figure(probs: np.ndarray, classes, marked: int | None = None, height: int | None = None) -> go.Figure:
    """Horizontal bars: the model's probability for every class, values written beside; the `marked`
    class (the true one on Inspect, the predicted one on Draw) in green."""
    names = [plot_text(c) for c in classes]      # a checkpoint's class names: plotly draws <a>, <span> in them
    colours = ["#2e7d32" if i == marked else "#90a4ae" for i in range(len(names))]
    return go.Figure(
        data=[dict(type="bar", x=probs, y=names, orientation="h", marker_color=colours,
                   text=[f"{p:.1%}" if p >= 0.005 else "" for p in probs], textposition="outside",
                   cliponaxis=False, hovertemplate="%{y}: %{x:.2%}<extra></extra>")],
        layout=dict(height=height or 18 * len(names) + 50, margin=dict(l=10, r=45, t=5, b=5), bargap=0.25,
                    xaxis=dict(range=[0, 1], tickformat=".0%"),
                    yaxis=dict(type="category", dtick=1, autorange="reversed", title=None)))
