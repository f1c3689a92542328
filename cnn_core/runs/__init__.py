"""A run on disk: <runs>/<id>/ with run.json, metrics.jsonl, checkpoints and snapshots.

    store        the run record (Run), create, read, list, rename, delete, status, steering requests
    metrics_log  metrics.jsonl written line by line, read back as records or frames, cut back on resume
    checkpoints  checkpoints written atomically and loaded weights_only, with what rebuilds the model
    archive      a run as a zip to share, and such a zip imported (checked entry by entry)
    owners       class mode: what a person may see, what they use (runs training, disk), their limits checked
"""
