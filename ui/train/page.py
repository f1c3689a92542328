"""Train: set up a run (dataset, model, hyperparameters), see its layers, launch it, watch it learn live."""
import streamlit as st

from ui import nav
from ui.train import form, live, state

st.title("Train")
st.caption("Set up a run and press Launch: it trains in its own process and the Live tab follows it. "
           "Reload the page, leave it or open a second tab: the run goes on.")

form.init_state()
new_tab, sweep_tab, live_tab = st.tabs(["New run", "Sweep", "Live"], key=state.TAB, on_change="rerun",
                                       default=live.first_tab())
st.session_state[state.LAST_TAB] = "Live" if live_tab.open else "Sweep" if sweep_tab.open else "New run"

if new_tab.open:
    with new_tab:
        nav.show_flash(state.FLASH)
        form.new_run()

if sweep_tab.open:
    with sweep_tab:
        from ui.train import sweep

        config, errors, _ = form.current()
        sweep.sweep_tab(config, errors)

if live_tab.open:
    with live_tab:
        nav.show_flash(state.FLASH)
        if picked := live.picker():
            live.show(*picked)
