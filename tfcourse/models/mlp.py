"""Multi-layer perceptron: Flatten -> [Dense -> (BatchNorm) -> activation -> (Dropout)] x depth -> logits."""

from __future__ import annotations

import keras

from tfcourse.models.common import BN_MOMENTUM

ACTIVATIONS = ["relu", "sigmoid", "tanh", "linear"]


def build(hp, input_shape, num_classes):
    """Builds the MLP.

    Hyperparameters: ``hidden_layers`` (1-4, default 2), ``units`` (32-1024, default 256),
    ``activation`` (relu/sigmoid/tanh/linear), ``dropout`` (0-0.5, default 0.2),
    ``batch_norm`` (default off).
    """
    hidden_layers = hp.Int("hidden_layers", 1, 4, default=2)
    units = hp.Int("units", 32, 1024, step=32, default=256)
    activation = hp.Choice("activation", ACTIVATIONS, default="relu")
    dropout_rate = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.2)
    batch_norm = hp.Boolean("batch_norm", default=False)

    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i in range(hidden_layers):
        x = keras.layers.Dense(units, use_bias=not batch_norm, name=f"dense_{i}")(x)
        if batch_norm:
            x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation(activation, name=f"{activation}_{i}")(x)
        if dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mlp")
