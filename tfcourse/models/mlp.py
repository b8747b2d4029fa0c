"""Multi-layer perceptron: Flatten -> [Dense -> (BatchNorm) -> activation -> (Dropout)] x depth -> logits."""

from __future__ import annotations

import keras

from tfcourse.models.common import dense_stack, logits_layer

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
    x = dense_stack(x, hidden_layers, units, activation, dropout_rate, batch_norm)
    outputs = logits_layer(num_classes)(x)
    return keras.Model(inputs, outputs, name="mlp")
