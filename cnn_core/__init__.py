"""cnn_core: the plain-PyTorch library behind the dashboard (datasets, models, training, inspection); it never imports Streamlit."""
