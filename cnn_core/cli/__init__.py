"""python -m cnn_core.

    entry     the parser and main(); `train --run DIR` waits for its slot before torch is imported
    flags     a flag per setting
    commands  what each command does
"""
