"""Compile a model from its hyperparameters, train it on pipelines, and evaluate it.

One trial of a tuner and one ``tfcourse.train`` run are the same thing: ``compile_model``
then ``model.fit`` with ``standard_callbacks``. The optimizer and learning rate are
hyperparameters like any other, declared here so every model shares them.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

OPTIMIZERS = ["adam", "sgd", "rmsprop"]


def make_optimizer(hp):
    """The optimizer named by ``hp`` (``optimizer``, ``learning_rate``; log-sampled 1e-4..1e-2)."""
    import keras

    name = hp.Choice("optimizer", OPTIMIZERS, default="adam")
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    return keras.optimizers.RMSprop(learning_rate)


def compile_model(model, hp, steps_per_execution: int = 1):
    """Compiles ``model`` for integer labels and logits outputs, from ``hp``."""
    import keras

    model.compile(
        optimizer=make_optimizer(hp),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        steps_per_execution=steps_per_execution,
    )
    return model


def parse_hp_value(text: str) -> Any:
    """Parses ``--hp key=value`` values: JSON scalars (``3``, ``0.5``, ``true``) or bare strings."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    if not isinstance(value, (int, float, str)):
        raise ValueError(f"Hyperparameter value {text!r} must be a number, true/false or a string.")
    return value


def hyperparameter_space(model_name: str, input_shape: Sequence[int], num_classes: int):
    """Every hyperparameter a model (and its compilation) declares, with defaults.

    Returns:
        A ``keras_tuner.HyperParameters`` holding the space.
    """
    import keras
    import keras_tuner

    from tfcourse.models import build_model

    hp = keras_tuner.HyperParameters()
    build_model(model_name, hp, input_shape, num_classes)
    make_optimizer(hp)
    keras.backend.clear_session()
    return hp


def _check_value(entry, value) -> Optional[str]:
    config = entry.get_config()
    kind = type(entry).__name__
    if kind == "Boolean":
        return None if isinstance(value, bool) else "true or false"
    if kind == "Choice":
        return None if value in config["values"] else f"one of {config['values']}"
    if kind in ("Int", "Float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"a number in [{config['min_value']}, {config['max_value']}]"
        if kind == "Int" and int(value) != value:
            return f"an integer in [{config['min_value']}, {config['max_value']}]"
        if not config["min_value"] <= value <= config["max_value"]:
            return f"in [{config['min_value']}, {config['max_value']}]"
    return None


def make_hyperparameters(model_name: str, overrides: Mapping[str, Any], input_shape: Sequence[int], num_classes: int):
    """``HyperParameters`` with ``overrides`` fixed, after checking names and ranges.

    Raises:
        ValueError: For a name the model does not declare (listing those it does) or a
            value outside the declared range or choices.
    """
    import keras_tuner

    space = hyperparameter_space(model_name, input_shape, num_classes)
    known = {entry.name: entry for entry in space.space}
    hp = keras_tuner.HyperParameters()
    for name, value in overrides.items():
        if name not in known:
            raise ValueError(
                f"Model {model_name!r} has no hyperparameter {name!r}; it has: {', '.join(sorted(known))}."
            )
        problem = _check_value(known[name], value)
        if problem:
            raise ValueError(f"Hyperparameter {name}={value!r} for model {model_name!r} must be {problem}.")
        if type(known[name]).__name__ == "Int":
            value = int(value)
        hp.Fixed(name, value)
    return hp


def standard_callbacks(run_dir: Optional[str], patience: int, monitor: str = "val_loss") -> List:
    """Learning-rate decay on plateau, early stopping (best weights restored), TensorBoard and CSV logs.

    The learning rate is cut to 30% after ``patience // 2`` epochs without improvement, so a
    plateau first gets a smaller step and only then ends training.
    """
    import keras

    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=0.3, patience=max(1, patience // 2), min_lr=1e-5),
        keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True),
    ]
    if run_dir is not None:
        callbacks += [
            keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "logs")),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv")),
        ]
    return callbacks


def predict_labels(model, dataset) -> Dict[str, np.ndarray]:
    """True labels, logits and predicted labels over a (labelled) pipeline, in order."""
    import tensorflow as tf

    labels, logits = [], []
    predict = tf.function(lambda images: model(images, training=False))
    for images, batch_labels in dataset:
        logits.append(predict(images).numpy())
        labels.append(batch_labels.numpy())
    logits = np.concatenate(logits)
    return {"labels": np.concatenate(labels), "logits": logits, "predictions": logits.argmax(axis=1)}


def evaluate_model(model, dataset, class_names: Sequence[str]) -> Dict[str, Any]:
    """Test loss and accuracy plus per-class accuracy, as plain JSON-ready numbers (one pass over the data)."""
    outputs = predict_labels(model, dataset)
    labels, predictions, logits = outputs["labels"], outputs["predictions"], outputs["logits"].astype(np.float64)
    # sparse categorical cross-entropy from logits: logsumexp(z) - z[label]
    peak = logits.max(axis=1, keepdims=True)
    log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
    loss = float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))
    per_class = {}
    for index, name in enumerate(class_names):
        mask = labels == index
        per_class[name] = float((predictions[mask] == index).mean()) if mask.any() else None
    return {
        "test_loss": loss,
        "test_accuracy": float((predictions == labels).mean()),
        "test_examples": int(len(labels)),
        "per_class_accuracy": per_class,
    }
