"""One feed-forward network on a table, as a run folder (issue 19, in progress: no CLI, report or
export yet): the table read and split, the FeatureSpace adapted on the training rows, ``tabular_mlp``
trained with early stopping on the validation loss, for a two-class target the decision threshold
chosen on validation, and the test numbers at that threshold.

The run folder (``config.json``, ``history.json``, ``metrics.json``, ``model.keras``) is built under a
hidden partial name and renamed when complete. ``model.keras`` takes raw rows: a dict of named columns
(numbers with NaN for missing, strings), the preprocessing inside it.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
from typing import Any, Dict

import keras
import numpy as np

from tfcourse import evaluate, fit, hparams, rundir, tabular, tabular_features
from tfcourse.config import TableConfig, to_dict
from tfcourse.models import load_keras_model, tabular_mlp

CLASS_WEIGHTS = (None, "balanced")


@dataclasses.dataclass
class TableRun:
    run_dir: str
    metrics: Dict[str, Any]
    history: Dict[str, Any]
    model: Any  # the raw-row keras.Model
    dataset: tabular.TabularDataset
    splits: Any


def validate(config: TableConfig) -> None:
    if config.class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weight {config.class_weight!r}: use balanced (or leave it out).")
    if config.threshold_metric not in evaluate.THRESHOLD_METRICS:
        raise ValueError(
            f"--threshold-metric {config.threshold_metric!r}: use one of {', '.join(evaluate.THRESHOLD_METRICS)}."
        )
    for name in ("epochs", "patience", "batch_size"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(config, name)}.")


def load(config: TableConfig):
    """The table and its splits, as ``config`` says."""
    dataset = tabular.load_table(
        config.dataset,
        config.target,
        features=list(config.features) or None,
        drop=config.drop,
        categorical=config.categorical,
        numeric=config.numeric,
        positive_class=config.positive_class,
        time_column=config.time_column,
    )
    splits = tabular.make_splits(dataset, config.split, config.val_fraction, config.test_fraction, config.seed)
    return dataset, splits


def class_weights(y: np.ndarray, num_classes: int) -> Dict[int, float]:
    """scikit-learn's ``balanced`` weights: rows / (classes x rows of the class)."""
    counts = np.bincount(y, minlength=num_classes)
    return {c: float(len(y) / (num_classes * counts[c])) for c in range(num_classes) if counts[c]}


def _hyperparameters(config: TableConfig, encoded: int, num_classes: int):
    """``config.hp`` fixed, each name and value checked against what ``tabular_mlp`` and the optimizer
    declare (``hparams.make_hyperparameters``, as for an image model)."""
    return hparams.make_hyperparameters(tabular_mlp.build, config.hp, (encoded,), num_classes, label="tabular_mlp")


def _output_dir(config: TableConfig) -> str:
    if config.output_dir:
        return config.output_dir
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"tabular_mlp-{rundir.safe_name(config.dataset)}-{stamp}")


def logits(network, encoded: np.ndarray) -> np.ndarray:
    """The network's outputs for FeatureSpace vectors (one log-odds per row for a binary target)."""
    return np.asarray(network.predict(encoded, verbose=0, batch_size=1024))


def encode(space, dataset: tabular.TabularDataset, rows: np.ndarray) -> np.ndarray:
    """The FeatureSpace's vectors of ``rows`` (float32, one row each)."""
    import tensorflow as tf

    inputs = tabular_features.model_inputs(dataset, rows)
    return np.asarray(space({name: tf.constant(values[:, None]) for name, values in inputs.items()}))


