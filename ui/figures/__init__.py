"""Every figure the dashboard draws, as plotly figures built from numbers the library computes: learning
curves (curves.py: Train's live charts, Compare's overlays and parallel coordinates) and pictures of a
network (images.py: filters, feature maps, confusion, saliency, probabilities). No Streamlit here."""
from ui.figures.curves import CONFIG, PALETTE  # noqa: F401  (the charts' shared look)
