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


# ---- the test image (Feature maps; Attribution and Fool it use it too) --------------------------------------
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
CM_CHART = "inspect.cm_chart"        # the matrix: a click on a cell sets CM_TRUE and CM_PRED
MISTAKES_N = "inspect.mistakes_n"    # Mistakes: how many shown
# Attribution, the tab once called Saliency (its keys kept): the class explained, Grad-CAM's layer
ATTR_CLASS, ATTR_LAYER = "inspect.sal_class", "inspect.sal_layer"
FOOL_EPS, FOOL_METHOD = "inspect.fool_eps", "inspect.fool_method"     # Fool it: the budget, PGD or FGSM
FOOL_PICTURES = "inspect.fool_pictures"   # the original, the change and the changed picture
FOOL_TARGET, FOOL_SMALLEST = "inspect.fool_target", "inspect.fool_smallest"   # "any other" or a class; the search
FOOL_N, FOOL_GO, FOOL_CANCEL = "inspect.fool_n", "inspect.fool_go", "inspect.fool_cancel"   # the robustness curve
FOOL_CURVE = "inspect.fool_curve"   # its chart: test accuracy against the budget
HIST_LAYER = "inspect.hist_layer"    # Histograms: the layer, and its three charts
HIST_W, HIST_G, HIST_G_SPREAD = "inspect.hist_w", "inspect.hist_g", "inspect.hist_g_spread"
MANY = "inspect.many"                # Classify many's result; many(part): its widgets


def feature_map(i: int) -> str:
    """The chart of the i-th layer's feature maps."""
    return f"inspect.fm.{i}"


def kernels(layer: str) -> str:
    """The clickable kernels of a conv layer (each layer its own selection)."""
    return f"inspect.kernels.{layer}"


def cm_chart(true: int, pred: int) -> str:
    """The confusion matrix while (true, pred) is the chosen cell: a fresh chart (no selection) per cell."""
    return f"{CM_CHART}.{true}.{pred}"


def attribution_map(method: str) -> str:
    """The chart of one attribution method (Attribution's four, side by side)."""
    return f"inspect.attr.{method}"


def many(part: str) -> str:
    """A widget of Classify many (files, folder, go, csv, cm), under MANY."""
    return f"{MANY}.{part}"


# ---- Class map and Dreams (maps.py) --------------------------------------------------------------------------
MAP_METHOD, MAP_EPOCH = "inspect.map_method", "inspect.map_epoch"   # Class map: PCA or t-SNE, and its epoch
MAP_CHART = "inspect.map_chart"      # the scatter (its click selection)
MAP_PICKED = "inspect.map_picked"    # the test index last clicked on the map
DREAM_WHAT, DREAM_LAYER, DREAM_EPOCH = "inspect.dream_what", "inspect.dream_layer", "inspect.dream_epoch"   # Dreams
