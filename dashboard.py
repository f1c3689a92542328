"""The dashboard frame: page setup, navigation over the pages, and the shared sidebar."""
import streamlit as st

from ui import nav

st.set_page_config(page_title="CNN Trainer", page_icon=":material/neurology:", layout="wide")
page = st.navigation(nav.all_pages())
with nav.framed():
    page.run()
nav.sidebar()
