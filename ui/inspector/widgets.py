"""The Inspect page's widgets and caches: run and weights pickers, the test-image picker, cached model
loads and computations (keyed by run folder + weights + file mtime), and image galleries.

Computation is cnn_core.analysis.inspection's; here it is only cached and laid out.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnn_core.runs import owners, store
from ui import compute, signin, views
from ui.figures import CONFIG, images
from ui.inspector import state

MODE_LABELS = {"index": "index", "class": "class", "random": "random", "misclassified": "mistake"}
GALLERY_PX = 104         # a gallery picture's width: 8 a row on a laptop, 3 on a 400 px phone (columns: 1)


# ---- caches: one model per (run, weights, mtime), shared by all sessions (read-only) -----------------
@st.cache_resource(max_entries=6, show_spinner="Loading the weights…")
def model(path: str, key: str, stamp: int):
    from cnn_core.analysis import snapshots

    weights = next((w for w in snapshots.weights_choices(Path(path)) if w.key == key), None)
    if weights is None:
        raise ValueError(f"the {key} weights of this run are no longer on disk")
    return snapshots.load_weights(weights)


@st.cache_resource(max_entries=4, show_spinner="Loading the test images…")
def test_set(dataset: str | None, data_dir: str, version: tuple):
    from cnn_core.analysis import inspection

    return inspection.load_test_set(dataset)


def test_for(meta: dict):
    """The cached test set of the run's dataset; a dataset prepared again (new source, size) is reloaded."""
    from cnn_core.data import catalog

    name = meta.get("dataset")
    status = catalog.dataset_status(name) if name in catalog.datasets() else None
    version = (status.state, status.n_test, status.source) if status else ()
    return test_set(name, str(catalog.default_data_dir()), version)


@st.cache_data(max_entries=16, show_spinner="Classifying the test set…")
def predictions(path: str, key: str, stamp: int):
    from cnn_core.analysis import inspection

    net, meta = model(path, key, stamp)
    return inspection.predict_test(net, test_for(meta), meta)


@st.cache_data(max_entries=16, show_spinner=False)
def map_sizes(path: str, key: str, stamp: int) -> dict[str, tuple[int, int]]:
    """(h, w) of every feature layer's maps for the run's pictures (the first test image's)."""
    from cnn_core.analysis import inspection

    net, meta = model(path, key, stamp)
    return inspection.map_sizes(net, test_for(meta).x(0, meta))


@st.cache_data(max_entries=64, show_spinner=False)
def feature_maps(path: str, key: str, stamp: int, index: int):
    from cnn_core.analysis import inspection

    net, meta = model(path, key, stamp)
    return inspection.extract_feature_maps(net, test_for(meta).x(index, meta))


@st.cache_data(max_entries=64, show_spinner="Computing the attributions…")
def attributions(path: str, key: str, stamp: int, index: int, target: int) -> dict:
    """captum's four maps (H, W) of test image `index` for class `target` (Grad-CAM at the default layer)."""
    from cnn_core.analysis import attribution

    net, meta = model(path, key, stamp)
    with compute.one_thread():      # small work: one thread is faster here (ui/compute.py)
        return attribution.attribute_all(net, test_for(meta).x(index, meta), target, meta)


@st.cache_data(max_entries=64, show_spinner=False)
def grad_cam(path: str, key: str, stamp: int, index: int, target: int, layer: str):
    """Grad-CAM of test image `index` for class `target` at feature layer `layer`, (H, W) 0..1."""
    from cnn_core.analysis import attribution

    net, meta = model(path, key, stamp)
    with compute.one_thread():      # small work: one thread is faster here (ui/compute.py)
        return attribution.grad_cam(net, test_for(meta).x(index, meta), target, layer)


@st.cache_data(max_entries=16, show_spinner="Computing gradients…")
def filter_gradients(path: str, key: str, stamp: int, n: int = 64):
    from cnn_core.analysis import inspection

    net, meta = model(path, key, stamp)
    test = test_for(meta)
    return dict(inspection.filter_gradients(net, test.x(slice(0, n), meta), test.y[:n]))


@st.cache_data(max_entries=8, show_spinner="Reading the snapshots…")
def weight_histories(path: str, epochs: tuple):
    """Layer -> epoch -> weights of every snapshot (`epochs`: the saved ones, part of the cache key)."""
    from cnn_core.analysis import inspection

    return inspection.weight_histories(Path(path))


