"""Saliency maps of a trained classifier as arrays: Grad-CAM, Grad-CAM++, Score-CAM, vanilla
saliency, SmoothGrad (tf-keras-vis), a direct ``tf.GradientTape`` Grad-CAM, and activation
maximisation (what a layer's filters or a class logit respond to, from random noise or an image).

Every function takes a Keras model whose outputs are logits and images already preprocessed
for it (``Normalization.apply``), and returns NumPy arrays. A mixed-precision model is explained
through its float32 copy (``in_float32``).

The direct Grad-CAM (``gradcam_tape``) exists for models tf-keras-vis cannot reach into:
tf-keras-vis looks layers up on the outer model, so the convolutions of a transfer model's
nested base (``base/<layer>``) are only reachable here; ``gradcam`` falls back to it for them.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, List, Optional, Sequence

import numpy as np

from tfcourse.models import float32_copy

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "gradcam_tape")
GRADIENT_METHODS = ("saliency", "smoothgrad")
_CONV_TYPES = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")
_NESTED = "/"  # "base/conv5_block3_out": a layer inside the nested model "base"


def in_float32(explainer):
    """``explainer(model, ...)`` run on ``models.float32_copy(model)``: gradients and maps of a bfloat16
    model would come back coarse (8 bits of mantissa) and in a dtype SciPy and Matplotlib cannot use."""

    @functools.wraps(explainer)
    def wrapper(model, *args, **kwargs):
        return explainer(float32_copy(model), *args, **kwargs)

    return wrapper


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
    for layer in layers[layers.index(last) + 1 :]:
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
    raise ValueError(
        f"Model {model.name!r} has no convolutional layer, so class activation maps (Grad-CAM, "
        "Grad-CAM++, Score-CAM) do not apply to it; use --method saliency or smoothgrad, which work "
        "on any differentiable model."
    )


def earlier_layer(model, layer: Optional[str] = None) -> Optional[str]:
    """The layer one resolution earlier than ``layer`` (default ``last_conv_layer``): the last layer whose
    feature maps have the next larger spatial size (a block's rectified output before its pooling), or
    ``None`` when there is none (the first block, a nested model's layer, a model without convolutions)."""
    try:
        layer = layer or last_conv_layer(model)
    except ValueError:
        return None
    if _NESTED in layer:
        return None
    size = tuple(find_layer(model, layer).output.shape[1:3])
    larger = [
        candidate
        for candidate in model.layers
        if _is_spatial(candidate)
        and type(candidate).__name__ not in ("InputLayer", "Dropout", "SpatialDropout2D")
        and tuple(candidate.output.shape[1:3]) > size
    ]
    if not larger:
        return None
    nearest = min(tuple(candidate.output.shape[1:3]) for candidate in larger)
    return [candidate for candidate in larger if tuple(candidate.output.shape[1:3]) == nearest][-1].name


def find_layer(model, name: str):
    """The layer ``name`` of ``model`` or, for ``outer/inner``, of the nested model ``outer``."""
    try:
        if _NESTED in name:
            outer, inner = name.split(_NESTED, 1)
            return model.get_layer(outer).get_layer(inner)
        return model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers if _is_spatial(layer)]
        raise ValueError(
            f"Model {model.name!r} has no layer {name!r}; layers with feature maps: "
            f"{', '.join(names)} (a nested model's layers as '<model>/<layer>')."
        ) from None


def _spatial_layer(model, name: Optional[str]) -> str:
    name = name or last_conv_layer(model)
    layer = find_layer(model, name)
    if not _is_spatial(layer):
        raise ValueError(
            f"Layer {name!r} outputs shape {tuple(layer.output.shape)}; class activation maps need a "
            "layer with feature maps (batch, height, width, channels), e.g. the last convolution."
        )
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
        raise ValueError(
            f"The nested model {outer_name!r} is called {len(nested._inbound_nodes)} times; "
            "Grad-CAM needs exactly one call."
        )
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
    along_rows = np.stack(
        [[np.interp(rows, np.arange(h), m[:, j]) for j in range(w)] for m in maps], 0
    )  # (N, w, out_h)
    return np.stack([[np.interp(cols, np.arange(w), line) for line in m.T] for m in along_rows], 0)  # (N, out_h, out_w)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scales each map to [0, 1] (min to 0, max to 1; a constant map becomes 0)."""
    maps = np.asarray(maps, dtype=np.float64)
    low = maps.min(axis=tuple(range(1, maps.ndim)), keepdims=True)
    span = maps.max(axis=tuple(range(1, maps.ndim)), keepdims=True) - low
    return np.divide(maps - low, span, out=np.zeros_like(maps), where=span > 0).astype(np.float32)


@in_float32
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
        raise ValueError(
            f"{method} runs through tf-keras-vis, which cannot reach {layer!r} inside a nested model; "
            "use --method gradcam or gradcam_tape for this model."
        )


@in_float32
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
    maps = explainer(
        _score(class_ids),
        np.asarray(images, dtype=np.float32),
        penultimate_layer=layer,
        seek_penultimate_conv_layer=False,
    )
    return np.asarray(maps, dtype=np.float32)


@in_float32
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
        maps = Scorecam(model, clone=False)(
            _score(class_ids),
            np.asarray(images, dtype=np.float32),
            penultimate_layer=layer,
            max_N=max_n,
            seek_penultimate_conv_layer=False,
        )
    return np.asarray(maps, dtype=np.float32)


@in_float32
def saliency(
    model, images, class_ids: Sequence[int], smooth_samples: int = 0, smooth_noise: float = 0.2, seed: int = 0
):
    """Vanilla saliency (|d logit_c / d x|, max over channels) or, with ``smooth_samples`` > 0,
    SmoothGrad (the average over noisy copies, noise std = ``smooth_noise`` x the input's range),
    by tf-keras-vis. (N, H, W) maps in [0, 1]. Works on any differentiable model."""
    import tensorflow as tf
    from tf_keras_vis.saliency import Saliency

    tf.random.set_seed(seed)  # SmoothGrad's noise
    maps = Saliency(model, clone=False)(
        _score(class_ids),
        np.asarray(images, dtype=np.float32),
        smooth_samples=smooth_samples,
        smooth_noise=smooth_noise,
    )
    return np.asarray(maps, dtype=np.float32)


@in_float32
def activation_maximization(
    model,
    layer: Optional[str] = None,
    units: Sequence[int] = (0, 1, 2, 3),
    seed_images=None,
    input_range=(0.0, 1.0),
    steps: int = 100,
    seed: int = 0,
):
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
    tf.random.set_seed(seed)
    modifier = ExtractIntermediateLayer(layer) if layer is not None else None
    maximizer = ActivationMaximization(model, model_modifier=modifier, clone=modifier is not None)
    # tf-keras-vis jitters by 4 pixels, made for 224x224 inputs; half of an 8x8 digit would drown the signal
    jitter = max(1, min(shape[1:3]) // 8)
    rotate = Rotate2D(degree=1)
    rotate.random_generator = np.random.default_rng(seed)  # its own generator is unseeded
    numpy_state = np.random.get_state()  # Jitter draws its shifts from NumPy's global generator
    np.random.seed(seed)
    try:
        result = maximizer(
            _score(units),
            seed_input=start.copy(),
            steps=steps,
            input_range=(float(low.min()), float(high.max())),
            input_modifiers=[Jitter(jitter=jitter), rotate],
        )
    finally:
        np.random.set_state(numpy_state)
    return np.clip(np.asarray(result, dtype=np.float32), low, high), start
