"""One feed-forward network on a table, as a run folder: the table read and split, the FeatureSpace
adapted on the training rows, the registered table model (``tabular_mlp``) trained on tf.data
pipelines that encode each batch on the fly, with early stopping on the validation loss; for a
two-class target the decision threshold chosen on validation; the test numbers at that threshold.

The run folder (``config.json``, ``history.json``, ``metrics.json``, ``predictions.npz``,
``model.keras``, and ``report.html``/``report.md``) is built under a hidden partial name and renamed
when complete. ``model.keras`` takes raw rows: a dict of named columns (numbers with NaN for missing,
strings), the preprocessing inside it. ``export`` writes the TF Serving SavedModel of such a run.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any, Dict, Optional

import keras
import numpy as np

from tfcourse import rundir
from tfcourse.config import CLASS_WEIGHTS, THRESHOLD_METRICS, TableConfig, TableDataConfig, to_dict
from tfcourse.data import table_data, table_features
from tfcourse.evaluation import evaluate
from tfcourse.models import build_model, get_spec, list_models, load_keras_model
from tfcourse.pages import table_run_page
from tfcourse.serving import table_export
from tfcourse.training import fit
from tfcourse.tuning import hparams


@dataclasses.dataclass
class TableRun:
    run_dir: str
    metrics: Dict[str, Any]
    history: Dict[str, Any]
    model: Any  # the raw-row keras.Model
    dataset: table_data.TabularDataset
    splits: Any
    export_dir: Optional[str] = None


def validate(config: TableConfig) -> None:
    get_spec(config.model)
    if get_spec(config.model).kind != "table":
        raise ValueError(
            f"--model {config.model} is a model for images; a table takes {', '.join(list_models('table'))}."
        )
    if config.data.class_weight not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weight {config.data.class_weight!r}: use balanced (or leave it out).")
    if config.threshold_metric not in THRESHOLD_METRICS:
        raise ValueError(f"--threshold-metric {config.threshold_metric!r}: use one of {', '.join(THRESHOLD_METRICS)}.")
    for name, value in (
        ("epochs", config.epochs),
        ("patience", config.patience),
        ("batch_size", config.data.batch_size),
    ):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}.")


def load_pipelines(data: TableDataConfig, seed: int):
    """``(dataset, splits, pipelines)``: the table, its splits and the encoding pipelines (FeatureSpace
    adapted on the training rows)."""
    dataset, splits = table_data.load_split_table(data, seed)
    pipelines = table_features.make_pipelines(dataset, splits, data.batch_size, seed, data.class_weight)
    return dataset, splits, pipelines


def _output_dir(config: TableConfig) -> str:
    if config.output_dir:
        return config.output_dir
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{config.model}-{rundir.safe_name(config.data.dataset)}-{stamp}")


def _outputs(network, stream) -> np.ndarray:
    """The network's outputs on a stream of encoded batches (one log-odds per row for two classes)."""
    return np.asarray(network.predict(stream, verbose=0)).astype(np.float64)


def _hyperparameters(config: TableConfig, pipelines):
    """``config.hp`` fixed, each name and value checked against what the model and the optimizer declare
    (``hparams.make_hyperparameters``, as for an image model)."""
    return hparams.make_hyperparameters(config.model, config.hp, pipelines.input_shape, pipelines.num_classes)