# ---- pickers --------------------------------------------------------------------------------------
def run_picker() -> "store.Run | None":
    """The run selectbox (default: ?run=<id>, else the newest finished run) over the runs this person may open
    (in class mode another's run named in ?run= reads as unknown); its record, or None."""
    listed = owners.visible(store.list_runs(), signin.me())
    all_runs = store.readable(listed)
    unreadable = {r.id: r for r in listed if r.corrupt}
    wanted = st.query_params.get("run")
    if wanted in unreadable:
        st.warning(f"Run {wanted!r} cannot be read: {views.md(unreadable[wanted].error)}", icon=":material/warning:")
    elif unreadable:
        st.caption(f"Left out, their run.json cannot be read: {', '.join(sorted(unreadable))}.")
    if not all_runs:
        st.info("No runs yet. Train one on the **Train** page, then come back to look inside it.",
                icon=":material/info:")
        return None
    by_id = {r.id: r for r in all_runs}
    if wanted and wanted not in by_id and wanted not in unreadable:
        st.warning(f"There is no run {views.md(repr(wanted[:100]))} in the runs folder; pick one below.")  # the URL's
    if wanted in by_id:
        st.session_state[state.RUN] = wanted
    elif st.session_state.get(state.RUN) not in by_id:
        done = [r.id for r in all_runs if r.effective_status in ("completed", "cancelled")]
        st.session_state[state.RUN] = (done or list(by_id))[0]
    run_id = st.selectbox("Run", list(by_id), key=state.RUN, on_change=_sync_query,
                          format_func=lambda i: f"{views.run_label(by_id[i])} — {by_id[i].effective_status}")
    st.query_params["run"] = run_id
    return by_id[run_id]


def _sync_query() -> None:
    st.query_params["run"] = st.session_state[state.RUN]


def weights_header(record: dict):
    """A word on runs still training, the weights slider, and why a run has no snapshots; the Weights or None."""
    from cnn_core.analysis import snapshots

    path, status = Path(record.path), record.effective_status
    if status == "running":
        p = record.progress
        st.info(f"This run is still running (epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}): you see "
                "the weights saved so far. New epochs appear here when the page reruns.",
                icon=":material/directions_run:")
        st.button("Check for new epochs", key=state.REFRESH, icon=":material/refresh:")
    elif status == "failed":
        st.warning(f"This run failed: {views.md((record.error or 'no message').rstrip('.'))}. The weights it saved "
                   "before failing can still be inspected.", icon=":material/error:")
    weights = _weights_picker(path, record)
    if weights is not None and (note := snapshots.snapshot_note(path, record)):
        st.info(note, icon=":material/photo_library:")
    return weights


def _weights_picker(path: Path, record: dict):
    """A slider over the saved epochs (plus best / latest); the chosen Weights, or None when none exist."""
    from cnn_core.analysis import snapshots

    choices = snapshots.weights_choices(path, record)
    if not choices:
        where = "it is still waiting to start" if record.effective_status == "queued" else \
            "its checkpoint files are missing (deleted, or the run failed before its first save)"
        st.warning(f"Run **{views.md(record.name)}** has no saved weights to inspect: {where}. Weights appear "
                   "when training starts (epoch 0) and after each epoch.", icon=":material/warning:")
        return None
    by_key = {w.key: w for w in choices}
    key = state.weights(record.id)
    if st.session_state.get(key) not in by_key:
        st.session_state[key] = "best" if "best" in by_key else choices[-1].key
    if len(choices) == 1:
        st.caption(f"Weights: {choices[0].label} (the only saved set)")
        return choices[0]
    chosen = st.select_slider("Weights", list(by_key), key=key, format_func=lambda k: by_key[k].label,
                              help="Scrub through training: epoch 0 is before any training; 'best' is the "
                                   "epoch with the highest validation accuracy.")
    st.caption("Saved: " + ", ".join(w.label for w in choices) + ". Epoch 0 is the untrained network.")
    return by_key[chosen]


def reset_on(key: str, value, when) -> None:
    """Set widget `key` to `value` whenever `when` changes (a new image, new weights), else keep the user's pick."""
    if st.session_state.get(state.when(key)) != when or key not in st.session_state:
        st.session_state[state.when(key)] = when
        st.session_state[key] = value


