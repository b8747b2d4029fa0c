"""Explanations of a trained classifier as arrays: Grad-CAM, Grad-CAM++, Score-CAM, vanilla
saliency, SmoothGrad (tf-keras-vis), a direct ``tf.GradientTape`` Grad-CAM, and activation
maximisation (what a layer's filters or a class logit respond to, from random noise or an image).

Every function takes a Keras model whose outputs are logits and images already preprocessed
for it (``Normalization.apply``), and returns NumPy arrays; ``plots.py`` draws them and
``python -m tfcourse.explain`` (``main`` below) writes them for a run folder or an export.

The direct Grad-CAM (``gradcam_tape``) exists for models tf-keras-vis cannot reach into:
tf-keras-vis looks layers up on the outer model, so the convolutions of a transfer model's
nested base (``base/<layer>``) are only reachable here; ``gradcam`` falls back to it for them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from tfcourse import rundir

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "gradcam_tape")
GRADIENT_METHODS = ("saliency", "smoothgrad")
METHODS = CAM_METHODS + GRADIENT_METHODS + ("activation_max", "attention")
_CONV_TYPES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
_NESTED = "/"  # "base/conv5_block3_out": a layer inside the nested model "base"


# ----------------------------------------------------------------------------- layers


def _conv_layers(model) -> List[Any]:
    return [layer for layer in model.layers if type(layer).__name__ in _CONV_TYPES]


def _is_spatial(layer) -> bool:
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4


def _last_conv_in(model) -> Optional[str]:
    """The last layer whose output still has the last convolution's spatial size (its BN/ReLU/Add
    come after it: the rectified feature maps Grad-CAM is defined on), within one Functional model."""
    convs = _conv_layers(model)
    if not convs:
        return None
    last = convs[-1]
    size = tuple(last.output.shape[1:3])
    layers = list(model.layers)
    chosen = last
    for layer in layers[layers.index(last) + 1:]:
        if not _is_spatial(layer):
            break
        if tuple(layer.output.shape[1:3]) != size or type(layer).__name__ in ("Dropout", "SpatialDropout2D"):
            break
        chosen = layer
    return chosen.name


def last_conv_layer(model) -> str:
    """Name of the layer Grad-CAM uses by default (see ``_last_conv_in``); ``base/<name>`` when the
    convolutions live in a nested model.

    Raises:
        ValueError: If the model has no convolutional layer (e.g. an MLP).
    """
    own = _last_conv_in(model)
    if own is not None:
        return own
    for layer in reversed(model.layers):
        if hasattr(layer, "layers"):
            inner = _last_conv_in(layer)
            if inner is not None:
                return f"{layer.name}{_NESTED}{inner}"
    raise ValueError(f"Model {model.name!r} has no convolutional layer, so class activation maps (Grad-CAM, "
                     "Grad-CAM++, Score-CAM) do not apply to it; use --method saliency or smoothgrad, which work "
                     "on any differentiable model.")


def find_layer(model, name: str):
    """The layer ``name`` of ``model`` or, for ``outer/inner``, of the nested model ``outer``."""
    try:
        if _NESTED in name:
            outer, inner = name.split(_NESTED, 1)
            return model.get_layer(outer).get_layer(inner)
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers if _is_spatial(layer)]
        raise ValueError(f"Model {model.name!r} has no layer {name!r}; layers with feature maps: "
                         f"{', '.join(names)} (a nested model's layers as '<model>/<layer>').") from None


def _spatial_layer(model, name: Optional[str]) -> str:
    name = name or last_conv_layer(model)
    layer = find_layer(model, name)
    if not _is_spatial(layer):
        raise ValueError(f"Layer {name!r} outputs shape {tuple(layer.output.shape)}; class activation maps need a "
                         "layer with feature maps (batch, height, width, channels), e.g. the last convolution.")
    return name


# ----------------------------------------------------------------------------- Grad-CAM, direct


def feature_model(model, layer_name: str):
    """A callable ``x -> (feature maps of layer_name, logits)``, also for layers of a nested model."""
    import keras

    if _NESTED not in layer_name:
        combined = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
        return lambda x: combined(x, training=False)
    outer_name, inner_name = layer_name.split(_NESTED, 1)
    nested = model.get_layer(outer_name)
    inner = keras.Model(nested.inputs, [nested.get_layer(inner_name).output, nested.outputs[0]])
    if len(nested._inbound_nodes) != 1:
        raise ValueError(f"The nested model {outer_name!r} is called {len(nested._inbound_nodes)} times; "
                         "Grad-CAM needs exactly one call.")
    node = nested._inbound_nodes[0]
    entry, exit_ = node.input_tensors[0], node.output_tensors[0]
    before = None if entry is model.inputs[0] else keras.Model(model.inputs, entry)
    after = keras.Model(exit_, model.outputs[0])

    def run(x):
        features, nested_out = inner(x if before is None else before(x, training=False), training=False)
        return features, after(nested_out, training=False)

    return run


def _resize_maps(maps: np.ndarray, size) -> np.ndarray:
    """Bilinear upsampling with corners aligned (the first and last pixels of the map land on the
    first and last input pixels), separably with ``np.interp``; the same grid as
    ``scipy.ndimage.zoom(order=1)``, which tf-keras-vis uses, so the two Grad-CAMs are comparable."""
    maps = np.asarray(maps, dtype=np.float64)
    (h, w), (out_h, out_w) = maps.shape[1:3], size
    rows = np.linspace(0, h - 1, out_h)
    cols = np.linspace(0, w - 1, out_w)
    along_rows = np.stack([[np.interp(rows, np.arange(h), m[:, j]) for j in range(w)] for m in maps], 0)  # (N, w, out_h)
    return np.stack([[np.interp(cols, np.arange(w), line) for line in m.T] for m in along_rows], 0)  # (N, out_h, out_w)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scales each map to [0, 1] (min to 0, max to 1; a constant map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float64)
    low = maps.min(axis=tuple(range(1, maps.ndim)), keepdims=True)
    span = maps.max(axis=tuple(range(1, maps.ndim)), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0).astype(np.float32)


def gradcam_tape(model, images, class_ids: Sequence[int], layer: Optional[str] = None, upsample: bool = True):
    """Grad-CAM (Selvaraju et al. 2017) written directly with ``tf.GradientTape``.

    ``cam = ReLU(sum_k mean_ij(d logit_c / d A^k_ij) * A^k)`` on the chosen layer's feature maps
    ``A``, then bilinear upsampling to the input size and scaling to [0, 1] per image.

    Args:
        model: Keras model with logits output (its nested models are reachable as ``outer/inner``).
        images: Preprocessed model inputs (N, H, W, C).
        class_ids: The class explained for each image.
        layer: Feature layer; by default ``last_conv_layer(model)``.
        upsample: Return maps at the input size (else at the feature-map size).

    Returns:
        (N, H, W) float32 maps in [0, 1].
    """
    import tensorflow as tf

    layer = _spatial_layer(model, layer)
    forward = feature_model(model, layer)
    x = tf.convert_to_tensor(np.asarray(images, dtype=np.float32))
    classes = tf.constant(np.asarray(class_ids, dtype=np.int32))
    with tf.GradientTape() as tape:
        features, logits = forward(x)
        scores = tf.gather(logits, classes, axis=1, batch_dims=1)
    gradients = tape.gradient(scores, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1)).numpy()
    if upsample:
        cams = _resize_maps(cams, tuple(x.shape[1:3]))
    return normalize_maps(cams)


# ----------------------------------------------------------------------------- tf-keras-vis


@contextlib.contextmanager
def _quiet_keras():
    """tf-keras-vis's Score-CAM calls ``model.predict``, whose progress bar would flood the log."""
    import keras

    was = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if was:
            keras.config.enable_interactive_logging()


