"""The dashboard frame: page setup, who may come in (ui/access.py: the token, or in class mode the sign-in),
navigation over the pages, and the shared sidebar."""
import streamlit as st

from ui import access, nav

st.set_page_config(page_title="CNN Trainer", page_icon=":material/neurology:", layout="wide")
if (door := access.door()) is None:
    st.navigation(nav.all_pages(teacher=access.teaches())).run()
    nav.sidebar()
else:   # no access (no token gate in front; class mode: no one admitted signed in): every address shows the door
    st.navigation(nav.all_pages(door), position="hidden").run()
