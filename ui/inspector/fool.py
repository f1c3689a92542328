"""Inspect's Fool it tab: the change to the chosen test picture, within a budget, that makes the model say
something else, and the robustness curve of these weights (test accuracy as the change allowed grows).
The attacks are cnn_core.analysis.adversarial's (captum's PGD and FGSM); here they are cached and laid out."""
from __future__ import annotations

import streamlit as st

from ui import compute, views
from ui.figures import CONFIG, images
from ui.inspector import state
from ui.inspector import widgets as iw

METHODS = {"pgd": "PGD", "fgsm": "FGSM"}
ANY = -1                       # the target "any other class"
CURVE_SIZES = (100, 200, 500)  # test images a robustness curve may use; 200 by default


# ---- caches: keyed by run folder, weights and file mtime, as widgets.py's ----------------------------------
@st.cache_data(max_entries=64, show_spinner="Changing the picture…")
def attack(path: str, key: str, stamp: int, index: int, eps: float, method: str, target: int | None,
           smallest: bool):
    """adversarial.Attack on test image `index` at budget `eps`, or (smallest) at the smallest budget up to
    `eps` that works."""
    from cnn_core.analysis import adversarial

    net, meta = iw.model(path, key, stamp)
    image = iw.test_for(meta).images[index]
    with compute.one_thread():
        if smallest:
            return adversarial.smallest_attack(net, meta, image, eps, method, target)
        return adversarial.attack_one(net, meta, image, eps, method, target)


def cached_curve(stamp_args: tuple, n: int, method: str):
    """The adversarial.Robustness already computed for these weights, n and method (by anyone), or None."""
    return compute.kept(("inspect-curve", *stamp_args, n, method))


def compute_curve(stamp_args: tuple, n: int, method: str, progress):
    """Compute and cache the robustness curve of these weights on n test images, a fixed random sample
    (seed 0: the same images each time, not the first n of a test set stored class by class);
    progress(done, total) after each budget."""
    import numpy as np
    import torch

    from cnn_core.analysis import adversarial

    net, meta = iw.model(*stamp_args)
    test = iw.test_for(meta)
    pick = torch.from_numpy(np.sort(np.random.default_rng(0).permutation(len(test.y))[:n]))
    with compute.one_thread():
        curve = adversarial.robustness(net, meta, test.images[pick], test.y[pick], method=method,
                                       progress=progress)
    return compute.keep(("inspect-curve", *stamp_args, n, method), curve)


# ---- the view ----------------------------------------------------------------------------------------------
def budget_options(meta: dict) -> tuple[list[float], bool]:
    """The budgets the slider offers (0.01 steps to 0.3 on grey pictures, 1/255 steps to 16/255 on colour
    ones) and whether the pictures are colour."""
    from cnn_core.analysis import adversarial

    colour = int(meta["input_shape"][0]) == 3
    top, steps = max(adversarial.budgets_for(meta)), 16 if colour else 30
    return [round(top * i / steps, 5) for i in range(1, steps + 1)], colour


def size_text(size: float, colour: bool) -> str:
    """A change's size as a person reads it: "0.08 = 8% of black-to-white" (and in 1/255 steps on colour)."""
    steps = f", {f'{size * 255:.1f}'.removesuffix('.0')}/255" if colour else ""
    return f"{size:.3f} = {size:.1%} of black-to-white{steps}"