def _score(class_ids):
    from tf_keras_vis.utils.scores import CategoricalScore

    return CategoricalScore([int(c) for c in class_ids])


def _refuse_nested(layer: Optional[str], method: str) -> None:
    """tf-keras-vis looks layers up on the outer model only; ``outer/inner`` is out of its reach."""
    if layer is not None and _NESTED in layer:
        raise ValueError(f"{method} runs through tf-keras-vis, which cannot reach {layer!r} inside a nested model; "
                         "use --method gradcam or gradcam_tape for this model.")


def gradcam(model, images, class_ids: Sequence[int], layer: Optional[str] = None, plus_plus: bool = False):
    """Grad-CAM or Grad-CAM++ by tf-keras-vis, (N, H, W) maps in [0, 1] at the input size.

    A layer inside a nested model (a transfer model's base) is out of tf-keras-vis's reach:
    plain Grad-CAM then runs ``gradcam_tape``; Grad-CAM++ raises ``ValueError``.
    """
    layer = _spatial_layer(model, layer)
    if _NESTED in layer:
        if plus_plus:
            _refuse_nested(layer, "gradcam++")
        return gradcam_tape(model, images, class_ids, layer)  # plain Grad-CAM: the direct implementation
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus

    explainer = (GradcamPlusPlus if plus_plus else Gradcam)(model, clone=False)  # logits already: no modifier
    maps = explainer(_score(class_ids), np.asarray(images, dtype=np.float32), penultimate_layer=layer, seek_penultimate_conv_layer=False)
    return np.asarray(maps, dtype=np.float32)


