"""Train: set up a run (dataset, model, hyperparameters), see its layers, launch it, watch it learn live."""
import streamlit as st

from ui import actions, live, nav, train_form

nav.ensure_frame()

st.title("Train")
st.caption("Set up a run and press Launch: it trains in its own process and the Live tab follows it. "
           "Reload the page, leave it or open a second tab: the run goes on.")

from ui import views  # noqa: E402

train_form.init_state()
new_tab, live_tab = st.tabs(["New run", "Live"], key=actions.TAB, on_change="rerun", default=live.first_tab())
st.session_state[actions.LAST_TAB] = "Live" if live_tab.open else "New run"   # where to come back to

if new_tab.open:
    with new_tab:
        actions.show_flash()
        config, errors, name = train_form.current()
        train_form.clone_box()
        train_form.launch_bar(errors, "top")
        train_form.choice_section(errors)
        model, optim, training = st.columns(3, gap="large")
        with model:
            st.subheader("Model")
            train_form.model_section(errors)
        with optim:
            st.subheader("Optimizer")
            train_form.optimizer_section(errors)
        with training:
            st.subheader("Training")
            train_form.training_section(errors, views.device_choices(st.session_state["train.device"]))
        shown = set(views.FORM_FIELDS) | {"name"} | {e for e in errors if e.startswith("arch_params.")}
        for field in sorted(set(errors) - shown):
            st.error(f"{views.error_labels({field: ''}, None)[0]}: {errors[field]}")
        train_form.launch_bar(errors, "bottom")
        st.subheader("Layers of the model")
        train_form.layer_table(config, errors)

if live_tab.open:
    with live_tab:
        actions.show_flash()
        run_id = live.picker()
        if run_id:
            live.show(run_id)
