"""Many runs from one base config: a grid or sampled values, on the local queue or a Ray cluster.

    ledger  a sweep's record (<runs>/.sweeps/<id>.json): create, read, list, cancel, scores
    driver  the process that asks Optuna for trials and runs each as a run
"""
