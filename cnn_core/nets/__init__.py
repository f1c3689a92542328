"""The networks.

    blocks         the nn.Modules the architectures are built from
    architectures  the registry: each tutorial model with its knobs (Param), build_model, layer_table
    layers         a network as a list of layers: the layer editor's plan (shapes, parameters, formulas,
                   receptive fields, what does not fit), the model built from it
    limits         how big a network may be: parameters and a batch's activations against the limits
    slips          where the tutorials slipped, computed for the model at hand
    hooks          forward hooks that keep chosen layers' outputs (feature maps, Grad-CAM)
"""