def scorecam(model, images, class_ids: Sequence[int], layer: Optional[str] = None, max_channels: Optional[int] = 64):
    """Score-CAM (Wang et al. 2020) by tf-keras-vis: each feature map masks the input, the class
    probability of the masked input weighs the map. Costs one forward pass per channel per image;
    ``max_channels`` keeps the channels with the largest activation (Faster Score-CAM), None for all."""
    layer = _spatial_layer(model, layer)
    _refuse_nested(layer, "scorecam")
    from tf_keras_vis.scorecam import Scorecam

    channels = int(find_layer(model, layer).output.shape[-1])
    max_n = -1 if max_channels is None or max_channels >= channels else int(max_channels)
    with _quiet_keras():
        maps = Scorecam(model, clone=False)(_score(class_ids), np.asarray(images, dtype=np.float32),
                                             penultimate_layer=layer, max_N=max_n,
                                             seek_penultimate_conv_layer=False)
    return np.asarray(maps, dtype=np.float32)


def saliency(model, images, class_ids: Sequence[int], smooth_samples: int = 0, smooth_noise: float = 0.2,
             seed: int = 0):
    """Vanilla saliency (|d logit_c / d x|, max over channels) or, with ``smooth_samples`` > 0,
    SmoothGrad (the average over noisy copies, noise std = ``smooth_noise`` x the input's range),
    by tf-keras-vis. (N, H, W) maps in [0, 1]. Works on any differentiable model."""
    import tensorflow as tf
    from tf_keras_vis.saliency import Saliency

    tf.random.set_seed(seed)  # SmoothGrad's noise
    maps = Saliency(model, clone=False)(_score(class_ids), np.asarray(images, dtype=np.float32),
                                        smooth_samples=smooth_samples, smooth_noise=smooth_noise)
    return np.asarray(maps, dtype=np.float32)


