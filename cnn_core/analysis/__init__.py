"""Reading a trained run.

    inspection   filters, feature maps, confusion, mistakes, where Grad-CAM looks, weight and gradient histograms
    attribution  which pixels made the model answer: saliency, integrated gradients, occlusion, Grad-CAM (captum)
    adversarial  fool the model: FGSM and PGD within an L-inf budget (captum), the robustness curve
    embedding    the classes in a 2-D map of the last hidden features (PCA, t-SNE), its 5-NN accuracy
    dream        what a class or a filter looks like to the model (gradient ascent from grey)
    explain      those four views for the shell (`explain RUN VIEW`): JSON numbers and PNG pictures
    predict      a run's model loaded, pictures classified (one, or a folder of many)
    drawing      the Draw page's: canvas strokes as ink, which runs read a drawing, one drawing's answer and
                 first-layer maps
    snapshots    the weights saved at each epoch, for the views across epochs
    compare      several runs side by side as DataFrames; the class's leaderboard (best run per person, dataset)
"""
