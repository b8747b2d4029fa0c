"""The preprocessing of a table, inside the Keras model: ``keras.utils.FeatureSpace`` adapted on the
training rows only. A numeric column is standardised with its missing values imputed and flagged
(``models.layers.ImputedNormalization``); a categorical one is looked up (``StringLookup``) and
one-hot encoded, with one out-of-vocabulary slot for a category training never saw; a missing
category (``""``) is a category of its own, its indicator. ``raw_row_model`` puts the FeatureSpace in
front of a model on the encoded vector, so the saved or served model takes raw rows (a dict of named
values) and needs no preprocessing code beside it.

A floor-2 module: it imports ``tabular`` and ``models.layers``.
"""

from __future__ import annotations

from typing import Dict

import keras
import numpy as np

from tfcourse.models.layers import ImputedNormalization
from tfcourse.tabular import TabularDataset


def model_inputs(dataset: TabularDataset, rows: np.ndarray) -> Dict[str, np.ndarray]:
    """The columns of ``rows`` as the FeatureSpace takes them: float32 numbers (NaN: missing) and strings."""
    return {
        name: values[rows].astype(np.float32) if dataset.kinds[name] == "numeric" else values[rows].astype(str)
        for name, values in dataset.columns.items()
    }


def make_feature_space(dataset: TabularDataset, train: np.ndarray):
    """A ``FeatureSpace`` over every feature column, adapted on the rows ``train`` only."""
    features = {}
    for name, kind in dataset.kinds.items():
        if kind == "numeric":
            features[name] = keras.utils.FeatureSpace.feature(
                dtype="float32", preprocessor=ImputedNormalization(name=f"impute_{name}"), output_mode="float"
            )
        else:
            features[name] = keras.utils.FeatureSpace.string_categorical(
                num_oov_indices=1, output_mode="one_hot", name=f"lookup_{name}"
            )
    space = keras.utils.FeatureSpace(features, output_mode="concat")
    space.adapt(model_inputs(dataset, train))
    return space


def encoded_size(space) -> int:
    """Width of the vector the FeatureSpace makes (the dense model's input size)."""
    return int(space.get_encoded_features().shape[-1])


def raw_row_model(space, model) -> keras.Model:
    """``model`` (on the encoded vector) behind ``space``: a Functional model from raw named columns."""
    inputs = space.get_inputs()
    return keras.Model(inputs, model(space.get_encoded_features()), name=f"{model.name}_on_raw_rows")
