"""Simple CNN: blocks of [Conv -> (BatchNorm) -> activation] x n -> pooling -> dropout, then a flatten or global-average-pooling step and a dense head.

Filters double with each block (capped at 512), as in most small image classifiers.
"""

from __future__ import annotations

import keras

from tfcourse.models.common import HEADS, check_poolings, conv_bn_activation, dense_head, depth_hp, feature_head

MAX_FILTERS = 512
ACTIVATIONS = ["relu", "elu", "gelu", "swish"]


def build(hp, input_shape, num_classes):
    """Builds the CNN.

    Hyperparameters: ``conv_blocks`` (1-5, at most the halvings the input takes: 3 on 8x8; default 2), ``filters`` of the first block
    (32-256 step 32, default 32), ``convs_per_block`` (1-3, default 1), ``kernel_size``
    (3 or 5), ``pooling`` (max/avg), ``activation`` (relu/elu/gelu/swish, default relu),
    ``dropout`` (0-0.5, default 0.25), ``batch_norm`` (default on), ``head`` (``flatten`` or
    global-average ``gap``, default flatten; see ``common.feature_head``), ``dense_layers``
    (0-2, default 1) hidden dense layers of ``dense_units`` (32-512 step 32, default 128).

    Raises:
        ValueError: If the blocks' pooling would shrink the input below 1x1.
    """
    conv_blocks = depth_hp(hp, "conv_blocks", 1, 5, 2, input_shape)
    filters = hp.Int("filters", 32, 256, step=32, default=32)
    convs_per_block = hp.Int("convs_per_block", 1, 3, default=1)
    kernel_size = hp.Choice("kernel_size", [3, 5], default=3)
    pooling = hp.Choice("pooling", ["max", "avg"], default="max")
    activation = hp.Choice("activation", ACTIVATIONS, default="relu")
    dropout_rate = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.25)
    batch_norm = hp.Boolean("batch_norm", default=True)
    head = hp.Choice("head", HEADS, default="flatten")
    dense_layers = hp.Int("dense_layers", 0, 2, default=1)
    dense_units = hp.Int("dense_units", 32, 512, step=32, default=128)

    check_poolings(input_shape, conv_blocks, f"conv_blocks={conv_blocks}")
    pool_layer = keras.layers.MaxPooling2D if pooling == "max" else keras.layers.AveragePooling2D

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block in range(conv_blocks):
        block_filters = min(filters * 2**block, MAX_FILTERS)
        for conv in range(convs_per_block):
            x = conv_bn_activation(x, block_filters, kernel_size, batch_norm, activation, f"block{block}_conv{conv}")
        x = pool_layer(2, name=f"block{block}_pool")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name=f"block{block}_dropout")(x)
    x = feature_head(x, head)
    outputs = dense_head(x, num_classes, dense_layers, dense_units, activation, dropout_rate)
    return keras.Model(inputs, outputs, name="cnn")