def fool_it(ctx) -> None:
    """The chosen test picture changed within a budget until the model says something else, side by side
    with the change and the answers before and after; then the robustness curve."""
    preds, test, index, meta = ctx.preds, ctx.test, ctx.index, ctx.meta
    classes, said = test.classes, int(preds.pred[index])
    st.markdown("**A change too small for you to see can change the model's answer.** Allow every pixel to move "
                "by at most a budget (a share of black-to-white); the attack looks, within it, for the change "
                "that most lowers the model's score for its answer, or raises the class you pick.")
    options, colour = budget_options(meta)
    iw.keep_valid(state.FOOL_EPS, options, options[len(options) // 2 - 1])
    targets = [ANY, *(c for c in range(len(classes)) if c != said)]
    iw.keep_valid(state.FOOL_TARGET, targets, ANY)
    a, b, c, d = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
    eps = a.select_slider("Budget: the most any pixel may change", options, key=state.FOOL_EPS,
                          format_func=(lambda e: f"{round(e * 255)}/255") if colour else (lambda e: f"{e:.2f}"),
                          help="L-inf budget in pixel units: 0.1 lets every pixel move by a tenth of the way "
                               "from black to white.")
    method = b.radio("Method", list(METHODS), format_func=METHODS.get, key=state.FOOL_METHOD, horizontal=True,
                     help="PGD: 20 small steps, each kept within the budget (strong). FGSM: one step of the "
                          "whole budget along the gradient's sign (fast, weaker).")
    target = c.selectbox("Make it say", targets, key=state.FOOL_TARGET,
                         format_func=lambda t: "any other class" if t == ANY else str(classes[t]))
    smallest = d.toggle("Smallest change", key=state.FOOL_SMALLEST,
                        help="Search for the smallest budget, up to the one chosen, that still works "
                             "(8 attacks: the whole budget, then 7 halvings).")
    st.caption(f"Test image #{index}: true {views.md(classes[preds.y[index]])}, the model says "
               f"{views.md(classes[said])}. Choose another image in the Feature maps tab.")
    try:
        hit = attack(*ctx.stamp, index, eps, method, None if target == ANY else target, smallest)
    except ValueError as exc:
        st.error(views.md(exc), icon=":material/error:")
        return
    _attack_row(hit, classes, index, colour)
    _verdict(hit, classes, None if target == ANY else target, smallest, eps, colour)
    st.divider()
    _robustness(ctx, method, colour)


def _attack_row(hit, classes, index: int, colour: bool) -> None:
    """The original, the change (amplified), the changed picture, and the top-3 before and after."""
    from cnn_core.analysis import adversarial, predict

    before, after = classes[int(hit.before.argmax())], classes[int(hit.after.argmax())]
    stretch = 0.5 / max(hit.size, 1e-8)                  # amplified(): the largest change becomes black or white
    pictures = [images.pixels_rgb(p) for p in (hit.original, adversarial.amplified(hit), hit.changed)]
    heads = [f"before: {views.plot_text(before)}", f"change ×{stretch:.0f}" if hit.size else "no change",
             f"after: {views.plot_text(after)}"]                 # short: three side by side on a phone
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.plotly_chart(images.pictures_figure(pictures, heads), config=CONFIG, key=state.FOOL_PICTURES,
                      alt=f"Test image {index}, read as {before}; the change, amplified; the changed picture, "
                          f"read as {after}")
    left.caption(f"Middle: the change, stretched ×{stretch:.0f} so that its largest step is black or white (grey: "
                 "no change, lighter: brighter, darker: darker" + (", each colour channel on its own" if colour else "")
                 + f"). Its real size: largest pixel change {size_text(hit.size, colour)}.")
    with right:
        for label, probs in (("Before", hit.before), ("After", hit.after)):
            top = predict.top_k(probs, classes)
            st.markdown(f"**{label}:** " + " · ".join(f"{views.md(c)} {v:.1%}" for c, v in top))


def _verdict(hit, classes, target: int | None, smallest: bool, eps: float, colour: bool) -> None:
    """One sentence: fooled or not, and by how much."""
    before, after = classes[int(hit.before.argmax())], classes[int(hit.after.argmax())]
    worked = hit.fooled if target is None else after == classes[target]
    if not worked:
        wanted = "" if target is None else f", not {views.md(classes[target])}"
        hint = ", or use PGD." if hit.method == "fgsm" else "."
        st.info(f"Not fooled: with each pixel allowed to move by up to {size_text(eps, colour)}, the model still "
                f"says {views.md(after)}{wanted}. Allow a larger change{hint}", icon=":material/shield:")
        return
    how = f"the smallest budget that works is {hit.eps:.3f} (searched from 0 to {eps:.3f})" if smallest else \
        f"within the budget of {eps:.3f}"
    st.warning(f"**Fooled:** {views.md(before)} became {views.md(after)}; {how}. No pixel moved by more "
               f"than {size_text(hit.size, colour)}.", icon=":material/theater_comedy:")


def _robustness(ctx, method: str, colour: bool) -> None:
    """The button (or the cached result) of the robustness curve for these weights and method."""
    st.markdown("**Robustness of these weights.** The curve shows how fast test accuracy falls as the change "
                f"allowed grows: every test image is attacked ({METHODS[method]}, away from its true class) at "
                "each budget until it is fooled. A steep fall at small budgets: pictures changed beyond what a "
                "person would notice already fool it.")
    total = len(ctx.test.y)
    sizes = [n for n in CURVE_SIZES if n <= total] or [total]
    iw.keep_valid(state.FOOL_N, sizes, 200 if 200 in sizes else sizes[-1])
    a, b = st.columns([1, 3], vertical_alignment="bottom")
    n = a.selectbox("Test images", sizes, key=state.FOOL_N)
    curve = cached_curve(ctx.stamp, n, method)
    if curve is None:
        button = b.empty()
        if not button.button(f"Robustness curve on {n} test images", key=state.FOOL_GO,
                             icon=":material/show_chart:"):
            return
        button.empty()
        curve = _compute_with_progress(ctx.stamp, n, method)
    _draw_curve(curve, colour)


def _compute_with_progress(stamp_args: tuple, n: int, method: str):
    """compute_curve with a progress bar and a Cancel button; any click reruns the page, which stops it."""
    place = st.empty()
    with place.container():
        bar = st.progress(0.0, text=f"Attacking {n} test images at the first budget…")
        st.button("Cancel", key=state.FOOL_CANCEL, help="Any click on the page stops the computation: Streamlit "
                  "starts the page again, and nothing half-done is kept.")
    curve = compute_curve(stamp_args, n, method,
                          lambda done, total: bar.progress(done / total, text=f"Attacking {n} test images: "
                                                           f"{done} of {total} budgets done"))
    place.empty()
    return curve


def _draw_curve(curve, colour: bool) -> None:
    """The chart, and its reading in words."""
    s = curve.summary()
    st.plotly_chart(images.robustness_figure(curve.budgets, curve.accuracy, s["median_eps"], colour), config=CONFIG,
                    key=state.FOOL_CURVE)
    right = round(s["clean_acc"] * s["n"])
    words = (f"With no change, **{s['clean_acc']:.1%}** of these {s['n']} test images are read right ({right}). ")
    if s["median_eps"] is None:
        words += (f"{s['flipped']} of those {right} were fooled within {size_text(s['max_eps'], colour)}: fewer "
                  "than half, so there is no median fooling budget within the budgets tried.")
    else:
        words += (f"{s['flipped']} of those {right} were fooled within {s['max_eps']:.3f}; half of them by a change "
                  f"of {size_text(s['median_eps'], colour)} or less, the **median fooling budget**. "
                  f"At {s['max_eps']:.3f}, accuracy is {curve.accuracy[-1]:.1%}.")
    st.markdown(words)
    st.caption(f"{METHODS[curve.method]} on {s['n']} test images (a fixed random sample), computed once for these "
               "weights: pick another number of images or method for another curve.")
