"""Inspect: what a run's network learned — filters, feature maps, confusion, mistakes, attribution, how it is
fooled, its classes in 2-D, what a class looks like to it — at any epoch."""
import streamlit as st

from ui.inspector import widgets as iw

st.title("Inspect")
st.caption("Pick a run and a moment of its training, then look inside: the filters it learned, what each "
           "layer sees in a test image, which classes it confuses, its most confident mistakes, and where "
           "it looks.")

from ui.inspector import tabs  # noqa: E402  (it imports torch, 2.7 s here: after the title is on screen)


def main() -> None:
    record = iw.run_picker()
    weights = iw.weights_header(record) if record else None
    if weights is None:
        return
    stamp = (record.path, weights.key, weights.stamp)
    try:
        ctx = tabs.Context(*iw.model(*stamp), stamp)
    except ValueError as exc:   # CheckpointError: missing, empty, corrupt or foreign file
        st.error(f"These weights cannot be loaded: {exc}", icon=":material/error:")
        return
    try:
        ctx.preds, ctx.test = iw.predictions(*stamp), iw.test_for(ctx.meta)
    except ValueError as exc:   # the dataset is not prepared here, or does not fit the model
        problem = f"The test set cannot be used: {exc}"
    else:
        problem = None
    for tab, (name, view) in zip(st.tabs(list(tabs.TABS)), tabs.TABS.items()):
        with tab:
            if problem and name in tabs.NEEDS_TEST:
                st.error(problem, icon=":material/error:")
            else:
                view(ctx)


main()
