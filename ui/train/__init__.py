"""The Train page:
    page          its three tabs: New run, Sweep, Live
    state         every session-state and widget key of the page
    form          the New run tab: a widget per setting with its error, presets, clone, Launch, the layer table
    layer_editor  the layer editor (architecture "Your own layers")
    sweep         the Sweep tab, and the sweep picker and trials table Compare shows too
    live          the live panel: pick a run, watch it train (fragments redrawn from its files)
    actions       what the live panel's buttons do (stop, resume, steer, more epochs); the watched run and tab"""
