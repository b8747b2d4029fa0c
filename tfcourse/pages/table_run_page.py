"""The run report of a table run (``jobs.table_run.train_table``): ``report.html`` (self-contained) and
``report.md`` (figures in ``figures/``) with the data (columns, kinds, missing rows, split), the test
numbers beside the majority-class baseline, precision/recall/F1 per class, the confusion matrix, for
a two-class target the ROC and precision-recall curves with the threshold's operating point and the
predicted probabilities by true class, the learning curves, and the hyperparameters.

Everything comes from the run folder's files (``config.json``, ``metrics.json``, ``history.json``,
``predictions.npz``: the test rows' labels and probabilities); nothing is recomputed from the model.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional

import numpy as np

from tfcourse import rundir
from tfcourse.pages import plots
from tfcourse.pages.blocks import figure, heading, machine_description, paragraph, table, write_pages

REPORT_HTML, REPORT_MD = rundir.REPORT_HTML, rundir.REPORT_MD
FIGURES_DIR = "figures"


def _read(run_dir: str, name: str) -> Any:
    return rundir.read_json(os.path.join(run_dir, name), name, "The run folder is incomplete: train it again.")


def _report_rows(metrics: Dict[str, Any], class_names) -> list:
    report = metrics["classification_report"]
    rows = [
        [
            name,
            report[name]["precision"],
            report[name]["recall"],
            report[name]["f1-score"],
            int(report[name]["support"]),
        ]
        for name in class_names
    ]
    for name in ("macro avg", "weighted avg"):
        if name in report:
            entry = report[name]
            rows.append([name, entry["precision"], entry["recall"], entry["f1-score"], int(entry["support"])])
    return rows


def table_report_blocks(run_dir: str, figures_dir: str):
    """The page's blocks, its figures drawn into ``figures_dir``."""
    run = _TableRun(
        run_dir,
        _read(run_dir, rundir.CONFIG_FILE),
        _read(run_dir, rundir.METRICS_FILE),
        _read(run_dir, rundir.HISTORY_FILE),
        figures_dir,
    )
    os.makedirs(figures_dir, exist_ok=True)
    data, config = run.data, run.record["config"]
    blocks = [
        heading(1, f"Run report: {os.path.basename(os.path.normpath(run_dir))}"),
        paragraph(
            f"{config['model']} on {data['source']}: predict {data.get('target', 'the target')} "
            f"({', '.join(data['class_names'])}) from {len(data['columns'])} columns. Machine: {machine_description()}."
        ),
    ]
    for section in (_numbers_blocks, _class_blocks, _binary_curve_blocks, _training_and_data_blocks):
        blocks += section(run)
    return blocks


@dataclasses.dataclass
class _TableRun:
    """What the sections read: a table run's folder, its records and where its figures go."""

    run_dir: str
    record: Dict[str, Any]
    metrics: Dict[str, Any]
    history: Dict[str, Any]
    figures_dir: str

    @property
    def data(self) -> Dict[str, Any]:
        return self.record["data"]

    @property
    def class_names(self) -> List[str]:
        return self.data["class_names"]

    @property
    def binary(self) -> bool:
        """A two-class target (its metrics have a threshold, ROC-AUC and PR-AUC)."""
        return "roc_auc" in self.metrics

    def figure_path(self, name: str) -> str:
        return os.path.join(self.figures_dir, name)


def _numbers_blocks(run: _TableRun) -> list:
    """The test numbers against the majority-class baseline (and, for two classes, ROC/PR-AUC and the threshold)."""
    metrics, binary = run.metrics, run.binary
    blocks: list = []
    accuracy = metrics["accuracy"] if binary else metrics["test_accuracy"]
    baseline = metrics.get("majority_baseline_accuracy")
    lines = [["test accuracy", accuracy], ["majority-class baseline accuracy", baseline]]
    if binary:
        choice = metrics["threshold_choice"]
        lines += [
            ["ROC-AUC", metrics["roc_auc"]],
            ["PR-AUC (average precision)", metrics["pr_auc"]],
            [f"share of {metrics['positive_class']} in test", metrics["positive_share"]],
            [f"decision threshold (best validation {choice['metric']})", metrics["threshold"]],
            [
                f"validation {choice['metric']} at the threshold / at 0.5",
                f"{choice['value']:.4f} / {choice['value_at_0.5']:.4f}",
            ],
        ]
    blocks += [heading(2, "Test numbers"), table(["number", "value"], lines)]
    summary = f"Test accuracy {accuracy:.2%}"
    if baseline is not None:
        summary += f" against {baseline:.2%} for always answering the most common training class"
    if binary:
        positive = metrics["classification_report"][metrics["positive_class"]]
        summary += (
            f"; ROC-AUC {metrics['roc_auc']:.3f} (0.5 is chance). At the threshold chosen on the validation rows "
            f"the model finds {positive['recall']:.0%} of the {metrics['positive_class']} rows, and "
            f"{positive['precision']:.0%} of the rows it calls {metrics['positive_class']} are "
            f"{metrics['positive_class']}"
        )
    blocks.append(paragraph(summary + "."))

    return blocks


