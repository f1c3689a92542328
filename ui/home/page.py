"""Home: what the product does, the datasets and their state, recent runs, and where to go next."""
import streamlit as st

from ui import nav
from ui.home import state

st.title("CNN Trainer")
st.markdown(
    "Train the classic PyTorch tutorial CNNs on MNIST, Fashion-MNIST, CIFAR or your own pictures, and watch "
    "them learn.  \n"
    "Every model shows its layers and parameter counts before it trains; every run streams its loss and "
    "accuracy live.  \n"
    "Then look inside: filters, feature maps, mistakes; compare runs; draw a digit and see what the net says.")

from cnn_core.data import catalog
from cnn_core.runs import owners, store  # noqa: E402  (torch: after the first lines are on screen)
from ui import signin, views  # noqa: E402

all_runs = owners.visible(store.list_runs(), signin.me())       # in class mode: what this person may open
if not all_runs:
    steps = ["Open **Train**, keep LeNet on MNIST, press **Launch**.",
             "Watch the loss fall, then open the run in **Inspect**."]
    if catalog.dataset_status("mnist").state == "missing":
        steps.insert(0, "Prepare a dataset below (MNIST is the quickest).")
    st.info("**First time here?** " + " ".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
            icon=":material/flag:")
st.caption("**Draw** works already: a small MNIST model trained by this project ships with it "
           "(models/mnist-bundled, 99.2% on its test digits), so you can write a digit before training anything.")

st.subheader("Datasets")
BADGE = {"ready": ":green-badge[ready]", "subset": ":orange-badge[subset]", "not prepared": ":blue-badge[not prepared]"}
nav.show_flash(state.FLASH)
for col, name in zip(st.columns(len(catalog.DATASETS)), catalog.DATASETS):
    card = views.dataset_card(name)
    with col.container(border=True):
        st.markdown(f"**{card.title}** {BADGE[card.badge]}")
        if card.sizes:
            st.markdown(card.sizes)
        st.caption(card.detail)
        if card.files_help:
            with st.popover("Offline?", icon=":material/cloud_off:"):
                st.caption(card.files_help)
        label = "Prepare again" if card.state != "missing" else "Prepare"
        if st.button(label, key=state.prepare(name), help=f"Find, decode and cache {card.title}: first the "
                     "data folder, then torchvision's download, then the offline packages."):
            bar = st.progress(0.0, text=f"{card.title}: starting")
            try:
                raw = catalog.prepare(name, progress=lambda done, total, msg: bar.progress(
                    min(done / total, 1.0) if total else 0.0, text=msg))
                nav.flash(state.FLASH, "success", f"{card.title}: {len(raw.train_y):,} training and "
                          f"{len(raw.test_y):,} test images from {raw.source}.")
            except ValueError as exc:   # DatasetUnavailable and corrupt files: the message says what to do
                nav.flash(state.FLASH, "error", f"{card.title} could not be prepared. {exc}")
            st.rerun()

st.subheader("Your own pictures")
from ui.home import own_pictures  # noqa: E402

own_pictures.added_list()
with st.expander("Add a dataset from your pictures", icon=":material/add_photo_alternate:"):
    own_pictures.add_panel()

st.subheader("Recent runs")
if all_runs:
    st.dataframe(views.runs_frame(all_runs[:8]).drop(columns="id"), hide_index=True, width="stretch")
    active = [r for r in all_runs if r.effective_status in store.ACTIVE][:3]
    done = next((r for r in all_runs if r.effective_status == "completed"), None)
    for r in active:
        nav.link("train", f"Watch on Train: {views.md(views.short(r.name))} ({r.effective_status})", run=r.id)
    if done:
        nav.link("inspect", f"Inspect the latest finished run: {views.md(views.short(done.name))}", run=done.id)
else:
    st.caption("No runs yet.")

st.subheader("Where to go")
for name, what in (("train", "set up a run, see its layers, launch it and watch it learn"),
                   ("inspect", "look inside a trained model: filters, feature maps, mistakes"),
                   ("compare", "put runs side by side: curves, settings, test accuracy"),
                   ("draw", "draw a digit and see what a trained net says")):
    nav.link(name, f"{name.title()}: {what}")
