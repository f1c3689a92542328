"""Draw: sketch a digit or upload an image and see a trained run's top guesses (coming)."""
import streamlit as st

st.title("Draw")
st.info("Coming in a later version: draw a digit (or upload an image) and see what a trained run predicts. "
        "Meanwhile `python -m cnn_core predict --run <id> image.png` does it from the command line.",
        icon=":material/construction:")