def keep_valid(key: str, options: list, default) -> None:
    """Keep the user's pick of widget `key` while it is among `options` (e.g. across epochs), else `default`."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def _clamp(key: str, value: int, high: int) -> None:
    if not 0 <= st.session_state.get(key, value) <= high:
        st.session_state[key] = value


def _next_seed() -> None:
    st.session_state[state.IMG_SEED] = st.session_state.get(state.IMG_SEED, 0) + 1


def image_picker(preds, classes) -> int:
    """Choose a test image by index, by class, at random or among the mistakes; returns its index."""
    from cnn_core.analysis import inspection

    mode = st.segmented_control("Test image", list(MODE_LABELS), key=state.IMG_MODE, default="index",
                                format_func=MODE_LABELS.get) or "index"
    total, n, cls = len(preds.y), 0, 0
    for key in (state.IMG_N, state.IMG_N_CLS, state.IMG_N_ERR):      # another run's test set may be smaller
        _clamp(key, 0, total - 1)
    if mode == "index":
        n = st.number_input(f"Index (0 to {total - 1})", 0, total - 1, key=state.IMG_N)
    elif mode == "class":
        cls = st.selectbox("Class", range(len(classes)), key=state.IMG_CLS, format_func=lambda c: str(classes[c]))
        n = st.number_input("Which one of that class (0 = the first)", 0, total - 1, key=state.IMG_N_CLS)
    elif mode == "random":
        st.button("Another random image", key=state.IMG_NEXT, icon=":material/casino:", on_click=_next_seed)
    else:
        n = st.number_input("Mistake number (0 = the most confident mistake)", 0, total - 1, key=state.IMG_N_ERR)
    seed = st.session_state.get(state.IMG_SEED, 0)
    try:
        return inspection.choose_image(preds, mode, n=int(n), cls=int(cls), seed=seed)
    except ValueError as exc:
        st.info(views.md(exc))
        return 0


def image_card(preds, test, stamp_args: tuple) -> tuple[int, list]:
    """The test-image picker, the image, its top-3 and every class's probability; (index, feature maps)."""
    from cnn_core.analysis import predict

    with st.container(border=True):
        pick, pic, probs = st.columns([4, 2, 4])
        with pick:
            index = image_picker(preds, test.classes)
        maps, p = feature_maps(*stamp_args, index)
        true = int(preds.y[index])
        pic.image(images.to_rgb(test.images[index], scale=6), width=168,
                  caption=f"test image #{index} · true class {views.md(test.classes[true])}",
                  alt=f"Test image {index}, a {test.classes[true]}")
        with probs:
            top = predict.top_k(p, test.classes)
            st.markdown("**Top 3:** " + " · ".join(f"{views.md(c)} {v:.1%}" for c, v in top))
            st.plotly_chart(images.probs_figure(p, test.classes, true), config=CONFIG)
    return index, maps


def class_report_text(report):
    """The per-class report as a person reads it: shares as percentages, '–' where one is undefined (a
    class the model never predicts has no precision), the class as the row name. A static table: the
    interactive grid shows an undefined number as 'None' and has no way to say otherwise. st.table renders
    Markdown: the class names (folder names of a dataset added from a zip) are escaped."""
    shares = ["accuracy (recall)", "precision", "F1"]
    shown = report.set_index("class")
    shown[shares] = shown[shares].map(lambda v: "–" if v != v else f"{v:.1%}")   # v != v: NaN
    return views.md_table(shown)


def gallery(indices, pictures, preds, classes, limit: int) -> None:
    """Test images with their true and predicted class and the model's confidence, as many a row as fit
    (st.columns would stack them one a row, each as wide as a phone)."""
    shown = list(indices[:limit])
    if not shown:
        st.caption("No images here.")
        return
    with st.container(horizontal=True, gap="small"):
        for i in shown:
            true, pred = classes[preds.y[i]], classes[preds.pred[i]]
            st.image(images.to_rgb(pictures[i], scale=4), width=GALLERY_PX,
                     caption=f"#{i} · {views.md(true)} → {views.md(pred)} ({preds.confidence[i]:.0%})",
                     alt=f"Test image {i}: a {true}, read as {pred} with {preds.confidence[i]:.0%} confidence")
    if len(indices) > limit:
        st.caption(f"{limit} of {len(indices)} shown.")