def train_table(config: TableConfig, verbose: Any = 0) -> TableRun:
    """Trains and evaluates ``tabular_mlp`` on a table and writes its run folder.

    Raises:
        ValueError: Bad settings or data (nothing is written), or an existing run folder.
    """
    validate(config)
    run_dir = _output_dir(config)
    if os.path.exists(run_dir):
        raise ValueError(f"{run_dir} already exists; pass another --output-dir or remove it.")
    rundir.check_writable_folder(os.path.dirname(os.path.abspath(run_dir)), "--output-dir")
    keras.utils.set_random_seed(config.seed)
    dataset, splits = load(config)
    space = tabular_features.make_feature_space(dataset, splits.train)
    x = {name: encode(space, dataset, getattr(splits, name)) for name in ("train", "val", "test")}
    y = {name: dataset.y[getattr(splits, name)] for name in ("train", "val", "test")}
    hp = _hyperparameters(config, x["train"].shape[1], dataset.num_classes)
    network = tabular_mlp.build(hp, (x["train"].shape[1],), dataset.num_classes)
    fit.compile_model(network, hp, binary=dataset.binary)
    weights = class_weights(y["train"], dataset.num_classes) if config.class_weight == "balanced" else None

    staging = rundir.prepare_partial(run_dir)
    os.makedirs(staging)
    try:
        history = network.fit(
            x["train"],
            y["train"],
            validation_data=(x["val"], y["val"]),
            epochs=config.epochs,
            batch_size=config.batch_size,
            class_weight=weights,
            callbacks=fit.standard_callbacks(None, config.patience),
            shuffle=True,
            verbose=verbose,
        ).history
        fit.check_finite(history)
        model = tabular_features.raw_row_model(space, network)
        metrics = _metrics(network, x, dataset, splits, config)
        record = {
            "config": to_dict(config),
            "hyperparameters": dict(hp.values),
            "data": {
                "source": dataset.source,
                "rows": dataset.num_rows,
                "dropped_rows_without_target": dataset.dropped_rows,
                "class_names": list(dataset.class_names),
                "columns": {name: dataset.kinds[name] for name in dataset.columns},
                "encoded_features": int(x["train"].shape[1]),
                "split_sizes": splits.sizes(),
                "class_weight": weights,
            },
        }
        rundir.write_json(os.path.join(staging, rundir.CONFIG_FILE), record)
        rundir.write_json(
            os.path.join(staging, "history.json"), {k: [float(v) for v in vs] for k, vs in history.items()}
        )
        rundir.write_json(os.path.join(staging, rundir.METRICS_FILE), metrics)
        model.save(os.path.join(staging, rundir.MODEL_FILE))
        rundir.publish_folder(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TableRun(run_dir, metrics, history, model, dataset, splits)


def _metrics(network, x: Dict[str, np.ndarray], dataset, splits, config: TableConfig) -> Dict[str, Any]:
    """Test numbers from the encoded splits ``x``; for two classes at the threshold chosen on validation."""
    y_test = dataset.y[splits.test]
    if not dataset.binary:
        return evaluate.evaluate_predictions(y_test, logits(network, x["test"]), dataset.class_names)
    val_probs = evaluate.sigmoid(logits(network, x["val"])[:, 0])
    threshold = evaluate.choose_threshold(dataset.y[splits.val], val_probs, config.threshold_metric)
    test_probs = evaluate.sigmoid(logits(network, x["test"])[:, 0])
    metrics = evaluate.binary_metrics(y_test, test_probs, threshold["threshold"], dataset.class_names)
    metrics["threshold_choice"] = threshold
    majority = int(np.bincount(dataset.y[splits.train], minlength=2).argmax())
    metrics["majority_baseline_accuracy"] = float(np.mean(y_test == majority))
    return metrics


def summary(run: TableRun) -> str:
    """What a person reads after a run: the folder and the test numbers."""
    m = run.metrics
    if "roc_auc" in m:
        positive = m["classification_report"][m["positive_class"]]
        numbers = (
            f"test ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}, accuracy {m['accuracy']:.2%} (majority "
            f"class {m['majority_baseline_accuracy']:.2%}); {m['positive_class']}: precision {positive['precision']:.2f}, "
            f"recall {positive['recall']:.2f}, F1 {positive['f1-score']:.2f} at threshold {m['threshold']:.3f} "
            f"(chosen on validation for {m['threshold_choice']['metric']})"
        )
    else:
        numbers = f"test accuracy {m['test_accuracy']:.2%}, macro F1 {m['classification_report']['macro avg']['f1-score']:.3f}"
    return f"{run.run_dir}: {numbers}"


def load_run_model(run_dir: str) -> Any:
    """The raw-row model of a table run (tfcourse's custom layers registered first)."""
    return load_keras_model(os.path.join(run_dir, rundir.MODEL_FILE))
