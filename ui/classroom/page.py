"""Class: the teacher's view of the class in class mode (README's "For a class"): who is training, the queue,
each person's best run per dataset, and everyone's runs to stop or delete. The navigation lists it for
teachers only, and the page itself refuses anyone else."""
from __future__ import annotations

import streamlit as st

from ui import signin

try:
    me = signin.me()
except ValueError:      # a wrong [class] table, or nobody the class lists signed in (dashboard.py says which)
    me = None
if me is None or not me.teacher:
    st.error("This page is the teacher's: it shows the whole class's runs. "
             + ("You are signed in as a learner; your own runs are on the other pages." if me is not None
                else "Class mode is off here (no [class] in the dashboard's secrets), so there is no class to show."
                if not signin.class_mode() else "Sign in with a teacher's address to open it."))
    st.stop()

st.title("Class")
st.caption("Your class at a glance: whose runs train and wait, each person's best run on each dataset, and "
           "every run, to stop or delete.")

from cnn_core.analysis import compare  # noqa: E402  (after the title is on screen)
from cnn_core.runs import store  # noqa: E402
from cnn_core.train import jobs  # noqa: E402
from ui.classroom import widgets as w  # noqa: E402

w.live(jobs.slots_for(me))

records = store.list_runs()
st.subheader("Leaderboard")
st.caption("Each person's best completed run on a dataset, by test accuracy (runs made outside class mode are "
           "not ranked).")
w.leaderboard(compare.leaderboard(records))

st.subheader("Everyone's runs")
w.everyone(records, me)
