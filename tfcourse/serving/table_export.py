"""A table model's SavedModel, for raw rows: one named input per column (strings for categorical and date
columns, float32 for numbers; a missing cell is an empty string or NaN), the FeatureSpace's preprocessing
inside, ``probabilities``, ``class_ids`` and ``classes`` out (a two-class table's threshold, chosen on
validation, applied). Versioned and checked in a fresh process on the run's test rows as an image export is
(``savedmodel.write_version``)."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from tfcourse.data.table_data import holds_numbers
from tfcourse.evaluation import evaluate
from tfcourse.rundir import SIGNATURE_FLOAT
from tfcourse.serving import fresh, tf_serving
from tfcourse.serving.savedmodel import write_version


def _table_serving(model, class_names: Sequence[str], threshold: Optional[float]):
    import tensorflow as tf

    class_table = tf.constant(list(class_names))

    def serve(features):
        # one value per row and column, as a client sends them; the model's inputs are (rows, 1)
        outputs = model({name: tf.reshape(value, (-1, 1)) for name, value in features.items()}, training=False)
        if threshold is None:
            probabilities = tf.nn.softmax(outputs, axis=-1)
            class_ids = tf.argmax(outputs, axis=-1, output_type=tf.int32)
        else:
            positive = tf.sigmoid(outputs[:, 0])
            probabilities = tf.stack([1 - positive, positive], axis=1)
            class_ids = tf.cast(positive >= threshold, tf.int32)
        return {"probabilities": probabilities, "class_ids": class_ids, "classes": tf.gather(class_table, class_ids)}

    return serve


def table_input_signature(kinds: Dict[str, str]):
    """One named input per feature column: float32 for a number (NaN: missing), string for a category."""
    import tensorflow as tf

    return {
        name: tf.TensorSpec((None,), tf.float32 if holds_numbers(kind) else tf.string, name=name)
        for name, kind in sorted(kinds.items())
    }


def export_table_model(
    model,
    export_root: str,
    model_name: str,
    class_names: Sequence[str],
    kinds: Dict[str, str],
    threshold: Optional[float] = None,
    metadata: Optional[Dict[str, Any]] = None,
    version: Optional[int] = None,
    check: Optional[Callable[[str], Any]] = None,
    examples: Optional[Dict[str, Any]] = None,
) -> str:
    """Writes a TF Serving SavedModel of a raw-row table model and returns its version folder.

    ``serving_default`` takes one named input per feature column (``(None,)`` float32 for a number,
    NaN where missing; string for a category, ``""`` where missing, any unseen value allowed) and
    returns ``probabilities`` (None, classes), ``class_ids`` and ``classes``; for a two-class target
    the class is the positive one when its probability reaches ``threshold``.

    Args:
        model: The raw-row Keras model (``tabular_features.raw_row_model``): logits out, one for two classes.
        kinds: Input key -> ``numeric`` or ``categorical`` (``TabularDataset.key_kinds``; ``metadata``'s
            ``input_keys`` maps a key to its column's name where they differ, for the README).
        threshold: The decision threshold of a two-class target (``None`` for more classes: argmax).
        examples: Raw test rows (column name -> values) for the warm-up requests and the REST example.
        Others: As ``export_saved_model``.

    Raises:
        ValueError: If the outputs do not fit the class names, or the version exists already.
    """
    from keras.export import ExportArchive

    binary = len(class_names) == 2
    if model.outputs[0].shape[-1] != (1 if binary else len(class_names)):
        raise ValueError(f"The model's {model.outputs[0].shape[-1]} outputs do not fit classes {list(class_names)}.")
    if binary != (threshold is not None):
        raise ValueError("A two-class table model needs its decision threshold (and only it has one).")

    signature = table_input_signature(kinds)
    example_classes = []
    if examples is not None:
        rows = {name: np.asarray(values) for name, values in examples.items()}
        _, class_ids = table_probabilities(model, tf_serving.examples_of(rows, tf_serving.REST_EXAMPLES), threshold)
        example_classes = [class_names[i] for i in class_ids]

    def write(staging: str) -> None:
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE_FLOAT, _table_serving(model, class_names, threshold), input_signature=[signature]
        )
        archive.write_out(staging, verbose=False)
        if examples is not None:
            dtypes = {name: spec.dtype for name, spec in signature.items()}
            info["warmup_requests"] = tf_serving.write_warmup(staging, model_name, SIGNATURE_FLOAT, rows, dtypes)
            tf_serving.write_rest_example(staging, SIGNATURE_FLOAT, rows)

    info = {
        "class_names": list(class_names),
        "inputs": {name: kinds[name] for name in sorted(kinds)},
        "threshold": threshold,
        "signatures": {SIGNATURE_FLOAT: "one named input per column: float32 (NaN: missing) or string"},
        **(metadata or {}),
    }
    return write_version(export_root, model_name, class_names, write, info, version, check, example_classes)


# Run in a separate interpreter that imports nothing but TensorFlow, as a model server would.
_FRESH_TABLE_SCRIPT = """
import sys, numpy as np, tensorflow as tf
export_dir, inputs_path, outputs_path = sys.argv[1:4]
serve = tf.saved_model.load(export_dir).signatures["serving_default"]
with np.load(inputs_path) as columns:
    outputs = serve(**{name: tf.constant(columns[name]) for name in columns.files})
np.savez(outputs_path, probabilities=outputs["probabilities"].numpy(), classes=outputs["classes"].numpy().astype(str))
"""


def serve_table_in_fresh_process(export_dir: str, columns: Dict[str, Any]) -> Dict[str, Any]:
    """Loads a table export with only ``tf.saved_model.load`` in a new Python process and serves ``columns``
    (name -> one value per row: float32 numbers, NaN for missing, or strings).

    Returns:
        ``{"probabilities": (rows, classes), "classes": (rows,) names}``.

    Raises:
        RuntimeError: If the fresh process fails, with its error output.
    """

    with tempfile.TemporaryDirectory() as scratch:
        inputs_path = os.path.join(scratch, "rows.npz")
        np.savez(inputs_path, **{name: np.asarray(values) for name, values in columns.items()})
        return fresh.run(
            _FRESH_TABLE_SCRIPT, export_dir, inputs_path, os.path.join(scratch, "outputs.npz"), f"Loading {export_dir}"
        )


def table_probabilities(model, columns: Dict[str, Any], threshold: Optional[float]):
    """What the Keras raw-row model says for ``columns``: ``(probabilities, class ids)``."""
    import tensorflow as tf

    feed = {name: tf.constant(np.asarray(values)[:, None]) for name, values in sorted(columns.items())}
    outputs = np.asarray(model(feed, training=False)).astype(np.float64)
    if threshold is None:
        probabilities = evaluate.softmax(outputs)
        return probabilities, probabilities.argmax(axis=1)
    positive = evaluate.sigmoid(outputs[:, 0])
    return np.stack([1 - positive, positive], axis=1), (positive >= threshold).astype(int)


def verify_table_export(
    model, export_dir: str, columns: Dict[str, Any], class_names, threshold, tolerance: float = 1e-5
) -> float:
    """Checks that a fresh process serving ``export_dir`` gives the Keras model's probabilities and classes
    for the raw rows ``columns``.

    Returns:
        The largest absolute difference of a class probability.

    Raises:
        RuntimeError: If the fresh process fails, a probability differs by more than ``tolerance``, or a
            class differs.
    """

    served = serve_table_in_fresh_process(export_dir, columns)
    expected, class_ids = table_probabilities(model, columns, threshold)
    difference = float(np.abs(served["probabilities"] - expected).max())
    same_classes = list(served["classes"]) == [class_names[i] for i in class_ids]
    if not difference <= tolerance or not same_classes:  # NaN-safe: a NaN difference fails too
        raise RuntimeError(
            f"The export at {export_dir} disagrees with the trained model (max |dp| = {difference:.2e}, "
            f"{'same' if same_classes else 'different'} classes)."
        )
    return difference
