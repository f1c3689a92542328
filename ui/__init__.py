"""The dashboard's Streamlit code (the library, cnn_core, knows nothing of Streamlit). A package per page,
each holding its page.py (what st.navigation in dashboard.py runs), its state.py (every session-state and
widget key of that page) and its widgets:
    home        Home: datasets, Your own pictures (own_pictures), recent runs
    train       Train: the New run form (form, layer_editor), the Sweep tab (sweep), the live panel (live, actions)
    inspector   Inspect: its views (tabs) and their pickers and caches (widgets); not "inspect", the standard
                library's name
    compare     Compare: the runs table and Run actions (widgets), the Sweeps section (sweeps)
    draw        Draw: the canvas, the model picker and its answers (widgets)
Shared by the pages: nav (pages, links, sidebar, the message shown once), views (display logic, no Streamlit),
own_data (a folder box, Classify many), figures/ (plotly figures); serving: serve, gate, access."""
