"""Streamlit widgets shared by the dashboard's pages (the library, cnn_core, knows nothing of Streamlit)."""
