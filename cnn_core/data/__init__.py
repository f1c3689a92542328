"""The datasets: the registry, where their files come from, your own pictures, and the bounds on what a
person brings in.

    catalog   DatasetInfo per dataset (built in, or added from pictures), prepare(), the checked cache,
              load_splits() (normalised tensors, a stratified validation split)
    sources   where a dataset's files come from (torchvision, offline copies, a folder) and their parsers
    pictures  a dataset from your own pictures (a folder or zip of class folders): read, checked, cached
    guards    paths from a browser confined to the import folders, regular files only, byte budgets
"""
