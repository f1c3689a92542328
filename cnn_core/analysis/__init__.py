"""Reading a trained run.

    inspection  filters, feature maps, confusion, mistakes, saliency, Grad-CAM, weight and gradient histograms
    predict     a run's model loaded, pictures classified (one, or a folder of many)
    drawing     the Draw page's: canvas strokes as ink, which runs read a drawing, one drawing's answer and
                first-layer maps
    snapshots   the weights saved at each epoch, for the views across epochs
    compare     several runs side by side as DataFrames
"""
