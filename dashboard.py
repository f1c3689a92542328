"""The dashboard frame: page setup, who may come in (ui/access.py), navigation over the pages, and the shared
sidebar."""
import streamlit as st

from ui import access, nav

st.set_page_config(page_title="CNN Trainer", page_icon=":material/neurology:", layout="wide")
if access.granted():
    st.navigation(nav.all_pages()).run()
    nav.sidebar()
else:   # no access (a server started without ui/gate.py): every page's address says how to start it, nothing else
    st.navigation(nav.all_pages(access.sign_in), position="hidden").run()
