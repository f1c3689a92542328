"""Which pixels made the model say a class: four attributions for one picture, all from captum (PyTorch's
interpretability library), each a (H, W) map the size of the picture.

- saliency: |d score / d pixel|, the largest over channels: where a tiny change moves the score most.
- integrated gradients: the gradient summed along the straight path from a black picture to this one,
  times the difference (Sundararajan et al. 2017): how much each pixel adds to the score against black.
- occlusion: the score's drop when a small grey-out square covers each place (Zeiler and Fergus 2014):
  slow, but asks the model directly, no gradients.
- Grad-CAM: the last conv maps weighted by their mean gradient, rectified and upsampled (Selvaraju et al.
  2017): coarse, by region.

Saliency and Grad-CAM are 0..1; integrated gradients and occlusion are signed (-1..1: red helps the class,
blue speaks against it). Every function takes a model in eval mode and leaves it untouched.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    Occlusion,
    Saliency,
)
from torch import nn

from cnn_core.analysis.inspection import batch_of_one, default_cam_layer, feature_layers

METHODS = {
    "saliency": "where a tiny change to a pixel moves the class score most (the gradient's size)",
    "integrated gradients": "how much each pixel adds to the class score compared with a black picture",
    "occlusion": "how far the class score falls when a small square over each place is greyed out",
    "grad-cam": "which regions of the last conv layer's maps push the class score up (coarse)",
}
SIGNED = {"integrated gradients", "occlusion"}
IG_STEPS = 32


def _black(meta: dict, x: torch.Tensor) -> torch.Tensor:
    """A black picture, normalized as the model sees it (pixel 0 is -mean/std, not 0)."""
    mean = torch.as_tensor(meta["mean"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.as_tensor(meta["std"], dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return ((0 - mean) / std).expand_as(x).contiguous()


def _unit(t: torch.Tensor) -> np.ndarray:
    """0..1 by the largest value (all zero stays zero)."""
    t = t.detach().float().cpu()
    top = float(t.max())
    return (t / top if top > 0 else t).numpy()


def _signed(t: torch.Tensor) -> np.ndarray:
    """-1..1 by the largest magnitude, sign kept."""
    t = t.detach().float().cpu()
    top = float(t.abs().max())
    return (t / top if top > 0 else t).numpy()


def gradient_saliency(model: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """|dScore/dPixel|, the largest over channels, for one normalized image: (H, W) scaled to 0..1."""
    xb = batch_of_one(x, model, target).requires_grad_(True)   # else captum warns that it switched gradients on
    grad = Saliency(model).attribute(xb, target=target, abs=True)            # (1, C, H, W)
    return _unit(grad[0].amax(0))


def integrated_gradients(model: nn.Module, x: torch.Tensor, target: int, meta: dict,
                         steps: int = IG_STEPS) -> np.ndarray:
    """Integrated gradients from a black picture, summed over channels: (H, W) in -1..1."""
    xb = batch_of_one(x, model, target).requires_grad_(True)
    attr = IntegratedGradients(model).attribute(xb, _black(meta, xb), target=target, n_steps=steps,
                                                internal_batch_size=steps)
    return _signed(attr[0].sum(0))


def occlusion(model: nn.Module, x: torch.Tensor, target: int, meta: dict) -> np.ndarray:
    """The class score's drop with a grey-out square (a sixth of the side, half-overlapping) at each place,
    summed over channels: (H, W) in -1..1. Grey is the training mean, 0 once normalized."""
    xb = batch_of_one(x, model, target)
    side = max(2, xb.shape[-1] // 7)
    attr = Occlusion(model).attribute(xb, sliding_window_shapes=(xb.shape[1], side, side),
                                      strides=(xb.shape[1], max(1, side // 2), max(1, side // 2)),
                                      baselines=0.0, target=target, perturbations_per_eval=64)
    return _signed(attr[0].sum(0))


def grad_cam(model: nn.Module, x: torch.Tensor, target: int, layer: str | None = None) -> np.ndarray:
    """Grad-CAM of class `target` for one normalized image (C, H, W) at feature layer `layer` (default: the
    last conv's output), upsampled to (H, W) bilinearly and scaled to 0..1."""
    layer = layer or default_cam_layer(model)
    named = dict(feature_layers(model))
    if layer not in named:
        raise ValueError(f"no feature layer {layer!r} for Grad-CAM; choose one of: {', '.join(named) or 'none'}")
    xb = batch_of_one(x, model, target)
    # captum hooks the layer for every caller: a private copy keeps other sessions' passes out of it
    own = copy.deepcopy(model)
    module = dict(feature_layers(own))[layer]
    cam = LayerGradCam(own, module).attribute(xb, target=target, relu_attributions=True)    # (1, 1, h, w)
    cam = LayerAttribution.interpolate(cam, tuple(xb.shape[2:]), "bilinear")
    return _unit(cam[0, 0].clamp_min(0))


def attribute_all(model: nn.Module, x: torch.Tensor, target: int, meta: dict) -> dict[str, np.ndarray]:
    """Every method's map for one normalized image, in METHODS' order (Grad-CAM only with a conv layer)."""
    out = {"saliency": gradient_saliency(model, x, target),
           "integrated gradients": integrated_gradients(model, x, target, meta),
           "occlusion": occlusion(model, x, target, meta)}
    if default_cam_layer(model) is not None:
        out["grad-cam"] = grad_cam(model, x, target)
    return out
