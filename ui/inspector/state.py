"""Every session-state key and widget key of the Inspect page, named once: the run and its weights, the
test-image picker, and each view's widgets. The strings are what users' sessions and the tests hold; a new
key gets its name here."""
from __future__ import annotations

# ---- the run and its weights ------------------------------------------------------------------------------
RUN = "inspect.run"                  # the run picker (set from ?run= too)
REFRESH = "inspect.refresh"          # "Check for new epochs" while the run trains


def weights(run_id: str) -> str:
    """The weights slider of a run (each run keeps the epoch picked on it)."""
    return f"inspect.weights.{run_id}"


# ---- the test image (Feature maps; Saliency uses it too) ---------------------------------------------------
IMG_MODE = "inspect.img_mode"        # index, class, random or mistake
IMG_N = "inspect.img_n"              # the index (mode index)
IMG_N_CLS, IMG_N_ERR = IMG_N + ".cls", IMG_N + ".err"   # which one of the class, which mistake: boxes of their own
IMG_CLS = "inspect.img_cls"
IMG_SEED, IMG_NEXT = "inspect.img_seed", "inspect.img_next"   # the random pick's seed, and its button


def when(key: str) -> str:
    """What widget `key` was last reset for (widgets.reset_on): a new image or new weights reset it."""
    return f"{key}.when"


# ---- the views ------------------------------------------------------------------------------------------------
FILTER_LAYER, PER_FILTER, GRADS = "inspect.filter_layer", "inspect.per_filter", "inspect.grads"   # Filters
K_LAYER = "inspect.k_layer"          # Feature maps: a kernel and the map it makes
KERNEL_ONE, KERNEL_MAP = "inspect.kernel_one", "inspect.kernel_map"
CM_NORM, CM_TRUE, CM_PRED = "inspect.cm_norm", "inspect.cm_true", "inspect.cm_pred"   # Confusion
MISTAKES_N = "inspect.mistakes_n"    # Mistakes: how many shown
SAL_CLASS, SAL_METHOD, SAL_LAYER = "inspect.sal_class", "inspect.sal_method", "inspect.sal_layer"   # Saliency
HIST_LAYER = "inspect.hist_layer"    # Histograms: the layer, and its three charts
HIST_W, HIST_G, HIST_G_SPREAD = "inspect.hist_w", "inspect.hist_g", "inspect.hist_g_spread"
MANY = "inspect.many"                # Classify many's result; many(part): its widgets


def feature_map(i: int) -> str:
    """The chart of the i-th layer's feature maps."""
    return f"inspect.fm.{i}"


def kernels(layer: str) -> str:
    """The clickable kernels of a conv layer (each layer its own selection)."""
    return f"inspect.kernels.{layer}"


def many(part: str) -> str:
    """A widget of Classify many (files, folder, go, csv, cm), under MANY."""
    return f"{MANY}.{part}"
