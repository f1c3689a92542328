"""Forward hooks that keep chosen layers' outputs: feature maps, Grad-CAM's activations, the exported
model's shapes. Only the calling thread's forward passes are kept, so a model shared between Streamlit
sessions can be recorded by one while another runs it."""
from __future__ import annotations

import threading
from contextlib import contextmanager

from torch import nn


@contextmanager
def recording(layers: list[tuple[str, nn.Module]], outputs: dict):
    """Forward hooks that keep each layer's output in `outputs`, only for calls from this thread."""
    me = threading.get_ident()

    def hook(name):
        def record(_m, _inp, out):
            if threading.get_ident() == me and name not in outputs:
                outputs[name] = out
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in layers]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()
