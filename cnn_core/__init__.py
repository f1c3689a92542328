"""cnn_core: everything the dashboard does, as a plain PyTorch library (no Streamlit, no plotly).

Packages, lowest first; a module imports only from its own package and those below it
(tests/test_import_graph.py):

    core      settings, files, faults, devices, distributed, progress: what every other part stands on
    recipe    (a module) how a run trains: split, augmentation, optimizer, schedule, step, evaluation;
              plain functions importing nothing of cnn_core, copied whole into an exported script
    data      catalog, sources, pictures, guards: the datasets, where their files come from, your own
              pictures, and the bounds on what a person brings in
    nets      blocks, architectures, layers, limits, slips, hooks: the networks
    config    (a module) TrainConfig: what a run is, one Setting per option
    runs      store, metrics_log, checkpoints, archive: a run on disk
    train     trainer, engine, jobs, gradients, presets: training a run
    analysis  inspection, predict, drawing, snapshots, compare: reading a trained run
    export    formats, standalone: a run as ONNX, .pt2, TorchScript or one plain PyTorch file
    sweeps    ledger, driver: many runs from one base config
    cli       entry, flags, commands: python -m cnn_core

From Python (README, "From Python", has the whole example):

    from cnn_core.config import TrainConfig
    from cnn_core.data import catalog
    from cnn_core.runs import store
    from cnn_core.train import engine
"""