def _class_blocks(run: _TableRun) -> list:
    """Precision, recall and F1 per class, and the confusion matrix."""
    metrics = run.metrics
    threshold = f", threshold {metrics['threshold']:.3f})" if run.binary else ")"
    blocks: list = []
    blocks += [
        heading(2, "Precision, recall and F1 per class"),
        table(["class", "precision", "recall", "F1", "test rows"], _report_rows(metrics, run.class_names)),
        figure(
            plots.plot_confusion_matrix(
                np.asarray(metrics["confusion_matrix"]),
                run.class_names,
                run.figure_path("confusion_matrix.png"),
                "confusion matrix (test split" + threshold,
            ),
            "Confusion matrix of the test rows: counts, coloured by the share of the true class.",
        ),
    ]
    return blocks


def _binary_curve_blocks(run: _TableRun) -> list:
    """For a two-class target: ROC and precision-recall curves and the probabilities by true class."""
    if not run.binary:
        return []
    metrics = run.metrics
    blocks = [
        heading(2, "ROC and precision-recall curves"),
        figure(
            plots.plot_roc_pr(metrics, run.figure_path("roc_pr.png")),
            "ROC and precision-recall curves of the test rows; the red point is the decision threshold.",
        ),
    ]
    predictions_path = os.path.join(run.run_dir, rundir.PREDICTIONS_FILE)
    if os.path.exists(predictions_path):
        with np.load(predictions_path) as predictions:
            labels, probabilities = predictions["labels"], predictions["probabilities"][:, 1]
        blocks.append(
            figure(
                plots.plot_probability_by_class(
                    labels,
                    probabilities,
                    run.class_names,
                    metrics["threshold"],
                    run.figure_path("probability_by_class.png"),
                ),
                "Predicted probability of the positive class for the test rows, by their true class.",
            )
        )
    return blocks


def _training_and_data_blocks(run: _TableRun) -> list:
    """The learning curves, the data (rows, split, columns and kinds) and the hyperparameters."""
    data, config = run.data, run.record["config"]
    return [
        heading(2, "Learning curves"),
        figure(
            plots.plot_history(run.history, run.figure_path("history.png")),
            "Loss and accuracy (at probability 0.5) per epoch; early stopping kept the best validation loss.",
        ),
        heading(2, "The data"),
        paragraph(
            f"{data['rows']} rows ({data['dropped_rows_without_target']} dropped without a target); split "
            f"{config['data']['split']}: "
            + ", ".join(f"{k} {v}" for k, v in data["split_sizes"].items())
            + f". The FeatureSpace turns the columns into {data['encoded_features']} inputs"
            + (f"; class weights {data['class_weight']}." if data.get("class_weight") else ".")
        ),
        table(["column", "kind"], sorted(data["columns"].items())),
        heading(2, "Hyperparameters"),
        table(["name", "value"], sorted(run.record["hyperparameters"].items())),
    ]


def write_table_report(run_dir: str, out_dir: Optional[str] = None) -> Dict[str, str]:
    """Writes ``report.html`` and ``report.md`` (figures in ``figures/``) for a table run.

    Raises:
        ValueError: If a file of the run folder is missing or unreadable.
    """
    out_dir = out_dir or run_dir
    blocks = table_report_blocks(run_dir, os.path.join(out_dir, FIGURES_DIR))
    name = os.path.basename(os.path.normpath(run_dir))
    return write_pages(blocks, out_dir, f"tfcourse run report: {name}", REPORT_HTML, REPORT_MD)
