"""Train: set up a run (dataset, model, hyperparameters), see its layers, launch it, watch it learn live."""
import streamlit as st

from ui import actions, live, train_form

st.title("Train")
st.caption("Choose a dataset and a model, set the hyperparameters and press Launch. Training runs in its own "
           "process: reload the page, leave it or open a second tab, and the run goes on.")
train_form.init_state()
config, errors, name = train_form.current()
setup, watch = st.columns([5, 7], gap="large")

with setup:
    with st.expander("Clone settings from a saved run"):
        from cnn_core import runs, views

        saved = {r["id"]: r for r in runs.list_runs() if r.get("effective_status") != "corrupt"}
        pick = st.selectbox("Run", list(saved), key="train.clone", index=None, placeholder="choose a run",
                            format_func=lambda i: f"{views.run_label(saved[i])} — {saved[i].get('arch')} "
                                                  f"on {saved[i].get('dataset')}")
        st.button("Fill the form with its settings", key="train.clone_btn", disabled=pick is None,
                  on_click=actions.clone, args=(pick,))
        if note := st.session_state.pop("train.clone_note", None):
            st.success(note)
    st.subheader("Data and model")
    train_form.model_section(errors)
    st.subheader("Optimizer")
    train_form.optimizer_section(errors)
    st.subheader("Training")
    train_form.training_section(errors, views.device_choices(st.session_state[train_form.key("device")]))
    shown = set(views.FORM_FIELDS) | {"name"} | {e for e in errors if e.startswith("arch_params.")}
    for field in sorted(set(errors) - shown):
        st.error(f"{field}: {errors[field]}")
    if errors:
        st.warning(f"Launch is off until {len(errors)} setting(s) are fixed: {', '.join(sorted(errors))}.",
                   icon=":material/block:")
    st.button("Launch", key="train.launch", type="primary", icon=":material/rocket_launch:",
              disabled=bool(errors), on_click=actions.launch, width="stretch")
    from cnn_core import jobs

    st.caption(views.queue_note(jobs.active_runs(), jobs.max_jobs()))
    st.subheader("Model")
    train_form.layer_table(config, errors)

with watch:
    st.subheader("Live")
    actions.show_flash()
    run_id = live.picker()
    if run_id:
        live.show(run_id)
