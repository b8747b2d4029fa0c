"""Pieces shared by the model families."""

from __future__ import annotations

import keras

from tfcourse.models.layers import FusedBatchNormalization

# Moving statistics over ~10 steps instead of Keras' ~100 (PyTorch's default too): on small
# datasets (scikit-learn digits: 12 steps an epoch) the default evaluates with stale statistics
# for many epochs.
BN_MOMENTUM = 0.9


def check_poolings(
    input_shape, halvings: int, setting: str, unit: str = "blocks", offset: int = 0, fewest: int = 1
) -> None:
    """Raises ``ValueError`` if ``halvings`` 2x downsamplings would shrink ``input_shape`` below 1x1.

    Args:
        setting: What asked for them, for the message (e.g. ``conv_blocks=5``).
        unit, offset: The message advises at most ``max halvings + offset`` ``unit``.
        fewest: The fewest ``unit`` the model allows; an input too small even for those is
            refused with the smallest image size that works.
    """
    height, width = input_shape[0], input_shape[1]
    if min(height, width) >> halvings < 1:
        most = max(min(height, width).bit_length() - 1, 0) + offset
        if most < fewest:
            raise ValueError(
                f"A {height}x{width} input is too small for this model ({setting} halves it below 1x1, "
                f"and so would the fewest it allows, {fewest} {unit}); use images of at least "
                f"{2 ** (fewest - offset)}x{2 ** (fewest - offset)} (--image-size for an image folder) or the "
                "mlp model."
            )
        raise ValueError(
            f"{setting} halves a {height}x{width} input below 1x1; use at most {most} {unit} for this input size."
        )


def most_halvings(input_shape) -> int:
    """How many 2x downsamplings an ``(H, W, ...)`` input takes before a side falls below 1 pixel."""
    return max(min(input_shape[0], input_shape[1]).bit_length() - 1, 0)


def depth_hp(hp, name: str, low: int, high: int, default: int, input_shape, offset: int = 0) -> int:
    """``hp.Int(name, low, high)`` for a stack of halving blocks, its top cut to what the input fits.

    A search then never draws a depth that halves the input below 1x1 (an 8x8 digit takes 3 halvings,
    a 28x28 image 4): the declared range follows the data. ``offset``: blocks that do not halve (a
    ResNet's first stage). An input too small even for ``low`` keeps ``low``; ``check_poolings`` names it.
    """
    top = max(low, min(high, most_halvings(input_shape) + offset))
    return hp.Int(name, low, top, default=min(default, top))


def batch_norm_layer(name: str):
    """Batch norm over the channels of an image feature map (the fused kernel: see ``FusedBatchNormalization``)."""
    return FusedBatchNormalization(momentum=BN_MOMENTUM, name=name)


def logits_layer(units: int, name: str = "logits"):
    """The output ``Dense`` layer, computing in float32 under any dtype policy: under ``mixed_bfloat16``
    the logits, softmax and loss keep float32's precision (bfloat16 has 8 bits of mantissa)."""
    return keras.layers.Dense(units, name=name, dtype="float32")


def conv_bn_activation(x, filters: int, kernel_size: int, batch_norm: bool, activation: str, name: str):
    """``Conv2D`` (same padding; no bias when batch norm follows) -> optional ``BatchNormalization`` -> activation.

    Layers are named ``name``, ``{name}_bn`` and ``{name}_{activation}``.
    """
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm, name=name)(x)
    if batch_norm:
        x = batch_norm_layer(f"{name}_bn")(x)
    return keras.layers.Activation(activation, name=f"{name}_{activation}")(x)


HEADS = ["flatten", "gap", "gmp"]


def feature_head(x, head: str):
    """The step from the last feature map to the dense head, named ``features``.

    ``flatten`` keeps every position (each dense weight belongs to one place in the image);
    ``gap`` (global average pooling) averages each channel over the image, so the logits are a
    weighted sum of channel means: fewer parameters, translation invariant, and the head for
    which Grad-CAM equals the class activation map (CAM) of Zhou et al. 2016 when the logits follow
    the pooling directly (``dense_layers=0``); ``gmp`` (global max pooling) keeps each channel's
    strongest response wherever it is (the fast recipe's head, as in airbench and the PyTorch speed runs).
    """
    if head == "gap":
        return keras.layers.GlobalAveragePooling2D(name="features")(x)
    if head == "gmp":
        return keras.layers.GlobalMaxPooling2D(name="features")(x)
    if head == "flatten":
        return keras.layers.Flatten(name="features")(x)
    raise ValueError(f"head={head!r} is not one of {HEADS}.")


def dense_head(x, num_classes: int, layers: int, units: int, activation: str, dropout: float):
    """``layers`` x [Dense(``units``, ``activation``) -> optional Dropout], then the logits.

    Layers are named ``dense_{i}``, ``dense_{i}_dropout`` and ``logits``.
    """
    for i in range(layers):
        x = keras.layers.Dense(units, activation=activation, name=f"dense_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dense_{i}_dropout")(x)
    return logits_layer(num_classes)(x)


def dense_stack(x, hidden_layers: int, units: int, activation: str, dropout_rate: float, batch_norm: bool):
    """``hidden_layers`` x [``Dense`` (no bias when batch norm follows) -> optional ``BatchNormalization`` ->
    activation -> optional ``Dropout``], the layers named ``dense_i``, ``batch_norm_i``, ``<activation>_i``
    and ``dropout_i`` (the MLP over pixels and the MLP over a table's features)."""
    for i in range(hidden_layers):
        x = keras.layers.Dense(units, use_bias=not batch_norm, name=f"dense_{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(activation, name=f"{activation}_{i}")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name=f"dropout_{i}")(x)
    return x