def activation_maximization(model, layer: Optional[str] = None, units: Sequence[int] = (0, 1, 2, 3),
                            seed_images=None, input_range=(0.0, 1.0), steps: int = 100, seed: int = 0):
    """Inputs that maximise a layer's filters (filter visualisation) or, with no layer, class logits.

    Gradient ascent by tf-keras-vis (Adam, jitter of 1/8 of the image side and 1-degree rotations
    as input modifiers, its default total-variation and L1-norm regularisers), starting from uniform random noise in
    ``input_range`` (seeded) or from ``seed_images``.

    Args:
        layer: A layer with feature maps (its filters ``units`` are maximised) or a dense layer;
            ``None`` means the logits (``units`` are classes).
        units: Filter indices or class ids, one image each.
        seed_images: Start points (len(units), H, W, C) in model-input space; random noise when None.
        input_range: The model-input range the result is clipped to.

    Returns:
        ``(images, start)``: the optimised inputs and where each one started, both (len(units), H, W, C).
    """
    import tensorflow as tf
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.input_modifiers import Jitter, Rotate2D
    from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer

    if layer is not None:
        found = find_layer(model, layer)
        _refuse_nested(layer, "activation_max")
        width = int(found.output.shape[-1])
        bad = [u for u in units if not 0 <= int(u) < width]
        if bad:
            raise ValueError(f"Layer {layer!r} has {width} units/filters; {bad} out of range (use 0..{width - 1}).")
    shape = (len(units),) + tuple(int(d) for d in model.inputs[0].shape[1:])
    low, high = (np.broadcast_to(np.asarray(v, dtype=np.float32), shape[-1:]) for v in input_range)
    if seed_images is None:
        start = np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32) * (high - low) + low
    else:
        start = np.asarray(seed_images, dtype=np.float32)
    tf.random.set_seed(seed)  # the input modifiers' jitter
    modifier = ExtractIntermediateLayer(layer) if layer is not None else None
    maximizer = ActivationMaximization(model, model_modifier=modifier, clone=modifier is not None)
    # tf-keras-vis jitters by 4 pixels, made for 224x224 inputs; half of an 8x8 digit would drown the signal
    jitter = max(1, min(shape[1:3]) // 8)
    result = maximizer(_score(units), seed_input=start.copy(), steps=steps,
                       input_range=(float(low.min()), float(high.max())),
                       input_modifiers=[Jitter(jitter=jitter), Rotate2D(degree=1)])
    return np.clip(np.asarray(result, dtype=np.float32), low, high), start


def explain(model, method: str, images, class_ids: Sequence[int], layer: Optional[str] = None,
            smooth_samples: int = 20, seed: int = 0) -> Dict[str, Any]:
    """Runs one method of ``CAM_METHODS + GRADIENT_METHODS``; returns ``{"maps": (N, H, W), "layer": name}``."""
    if method in CAM_METHODS:
        layer = _spatial_layer(model, layer)
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
    return {"maps": maps, "layer": layer if method in CAM_METHODS else None}


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


# ----------------------------------------------------------------------------- attention maps


def attention_layers(model) -> List[Any]:
    """The model's ``MultiHeadAttention`` layers in graph order; ``ValueError`` when it has none."""
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.MultiHeadAttention)]
    if not layers:
        raise ValueError(f"Model {model.name!r} has no MultiHeadAttention layer, so there are no attention "
                         "weights to show; --method attention is for the attention and cnn_attention models "
                         "(use gradcam or saliency here).")
    return layers


def _attention_layer_index(model, layer: Optional[str]) -> int:
    layers = attention_layers(model)
    if layer is None:
        return len(layers) - 1
    names = [entry.name for entry in layers]
    if layer not in names:
        raise ValueError(f"{layer!r} is not a MultiHeadAttention layer of {model.name!r}; choose one of "
                         f"{', '.join(names)}.")
    return names.index(layer)


def token_grid(model) -> Dict[str, Any]:
    """How the attention tokens map onto the image: ``grid`` (rows, columns) of the patch/position
    tokens and ``class_token`` (whether a learned class token comes first)."""
    import keras

    from tfcourse.models.layers import ClassToken

    for layer in model.layers:
        if isinstance(layer, keras.layers.Reshape) and len(layer.input.shape) == 4 and len(layer.output.shape) == 3:
            grid = (int(layer.input.shape[1]), int(layer.input.shape[2]))
            return {"grid": grid, "class_token": any(isinstance(entry, ClassToken) for entry in model.layers)}
    raise ValueError(f"Model {model.name!r} has no grid-to-tokens Reshape, so its attention cannot be placed on "
                     "the image.")


