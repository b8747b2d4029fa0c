"""The preprocessing of a table, inside the Keras model: ``keras.utils.FeatureSpace`` adapted on the
training rows only. A numeric column is standardised with its missing values imputed and flagged
(``models.layers.ImputedNormalization``); a categorical one is looked up (``StringLookup``) and
one-hot encoded, with one out-of-vocabulary slot for a category training never saw; a missing
category (``""``) is a category of its own, its indicator. ``raw_row_model`` puts the FeatureSpace in
front of a model on the encoded vector, so the saved or served model takes raw rows (a dict of named
values) and needs no preprocessing code beside it.

``TablePipelines`` feeds training, tuning and evaluation: tf.data streams the raw rows in batches
and encodes each batch with the FeatureSpace on the fly (``map`` after ``batch``, in parallel, then
``prefetch``), so the encoded matrix (one-hot columns make it many times wider than the table) is
never held in memory; only the raw columns are.

A floor-2 module: it imports ``tabular`` and ``models.layers``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import keras
import numpy as np

from tfcourse.config import CLASS_WEIGHTS
from tfcourse.data import Splits
from tfcourse.data.table_data import TabularDataset, holds_numbers
from tfcourse.models.layers import ImputedNormalization

ADAPT_BATCH = 8192


def model_inputs(dataset: TabularDataset, rows: np.ndarray) -> Dict[str, np.ndarray]:
    """The columns of ``rows`` as the FeatureSpace takes them: float32 numbers (NaN: missing) and strings,
    by their input keys (``TabularDataset.keys``: the column names, unless TensorFlow forbids a character)."""
    keys = dataset.keys
    columns = {
        keys[name]: values[rows].astype(np.float32) if holds_numbers(dataset.kinds[name]) else values[rows].astype(str)
        for name, values in dataset.columns.items()
    }
    return dict(sorted(columns.items()))  # in sorted order, as the FeatureSpace's inputs are (else a warning)


def make_feature_space(dataset: TabularDataset, train: np.ndarray):
    """A ``FeatureSpace`` over every feature column (by input key), adapted on the rows ``train`` only."""

    features = {}
    for key, kind in sorted(dataset.key_kinds.items()):  # sorted, as every dict of columns fed to it
        if kind == "numeric":
            features[key] = keras.utils.FeatureSpace.feature(
                dtype="float32", preprocessor=ImputedNormalization(name=f"impute_{key}"), output_mode="float"
            )
        else:
            features[key] = keras.utils.FeatureSpace.string_categorical(
                num_oov_indices=1, output_mode="one_hot", name=f"lookup_{key}"
            )
    space = keras.utils.FeatureSpace(features, output_mode="concat")
    # batched already: given a dict of arrays, FeatureSpace.adapt feeds each layer batches of 32 rows
    # (78 s for 160,000 rows and 23 columns here)
    space.adapt(row_batches(model_inputs(dataset, train), len(train), ADAPT_BATCH))
    return space


def encoded_size(space) -> int:
    """Width of the vector the FeatureSpace makes (the dense model's input size)."""
    return int(space.get_encoded_features().shape[-1])


def raw_row_model(space, model) -> keras.Model:
    """``model`` (on the encoded vector) behind ``space``: a Functional model from raw named columns.

    It is called with a dict of columns by input key. Its inputs are a list of named ``Input``s, sorted by
    key, not a dict: Keras then picks each input from the dict by its name, so a row with a column the
    model does not know is still read right (with a dict of inputs, Keras 3 flattens the caller's dict in
    key order, and an extra key shifts every later column into the wrong input) and a missing one is an
    error.
    """
    inputs = [tensor for _, tensor in sorted(space.get_inputs().items())]
    return keras.Model(inputs, model(space.get_encoded_features()), name=f"{model.name}_on_raw_rows")


def row_batches(arrays: Dict[str, Any], count: int, batch_size: int, shuffle_seed: Optional[int] = None):
    """A tf.data stream of batches of rows of ``arrays`` (a nested dict of equally long arrays).

    Rows are gathered a batch at a time by index (``from_tensor_slices`` + ``shuffle`` + ``batch`` on
    the rows themselves handles every column of every row one by one: 10 s per pass over 160,000 rows
    of 23 columns here). With ``shuffle_seed`` the order is shuffled, anew every epoch.
    """
    import tensorflow as tf

    tensors = tf.nest.map_structure(tf.convert_to_tensor, arrays)
    indices = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    return indices.batch(batch_size).map(
        lambda index: tf.nest.map_structure(lambda column: tf.gather(column, index), tensors),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def class_weights(y: np.ndarray, num_classes: int) -> Dict[int, float]:
    """scikit-learn's ``balanced`` weights: rows / (classes x rows of the class)."""
    counts = np.bincount(y, minlength=num_classes)
    return {c: float(len(y) / (num_classes * counts[c])) for c in range(num_classes) if counts[c]}


@dataclasses.dataclass
class TablePipelines:
    """tf.data pipelines of one table's splits, encoded batch by batch by an adapted FeatureSpace.

    The image path's ``data.Pipelines`` has the same members the trainer and the tuner read
    (``train``, ``val``, ``make_train``, ``batch_size``, ``input_shape``, ``num_classes``).

    Attributes:
        space: The FeatureSpace, adapted on the training rows.
        dataset, splits: The table and its row indices.
        batch_size: Rows per batch.
        seed: Shuffles the training rows (reshuffled every epoch).
        weights: ``class_weights`` of the training rows, or ``None``; when given, each training batch
            carries a sample weight per row (validation and test are unweighted).
    """

    space: Any
    dataset: TabularDataset
    splits: Splits
    batch_size: int
    seed: int
    weights: Optional[Dict[int, float]] = None

    @property
    def input_shape(self):
        return (encoded_size(self.space),)

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def make(self, split: str, batch_size: Optional[int] = None, labels: bool = True):
        """Batches of ``split``'s rows: ``(encoded, label[, weight])``, or ``encoded`` alone without ``labels``.

        The training split is shuffled (seeded, every epoch anew) and weighted when ``weights`` is set.
        """
        import tensorflow as tf

        rows = getattr(self.splits, split)
        elements = {"x": model_inputs(self.dataset, rows)}
        if labels:
            elements["y"] = self.dataset.y[rows].astype(np.int64)
            if split == "train" and self.weights is not None:
                table = np.array([self.weights.get(c, 0.0) for c in range(self.num_classes)], np.float32)
                elements["w"] = table[self.dataset.y[rows]]
        space = self.space

        def encode(batch):
            if not labels:
                return space(batch["x"])
            return (space(batch["x"]), batch["y"]) + ((batch["w"],) if "w" in batch else ())

        stream = row_batches(
            elements, len(rows), batch_size or self.batch_size, self.seed if split == "train" else None
        )
        return stream.map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    def make_train(self, batch_size: int):
        return self.make("train", batch_size)

    @property
    def train(self):
        return self.make("train")

    @property
    def val(self):
        return self.make("val")

    @property
    def test(self):
        return self.make("test")


def make_pipelines(dataset: TabularDataset, splits: Splits, batch_size: int, seed: int, class_weight=None):
    """A FeatureSpace adapted on ``splits.train`` and the pipelines that encode with it.

    Raises:
        ValueError: For a ``class_weight`` other than ``None``/``balanced``.
    """
    if class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weight {class_weight!r}: use balanced (or leave it out).")
    space = make_feature_space(dataset, splits.train)
    weights = class_weights(dataset.y[splits.train], dataset.num_classes) if class_weight == "balanced" else None
    return TablePipelines(space, dataset, splits, batch_size, seed, weights)
