"""Explanations of a trained classifier: what each method shows, as NumPy arrays.

- ``cams``: Grad-CAM, Grad-CAM++, Score-CAM, a direct GradientTape Grad-CAM, saliency, SmoothGrad
  (tf-keras-vis) and activation maximisation;
- ``attention``: attention weights, rollout and patch maps of ``MultiHeadAttention`` models;
- ``faithfulness``: deletion / insertion AUCs against random and edge maps, the randomisation check;
(the files a run's explanations are written to, and the silhouette measure, are ``tfcourse.pages.gallery``;
the command is ``python -m tfcourse.explain RUN``).

This module is the methods' one entry point: ``METHODS``, ``explain``, ``check_method``,
``method_applies``.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, Optional, Sequence

from tfcourse.explanations.attention import (  # noqa: F401  (the package's face)
    _attention_layer_index,
    attention_layers,
    attention_maps,
    attention_rollout,
    attention_weights,
    patch_attention,
    token_grid,
)
from tfcourse.explanations.cams import (  # noqa: F401
    CAM_METHODS,
    GRADIENT_METHODS,
    _refuse_nested,
    _spatial_layer,
    activation_maximization,
    earlier_layer,
    feature_model,
    find_layer,
    gradcam,
    gradcam_tape,
    last_conv_layer,
    normalize_maps,
    saliency,
    scorecam,
)

METHODS = CAM_METHODS + GRADIENT_METHODS + ("activation_max", "attention")


def explain(
    model,
    method: str,
    images,
    class_ids: Sequence[int],
    layer: Optional[str] = None,
    smooth_samples: int = 20,
    seed: int = 0,
) -> Dict[str, Any]:
    """Runs one method of ``CAM_METHODS + GRADIENT_METHODS``; returns ``{"maps": (N, H, W), "layer": name}``.

    A mixed-precision model is explained through its float32 copy (each method is ``cams.in_float32``).
    """
    if method in CAM_METHODS:
        layer = _spatial_layer(model, layer)
    with warnings.catch_warnings():
        # tf-keras-vis hands a one-input model a list of one tensor; Keras 3 warns and reads it all the same
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match", category=UserWarning)
        maps = _maps(model, method, images, class_ids, layer, smooth_samples, seed)
    return {"maps": maps, "layer": layer if method in CAM_METHODS else None}


def _maps(model, method: str, images, class_ids, layer, smooth_samples: int, seed: int):
    if method == "gradcam":
        maps = gradcam(model, images, class_ids, layer)
    elif method == "gradcam++":
        maps = gradcam(model, images, class_ids, layer, plus_plus=True)
    elif method == "scorecam":
        maps = scorecam(model, images, class_ids, layer)
    elif method == "gradcam_tape":
        maps = gradcam_tape(model, images, class_ids, layer)
    elif method == "saliency":
        maps = saliency(model, images, class_ids, seed=seed)
    elif method == "smoothgrad":
        maps = saliency(model, images, class_ids, smooth_samples=smooth_samples, seed=seed)
    else:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(METHODS)}.")
    return maps


def check_method(model, method: str, layer: Optional[str] = None) -> None:
    """Raises ``ValueError`` now if ``method`` cannot run on ``model`` (before anything is written)."""
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}; choose from {', '.join(METHODS)}.")
    if method == "attention":
        _attention_layer_index(model, layer)
        token_grid(model)
    if method in CAM_METHODS:
        name = _spatial_layer(model, layer)
        if method in ("gradcam++", "scorecam"):
            _refuse_nested(name, method)
    elif method == "activation_max" and layer is not None:
        find_layer(model, layer)
        _refuse_nested(layer, method)


def method_applies(model, method: str) -> bool:
    try:
        check_method(model, method)
    except ValueError:
        return False
    return True