def attention_weights(model, images, batch_size: int = 256) -> List[np.ndarray]:
    """Every attention layer's weights for ``images``: a list of ``(N, heads, tokens, tokens)`` arrays,
    each row (a query token's attention over the key tokens) summing to 1."""
    import keras

    layers = attention_layers(model)
    probe = keras.Model(model.inputs, [layer.output[1] for layer in layers])
    parts = [[] for _ in layers]
    for start in range(0, len(images), batch_size):
        outputs = probe([np.asarray(images[start:start + batch_size], dtype=np.float32)], training=False)
        for part, output in zip(parts, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
            part.append(np.asarray(output))
    return [np.concatenate(part) for part in parts]


def attention_rollout(weights: Sequence[np.ndarray]) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): per layer the heads' mean plus the identity for the
    residual connection, rows renormalised, multiplied through the layers: ``(N, tokens, tokens)``."""
    result = None
    for layer_weights in weights:
        mixed = 0.5 * layer_weights.mean(axis=1) + 0.5 * np.eye(layer_weights.shape[-1])[None]
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        result = mixed if result is None else mixed @ result
    return result


def patch_attention(matrix: np.ndarray, grid, class_token: bool) -> np.ndarray:
    """Attention over the image's patches from ``(N, tokens, tokens)`` matrices: the class token's row
    (without itself) when there is one, otherwise the mean attention each token receives;
    ``(N, rows, columns)``."""
    if class_token:
        received = matrix[:, 0, 1:]
    else:
        received = matrix.mean(axis=1)
    return received.reshape(len(matrix), grid[0], grid[1])


def attention_maps(model, images, layer: Optional[str] = None, rollout: bool = False) -> Dict[str, Any]:
    """Attention weights of every layer and the attention over patches of one layer (or the rollout
    through all), upsampled to image size and scaled to [0, 1] per image for overlays. ``index`` is
    the position of ``layer`` (default: the last attention layer) in ``layers``."""
    weights = attention_weights(model, images)
    index = _attention_layer_index(model, layer)
    tokens = token_grid(model)
    matrix = attention_rollout(weights) if rollout else weights[index].mean(axis=1)
    patches = patch_attention(matrix, tokens["grid"], tokens["class_token"])
    size = np.asarray(images).shape[1:3]
    if size[0] % tokens["grid"][0] == 0 and size[1] % tokens["grid"][1] == 0:  # whole patches: show them as blocks
        upsampled = np.kron(patches, np.ones((size[0] // tokens["grid"][0], size[1] // tokens["grid"][1])))
    else:
        upsampled = _resize_maps(patches, size)
    names = [entry.name for entry in attention_layers(model)]
    return {"weights": weights, "layers": names, "index": index, "layer": "rollout" if rollout else names[index],
            "patches": patches, "maps": normalize_maps(upsampled), **tokens}


def correlation(a, b) -> float:
    """Pearson correlation of two arrays, flattened."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(np.corrcoef(a, b)[0, 1])


def silhouette_ratio(maps, raw_images, threshold: int = 0) -> Dict[str, float]:
    """How much a heatmap sits on the object: mean heat inside the silhouette (pixels brighter than
    ``threshold``, all channels' max) over mean heat on the background, and the share of all heat inside."""
    maps = np.asarray(maps, dtype=np.float64)
    inside = np.asarray(raw_images).max(axis=-1) > threshold
    heat_in = float(maps[inside].mean()) if inside.any() else 0.0
    heat_out = float(maps[~inside].mean()) if (~inside).any() else 0.0
    return {"mean_inside": heat_in, "mean_outside": heat_out,
            "ratio": heat_in / heat_out if heat_out > 0 else float("inf"),
            "share_inside": float(maps[inside].sum() / maps.sum()) if maps.sum() > 0 else 0.0,
            "area_inside": float(inside.mean())}


# ----------------------------------------------------------------------------- command line


