"""The Inspect page (named inspector: a package "inspect" would shadow the standard library's module where
ui/ is on the path, as under `streamlit run ui/gate.py`):
    fool          Fool it: the chosen test picture attacked within a budget, and the robustness curve
    maps          Class map and Dreams: views across the saved epochs (PCA/t-SNE, class pictures)
    page          the run and weights pickers, then a tab per view
    state         every session-state and widget key of the page
    tabs          the views, one function each, and their registry TABS
    widgets       the pickers, the cached model loads and computations, image galleries"""
