"""Training a run (the recipe itself, written once, is cnn_core/recipe.py).

    trainer    the training loop: steering, Stop, early stopping, divergence, exact resume
    engine     a run trained in this process, its status kept true whatever happens
    jobs       runs as detached processes waiting their turn for a training slot
    gradients  each layer's gradient histogram and size at an epoch's end
    presets    named sets of settings per dataset (tutorial, fast) with what they measured
    lessons    the tutorials' story as lessons: text, a question, the experiments that answer it
"""
