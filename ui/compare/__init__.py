"""The Compare page:
    page          the runs table, curves, what differs, hyperparameters against accuracy, Run actions, import
    state         every session-state and widget key of the page
    widgets       the table with its filters and picks, Run actions (rename, note, delete, download, export),
                  import
    sweeps        the Sweeps section: a sweep's trials, curves, parallel coordinates, importance, Delete"""
