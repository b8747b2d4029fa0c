"""VGG-style network: blocks of stacked 3x3 convolutions and max pooling, widths doubling per block.

The defaults are the course reference: 2x32, 2x64, 2x128 convolutions (each followed by batch
norm and ReLU), 2x2 max pooling and dropout 0.25 after every block, then a dense layer of 256
units with dropout 0.4 and the logits.
"""

from __future__ import annotations

import keras

from tfcourse.models.common import HEADS, check_poolings, conv_bn_activation, dense_head, depth_hp, feature_head

MAX_FILTERS = 512


def build(hp, input_shape, num_classes):
    """Builds the VGG-style network.

    Hyperparameters: ``blocks`` (1-5, at most the halvings the input takes; default 3), ``filters`` of the first block (16-128 step
    16, default 32; doubling per block, capped at 512), ``convs_per_block`` (1-3, default 2),
    ``batch_norm`` (default on), ``conv_dropout`` after each block (0-0.5, default 0.25),
    ``head`` (``flatten`` or global-average ``gap``, default flatten), ``dense_layers`` (0-2,
    default 1) of ``dense_units`` (64-1024 step 64, default 256) with ``dense_dropout``
    (0-0.6, default 0.4).

    Raises:
        ValueError: If the blocks' pooling would shrink the input below 1x1.
    """
    blocks = depth_hp(hp, "blocks", 1, 5, 3, input_shape)
    filters = hp.Int("filters", 16, 128, step=16, default=32)
    convs_per_block = hp.Int("convs_per_block", 1, 3, default=2)
    batch_norm = hp.Boolean("batch_norm", default=True)
    conv_dropout = hp.Float("conv_dropout", 0.0, 0.5, step=0.05, default=0.25)
    head = hp.Choice("head", HEADS, default="flatten")
    dense_layers = hp.Int("dense_layers", 0, 2, default=1)
    dense_units = hp.Int("dense_units", 64, 1024, step=64, default=256)
    dense_dropout = hp.Float("dense_dropout", 0.0, 0.6, step=0.05, default=0.4)
    check_poolings(input_shape, blocks, f"blocks={blocks}")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block in range(blocks):
        block_filters = min(filters * 2**block, MAX_FILTERS)
        for conv in range(convs_per_block):
            x = conv_bn_activation(x, block_filters, 3, batch_norm, "relu", f"block{block}_conv{conv}")
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        if conv_dropout > 0:
            x = keras.layers.Dropout(conv_dropout, name=f"block{block}_dropout")(x)
    x = feature_head(x, head)
    outputs = dense_head(x, num_classes, dense_layers, dense_units, "relu", dense_dropout)
    return keras.Model(inputs, outputs, name="vgg")
