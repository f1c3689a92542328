"""What every other part stands on.

    settings     Setting: one option's kind, range, label, help and form section, and its checks
    files        files replaced whole (atomic_write), JSON written atomically, stale temp files removed
    faults       named fault points the reliability tests fire (CNN_FAULT)
    devices      the best device present (CUDA, MPS, CPU) and the name a person chose checked
    distributed  who this process is under torchrun, and the collectives the engine needs
    progress     the CLI's progress bar and durations; output to a terminal that may have gone away
    people       class mode: who acts (Person), what the class allows (Policy), the owner checks
"""