def train_table(config: TableConfig, verbose: Any = 0, record_extra: Optional[Dict[str, Any]] = None) -> TableRun:
    """Trains and evaluates a table model and writes its run folder (and with ``config.export`` its export).

    Args:
        record_extra: More facts for ``config.json`` (a retrained search's ``tuned_from``).

    Raises:
        ValueError: Bad settings or data (nothing is written), or an existing run folder.
    """
    validate(config)
    run_dir = _output_dir(config)
    if os.path.exists(run_dir):
        raise ValueError(f"{run_dir} already exists; pass another --output-dir or remove it.")
    rundir.check_writable_folder(os.path.dirname(os.path.abspath(run_dir)), "--output-dir")
    if config.export:
        rundir.check_writable_folder(config.export_dir, "--export-dir")
    keras.utils.set_random_seed(config.seed)
    dataset, splits, pipelines = load_pipelines(config.data, config.seed)
    hp = _hyperparameters(config, pipelines)
    network = build_model(config.model, hp, pipelines.input_shape, dataset.num_classes)
    fit.compile_model(network, hp, binary=dataset.binary)
    print(
        f"tfcourse: {dataset.source}: {dataset.num_rows} rows ({dataset.dropped_rows} dropped without a target), "
        f"{len(dataset.columns)} features -> {pipelines.input_shape[0]} inputs, classes {', '.join(dataset.class_names)}, "
        f"split {splits.protocol} {splits.sizes()}",
        flush=True,
    )

    staging = rundir.claim_partial(run_dir)
    try:
        history = network.fit(
            pipelines.train,
            validation_data=pipelines.val,
            epochs=config.epochs,
            callbacks=fit.standard_callbacks(None, config.patience),
            shuffle=False,  # the training pipeline shuffles, seeded, every epoch
            verbose=verbose,
        ).history
        fit.check_finite(history, model=network)
        model = table_features.raw_row_model(pipelines.space, network)
        metrics, predictions = _metrics(network, pipelines, config)
        record = {
            "config": to_dict(config),
            "hyperparameters": dict(hp.values),
            "data": {
                "source": dataset.source,
                "rows": dataset.num_rows,
                "dropped_rows_without_target": dataset.dropped_rows,
                "class_names": list(dataset.class_names),
                "target": dataset.target,
                "columns": {name: dataset.kinds[name] for name in dataset.columns},
                # model.keras and the export take each column by this key (its name unless TensorFlow forbids
                # a character of it)
                "input_keys": dataset.keys,
                "encoded_features": int(pipelines.input_shape[0]),
                "split_sizes": splits.sizes(),
                "class_weight": pipelines.weights,
            },
            **(record_extra or {}),
        }
        rundir.write_json(os.path.join(staging, rundir.CONFIG_FILE), record)
        rundir.write_json(
            os.path.join(staging, rundir.HISTORY_FILE), {k: [float(v) for v in vs] for k, vs in history.items()}
        )
        rundir.write_json(os.path.join(staging, rundir.METRICS_FILE), metrics)
        np.savez(os.path.join(staging, rundir.PREDICTIONS_FILE), **predictions)
        model.save(os.path.join(staging, rundir.MODEL_FILE))
        if config.report:
            table_run_page.write_table_report(staging)
        published = rundir.publish_new_folder(staging, run_dir)
    except BaseException:
        rundir.abandon_partial(staging)
        raise
    if published != run_dir:
        print(f"tfcourse: {run_dir} was made by another process meanwhile; this run is in {published}", flush=True)
        run_dir = published
    run = TableRun(run_dir, metrics, history, model, dataset, splits)
    if config.export:
        run.export_dir = export_run(run, config.export_dir, config.model)
    return run


UNSEEN_CATEGORY = "(a value training never saw)"


def probe_rows(dataset: table_data.TabularDataset, rows: np.ndarray) -> Dict[str, np.ndarray]:
    """Raw columns of ``rows`` (one value per row) with, in turn, each number made missing (NaN) in one
    row and each category replaced by one training never saw in another: what an export must serve."""
    columns = {key: np.array(values) for key, values in table_features.model_inputs(dataset, rows).items()}
    kinds = dataset.key_kinds
    for i, name in enumerate(columns):
        if table_data.holds_numbers(kinds[name]):
            columns[name][i % len(rows)] = np.nan
        else:
            columns[name] = columns[name].astype(object)
            columns[name][(i + 1) % len(rows)] = UNSEEN_CATEGORY
            columns[name] = columns[name].astype(str)
    return columns