def pick_examples(labels, predictions, per_class: int = 1, correct_only: bool = True) -> np.ndarray:
    """Positions of the first ``per_class`` examples of each class (correctly classified ones first)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    chosen = []
    for class_id in np.unique(labels):
        members = np.flatnonzero(labels == class_id)
        right = members[predictions[members] == class_id]
        pool = list(right) + ([] if correct_only and len(right) >= per_class else list(members[predictions[members] != class_id]))
        chosen.extend(pool[:per_class])
    return np.asarray(chosen, dtype=np.int64)


def parse_units(text: str) -> List[int]:
    """``--units 0,1,2``: filter or class indices.

    Raises:
        ValueError: Naming the entry that is not a non-negative integer.
    """
    units = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"--units {text!r}: {part!r} is not a filter or class index; give non-negative "
                             "integers separated by commas, e.g. --units 0,1,2.")
        units.append(int(part))
    return units


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.explain",
        description="Explain a trained model: heatmaps (.npz) and figures for one test example per class.")
    parser.add_argument("target", help="a run folder (model.keras + config.json) or a SavedModel export folder")
    parser.add_argument("--method", action="append", choices=METHODS + ("all",), default=None,
                        help="repeatable; default gradcam. 'all' = every method that applies to the model")
    parser.add_argument("--layer", default=None,
                        help="feature layer for CAM methods (default: the last convolutional block), the layer "
                             "whose filters activation_max visualises (default: the logits, one image per class), "
                             "or the MultiHeadAttention layer attention draws (default: the last)")
    parser.add_argument("--examples-per-class", type=int, default=1)
    parser.add_argument("--units", default=None, help="activation_max: comma-separated filter/class indices")
    parser.add_argument("--start", choices=("noise", "image"), default="noise",
                        help="activation_max: start from random noise (default) or from the test examples")
    parser.add_argument("--steps", type=int, default=100, help="activation_max: gradient-ascent steps")
    parser.add_argument("--smooth-samples", type=int, default=20, help="SmoothGrad's noisy copies")
    parser.add_argument("--head", type=int, default=0, help="attention: the head whose attention matrix is drawn")
    parser.add_argument("--rollout", action="store_true",
                        help="attention: map the attention rollout through all layers instead of one layer")
    parser.add_argument("--keras-model", default=None,
                        help="for an export: the .keras model to take gradients of (default: the run folder "
                             "recorded in the export)")
    parser.add_argument("--output-dir", default=None, help="default: <run folder>/explain")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    from tfcourse import artifacts, report

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with rundir.sigterm_unwinds():
            written = _explain_command(args, artifacts, report)
    except ValueError as error:
        print(f"tfcourse.explain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # an output folder that cannot be written (read-only, full disk)
        print(f"tfcourse.explain: error: cannot write {error.filename or 'the output'}: {error.strerror}; pass "
              "another --output-dir.", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        rundir.interrupted_exit(parser, error)
    for path in written:
        print(path)
    return 0


def _explain_command(args, artifacts, report) -> List[str]:
    """The explanations ``args`` ask for, written; returns the paths."""
    run = artifacts.load(args.target, keras_model=args.keras_model)
    model = run.keras_model(required_for="explanations need gradients")
    methods = args.method or ["gradcam"]
    if "all" in methods:
        methods = [m for m in METHODS if method_applies(model, m)]
    for method in methods:
        check_method(model, method, args.layer if method in CAM_METHODS + ("activation_max", "attention") else None)
    if args.examples_per_class < 1 or args.steps < 1 or args.smooth_samples < 1:
        raise ValueError("--examples-per-class, --steps and --smooth-samples must be at least 1.")
    units = parse_units(args.units) if args.units else None
    out_dir = args.output_dir or os.path.join(run.run_dir or ".", "explain")
    rundir.check_writable_folder(out_dir, "--output-dir")
    written = report.write_explanations(run, model, methods, out_dir, layer=args.layer,
                                        per_class=args.examples_per_class, units=units, start=args.start,
                                        steps=args.steps, smooth_samples=args.smooth_samples,
                                        seed=args.seed, progress=True, head=args.head, rollout=args.rollout)
    return written


if __name__ == "__main__":
    sys.exit(main())
