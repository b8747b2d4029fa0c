"""Feed-forward network for a table: the FeatureSpace's encoded vector -> [Dense -> (BatchNorm) ->
activation -> (Dropout)] x depth -> logits. One logit for a two-class target (a sigmoid's input: the
positive class's log-odds), one per class otherwise (a softmax's).

The course's first weather network (Humidity3pm -> one hidden layer of 2 softplus units ->
RainTomorrow) is ``hidden_layers=1, units=2, activation=softplus, dropout=0``.
"""

from __future__ import annotations

import keras

from tfcourse.models.common import dense_stack, logits_layer

ACTIVATIONS = ["relu", "gelu", "softplus", "tanh", "sigmoid"]


def output_units(num_classes: int) -> int:
    """1 for a binary target (sigmoid), ``num_classes`` otherwise (softmax)."""
    return 1 if num_classes == 2 else num_classes


def build(hp, input_shape, num_classes):
    """Builds the table MLP on an encoded input of shape ``(features,)``.

    Hyperparameters: ``hidden_layers`` (1-4, default 2), ``units`` (2-512, log scale, default 64),
    ``activation`` (relu/gelu/softplus/tanh/sigmoid), ``dropout`` (0-0.5, default 0.1), ``batch_norm``
    (default off).
    """
    if len(input_shape) != 1:
        raise ValueError(f"tabular_mlp takes the encoded feature vector (features,), got {tuple(input_shape)}.")
    hidden_layers = hp.Int("hidden_layers", 1, 4, default=2)
    units = hp.Int("units", 2, 512, sampling="log", default=64)
    activation = hp.Choice("activation", ACTIVATIONS, default="relu")
    dropout_rate = hp.Float("dropout", 0.0, 0.5, step=0.05, default=0.1)
    batch_norm = hp.Boolean("batch_norm", default=False)

    inputs = keras.Input(shape=input_shape, name="features")
    x = dense_stack(inputs, hidden_layers, units, activation, dropout_rate, batch_norm)
    outputs = logits_layer(output_units(num_classes))(x)
    return keras.Model(inputs, outputs, name="tabular_mlp")