def export_run(run: TableRun, export_root: str, model_name: str, verify: bool = True) -> str:
    """Exports a finished table run for TF Serving (raw rows in), checked first in a fresh process on 32
    test rows with planted missing values and unseen categories; records where in ``export.json``.

    Raises:
        ValueError: If the export or its check fails; the run folder stays complete.
    """
    threshold = run.metrics.get("threshold")
    probe = probe_rows(run.dataset, run.splits.test[:32])
    found = {}

    def check(staging: str) -> None:
        found["difference"] = table_export.verify_table_export(
            run.model, staging, probe, run.dataset.class_names, threshold
        )

    export_dir = rundir.export_of_run(
        run.run_dir,
        export_root,
        lambda: table_export.export_table_model(
            run.model,
            export_root,
            model_name,
            run.dataset.class_names,
            run.dataset.key_kinds,
            threshold=threshold,
            metadata={
                "run_dir": os.path.abspath(run.run_dir),
                "target": run.dataset.target,
                "input_keys": run.dataset.renamed,
            },
            check=check if verify else None,
            examples=probe,
        ),
    )
    print(f"tfcourse: exported SavedModel (raw rows in) to {export_dir}", flush=True)
    if verify:
        print(
            f"tfcourse: export verified in a fresh process on {len(run.splits.test[:32])} test rows with a missing "
            f"value and an unseen category planted (max |dp| = {found['difference']:.1e})",
            flush=True,
        )
    return export_dir


def _metrics(network, pipelines, config: TableConfig):
    """Test numbers; for two classes at the threshold chosen on validation. Also the test rows' labels and
    class probabilities (``predictions.npz``)."""
    dataset, splits = pipelines.dataset, pipelines.splits
    y_test = dataset.y[splits.test]
    test_outputs = _outputs(network, pipelines.make("test", labels=False))
    fit.check_finite_outputs(test_outputs)
    if not dataset.binary:
        metrics = evaluate.evaluate_predictions(y_test, test_outputs, dataset.class_names)
        probs = evaluate.softmax(test_outputs)
    else:
        val_probs = evaluate.sigmoid(_outputs(network, pipelines.make("val", labels=False))[:, 0])
        threshold = evaluate.choose_threshold(dataset.y[splits.val], val_probs, config.threshold_metric)
        positive = evaluate.sigmoid(test_outputs[:, 0])
        metrics = evaluate.binary_metrics(y_test, positive, threshold["threshold"], dataset.class_names)
        metrics["threshold_choice"] = threshold
        probs = np.stack([1 - positive, positive], axis=1)
    majority = int(np.bincount(dataset.y[splits.train], minlength=dataset.num_classes).argmax())
    metrics["majority_baseline_accuracy"] = float(np.mean(y_test == majority))
    return metrics, {"labels": y_test, "probabilities": probs, "rows": splits.test}


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


def load_run(run_dir: str) -> TableRun:
    """A finished table run read back: its model, metrics and history, and its table re-read and split
    exactly as ``config.json`` says (for a later export).

    Raises:
        ValueError: If a file is missing or unreadable, or the table cannot be read again.
    """

    def read(name: str):
        return rundir.read_json(os.path.join(run_dir, name), name, "Pass a complete table run folder.")

    record = read(rundir.CONFIG_FILE)
    settings = dict(record["config"]["data"])
    for name in ("features", "drop", "categorical", "numeric"):
        settings[name] = tuple(settings[name])
    dataset, splits = table_data.load_split_table(TableDataConfig(**settings), record["config"]["seed"])
    if splits.sizes() != record["data"]["split_sizes"]:
        raise ValueError(f"{settings['dataset']} has changed since {run_dir} was trained; its splits differ.")
    return TableRun(
        run_dir, read(rundir.METRICS_FILE), read(rundir.HISTORY_FILE), load_run_model(run_dir), dataset, splits
    )
