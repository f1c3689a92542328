"""Training a run.

    augment      augmentation of a whole batch with torch ops
    optimizers   the optimizer and learning-rate schedule a config names
    evaluation   how a batch meets the model, loss and accuracy on a split, gradient histograms
    trainer      the training loop: steering, Stop, early stopping, divergence, exact resume
    engine       a run trained in this process, its status kept true whatever happens
    jobs         runs as detached processes waiting their turn for a training slot
    presets      named sets of settings per dataset (tutorial, fast) with what they measured
"""
