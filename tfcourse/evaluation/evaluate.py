"""Test-set numbers from predictions: scikit-learn's classification report, confusion matrices,
per-class and top-k accuracy, the most confused class pairs and the misclassified examples; for a
two-class table, the decision threshold chosen on validation (``choose_threshold``) and ROC-AUC, PR-AUC
and the report at that threshold (``binary_metrics``).

Nothing here draws (``plots.py`` does) or runs a model: ``predict`` turns a model and a
pipeline into labels and logits, and ``evaluate_predictions`` turns those into JSON-ready
numbers, so a report can be recomputed from a saved ``predictions.npz`` without TensorFlow.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence

import numpy as np

from tfcourse import rundir
from tfcourse.config import THRESHOLD_METRICS

TOP_K = (1, 2, 3, 5)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable for large logits)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean sparse categorical cross-entropy from logits: logsumexp(z) - z[label]."""
    logits = np.asarray(logits, dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1))
    return float(np.mean(log_norm - logits[np.arange(len(labels)), labels]))


def top_k_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of examples whose true label is among the ``k`` largest logits (ties count as hits,
    as in scikit-learn's ``top_k_accuracy_score``)."""
    logits = np.asarray(logits)
    true_logit = logits[np.arange(len(labels)), labels]
    rank = (logits > true_logit[:, None]).sum(axis=1)  # classes strictly ahead of the true one
    return float(np.mean(rank < k))


def confused_pairs(matrix: np.ndarray, class_names: Sequence[str], count: int = 5):
    """The off-diagonal cells of a confusion matrix with the most examples, largest first."""
    cells = [
        (int(matrix[t, p]), t, p) for t in range(len(matrix)) for p in range(len(matrix)) if t != p and matrix[t, p]
    ]
    cells.sort(key=lambda cell: (-cell[0], cell[1], cell[2]))
    row_totals = matrix.sum(axis=1)
    return [
        {
            "true": class_names[t],
            "predicted": class_names[p],
            "true_id": t,
            "predicted_id": p,
            "count": n,
            "fraction_of_true": n / int(row_totals[t]),
        }
        for n, t, p in cells[:count]
    ]


def evaluate_predictions(
    labels, logits, class_names: Sequence[str], test_indices: Optional[Sequence[int]] = None, confused_count: int = 5
) -> Dict[str, Any]:
    """Every test-set number of a run, from true labels and logits.

    Args:
        labels: True labels (N,).
        logits: Model outputs (N, num_classes) (logits or probabilities; argmax and ranking agree).
        class_names: One name per class.
        test_indices: Each example's index in ``Dataset.pooled()`` (so a misclassified image can be
            found again); defaults to 0..N-1.
        confused_count: How many most-confused class pairs to list.

    Returns:
        A JSON-ready dict: ``test_loss``, ``test_accuracy``, ``test_examples``, ``per_class_accuracy``,
        ``top_k_accuracy`` ({"1": .., "2": .., ...}), ``classification_report`` (scikit-learn's dict)
        and ``classification_report_text``, ``confusion_matrix`` (counts, rows = true class) and
        ``confusion_matrix_normalized`` (rows sum to 1), ``most_confused`` and ``misclassified``
        (test position, dataset index, true and predicted label, confidence of the prediction).
    """
    from sklearn.metrics import classification_report, confusion_matrix

    labels = np.asarray(labels).astype(np.int64)
    logits = np.asarray(logits)
    class_names = list(class_names)
    num_classes = len(class_names)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"Expected logits of shape (N, {num_classes}); got {logits.shape}.")
    if len(labels) != len(logits) or len(labels) == 0:
        raise ValueError(f"Need as many labels as predictions (and at least one); got {len(labels)} and {len(logits)}.")
    indices = np.arange(len(labels)) if test_indices is None else np.asarray(test_indices)
    predictions = logits.argmax(axis=1)
    probabilities = softmax(logits)
    ids = list(range(num_classes))

    matrix = confusion_matrix(labels, predictions, labels=ids)
    row_totals = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, row_totals, out=np.zeros(matrix.shape, dtype=np.float64), where=row_totals > 0)
    report_kwargs = dict(labels=ids, target_names=class_names, digits=4, zero_division=0)
    per_class = {
        name: (float(matrix[i, i] / row_totals[i, 0]) if row_totals[i, 0] else None)
        for i, name in enumerate(class_names)
    }
    wrong = np.flatnonzero(predictions != labels)
    return {
        "test_loss": cross_entropy(logits, labels),
        "test_accuracy": float((predictions == labels).mean()),
        "test_examples": int(len(labels)),
        "per_class_accuracy": per_class,
        "top_k_accuracy": {str(k): top_k_accuracy(logits, labels, k) for k in TOP_K if k <= num_classes},
        "classification_report": classification_report(labels, predictions, output_dict=True, **report_kwargs),
        "classification_report_text": classification_report(labels, predictions, **report_kwargs),
        "confusion_matrix": matrix.tolist(),
        "confusion_matrix_normalized": normalized.tolist(),
        "most_confused": confused_pairs(matrix, class_names, confused_count),
        "misclassified": [
            {
                "test_position": int(i),
                "dataset_index": int(indices[i]),
                "true_id": int(labels[i]),
                "predicted_id": int(predictions[i]),
                "true": class_names[labels[i]],
                "predicted": class_names[predictions[i]],
                "confidence": float(probabilities[i, predictions[i]]),
            }
            for i in wrong
        ],
    }


# ----------------------------------------------------------------------------- binary targets (tables)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """The positive class's probability from its log-odds, stable for large magnitudes."""
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    return np.where(
        logits >= 0, 1 / (1 + np.exp(-np.abs(logits))), np.exp(-np.abs(logits)) / (1 + np.exp(-np.abs(logits)))
    )


def _scores(metric: str, labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``metric`` of the rule "positive when the probability is at least t", for every t in ``thresholds``
    at once: the confusion counts come from one sort and a cumulative sum (sklearn's scorer called once
    per candidate took 160 s for 20,000 validation rows)."""
    order = np.argsort(probabilities, kind="stable")
    ranked_p, ranked_y = probabilities[order], labels[order]
    positives_below = np.concatenate([[0], np.cumsum(ranked_y)])  # positives among the lowest k rows
    below = np.searchsorted(ranked_p, thresholds, side="left")  # rows with probability < t: called negative
    total_positive = int(labels.sum())
    total_negative = len(labels) - total_positive
    tp = total_positive - positives_below[below]
    fp = (len(labels) - below) - tp
    fn, tn = total_positive - tp, total_negative - fp
    if metric == "f1":
        denominator = 2 * tp + fp + fn
        return np.divide(2 * tp, denominator, out=np.zeros(len(thresholds)), where=denominator > 0)
    if metric == "balanced_accuracy":
        return (tp / total_positive + tn / total_negative) / 2
    return (tp + tn) / len(labels)


def choose_threshold(labels: np.ndarray, probabilities: np.ndarray, metric: str = "f1") -> Dict[str, Any]:
    """The decision threshold on the positive class's probability that maximises ``metric`` on these
    (validation) labels: every midpoint between two neighbouring distinct probabilities is a candidate
    (plus 0.5); among equally good ones, the closest to 0.5. A row is positive when its probability is
    at least the threshold.

    Returns:
        ``{"threshold", "metric", "value", "value_at_0.5"}``.
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"Unknown threshold metric {metric!r}; use one of {', '.join(THRESHOLD_METRICS)}.")
    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        raise ValueError("choosing a threshold needs both classes among the validation rows; use more validation data.")
    distinct = np.unique(probabilities)
    candidates = np.unique(
        np.concatenate([(distinct[:-1] + distinct[1:]) / 2, [0.5], [distinct[0]], [np.nextafter(distinct[-1], 2)]])
    )
    values = _scores(metric, labels, probabilities, candidates)
    best = np.flatnonzero(values >= values.max() - 1e-12)
    chosen = float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])
    return {
        "threshold": chosen,
        "metric": metric,
        "value": float(values.max()),
        "value_at_0.5": float(_scores(metric, labels, probabilities, np.array([0.5]))[0]),
    }


def binary_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float, class_names: Sequence[str]
) -> Dict[str, Any]:
    """Numbers for a two-class target: ROC-AUC and PR-AUC (average precision) of the probabilities, and at
    ``threshold`` the accuracy, scikit-learn's classification report (precision, recall, F1 per class) and
    the confusion matrix; with the ROC and precision-recall curves as points for a figure."""
    from sklearn import metrics

    labels = np.asarray(labels).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(np.int64)
    fpr, tpr, _ = metrics.roc_curve(labels, probabilities)
    precision, recall, _ = metrics.precision_recall_curve(labels, probabilities, drop_intermediate=True)
    report = metrics.classification_report(
        labels, predicted, labels=[0, 1], target_names=list(class_names), output_dict=True, zero_division=0
    )
    return {
        "threshold": float(threshold),
        "positive_class": class_names[1],
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)),
        "pr_auc": float(metrics.average_precision_score(labels, probabilities)),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "positive_share": float(labels.mean()),
        "classification_report": report,
        "confusion_matrix": metrics.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "curves": {
            "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
            "precision_recall": {"precision": precision.tolist(), "recall": recall.tolist()},
        },
    }


def probabilities(model, inputs, tta: str = "none"):
    """Class probabilities of ``model`` (logits out) on preprocessed ``inputs``, in TensorFlow; with
    ``tta="flip"`` the mean of those on the images and on their mirror images (the run's test-time
    augmentation: ``predict`` and the export's signatures both call this, so the served model is the
    evaluated one)."""
    import tensorflow as tf

    result = tf.nn.softmax(tf.cast(model(inputs, training=False), tf.float32), axis=-1)
    if tta == "flip":
        mirrored = tf.nn.softmax(tf.cast(model(tf.reverse(inputs, axis=[2]), training=False), tf.float32), axis=-1)
        result = (result + mirrored) / 2.0
    elif tta != "none":
        raise ValueError(f"Unknown test-time augmentation {tta!r}; use none or flip.")
    return result


def recorded_logits(model, inputs, tta: str = "none"):
    """What a run's evaluation records as logits for preprocessed ``inputs``: the model's logits, or with
    test-time augmentation the log of the averaged probabilities (``probabilities``)."""
    import tensorflow as tf

    if tta == "none":
        return model(inputs, training=False)
    return tf.math.log(tf.maximum(probabilities(model, inputs, tta), 1e-30))


def predict(model, dataset, tta: str = "none") -> Dict[str, np.ndarray]:
    """True labels and logits over a labelled pipeline, in order (one compiled forward function).

    Args:
        tta: ``flip``: the "logits" are the log of the mean probabilities on each image and its mirror
            image (log-probabilities: softmax gives those mean probabilities back, so every number
            computed from logits applies unchanged).
    """
    import tensorflow as tf

    labels, logits = [], []
    forward = tf.function(lambda images: recorded_logits(model, images, tta))
    for images, batch_labels in dataset:
        logits.append(forward(images).numpy())
        labels.append(batch_labels.numpy())
    logits = np.concatenate(logits)
    return {"labels": np.concatenate(labels), "logits": logits, "predictions": logits.argmax(axis=1)}


def evaluate_model(model, dataset, class_names: Sequence[str], test_indices=None) -> Dict[str, Any]:
    """Every test-set number (``evaluate_predictions``) from one pass of ``model`` over ``dataset``."""
    outputs = predict(model, dataset)
    return evaluate_predictions(outputs["labels"], outputs["logits"], class_names, test_indices)


def save_predictions(path: str, labels, logits, test_indices) -> None:
    """Writes ``predictions.npz`` (labels, logits, dataset indices) atomically."""
    rundir.write_npz(
        path,
        labels=np.asarray(labels),
        logits=np.asarray(logits, dtype=np.float32),
        test_indices=np.asarray(test_indices),
    )


def write_evaluation(folder: str, metrics: Dict[str, Any], labels, logits, test_indices, title: str) -> None:
    """A run folder's evaluation: ``metrics.json``, ``report.txt`` (``format_text``) and
    ``predictions.npz``, each written atomically."""
    rundir.write_json(os.path.join(folder, rundir.METRICS_FILE), metrics)
    rundir.write_text(os.path.join(folder, rundir.REPORT_TEXT_FILE), format_text(metrics, title))
    save_predictions(os.path.join(folder, rundir.PREDICTIONS_FILE), labels, logits, test_indices)


def load_predictions(path: str) -> Dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def format_text(evaluation: Dict[str, Any], title: str = "", misclassified_rows: int = 20) -> str:
    """``report.txt``: accuracy, top-k, the classification report, the confusion matrix and the
    most confused pairs, as plain text."""
    class_names = list(evaluation["per_class_accuracy"])
    width = max(8, max(len(name) for name in class_names) + 1)
    lines = [title] if title else []
    lines += [
        f"test examples: {evaluation['test_examples']}",
        f"test accuracy: {evaluation['test_accuracy']:.4f}   test loss: {evaluation['test_loss']:.4f}",
        "top-k accuracy: " + "  ".join(f"top-{k} {v:.4f}" for k, v in evaluation["top_k_accuracy"].items()),
        "",
        "classification report (scikit-learn)",
        evaluation["classification_report_text"].rstrip(),
        "",
        "confusion matrix (rows: true class, columns: predicted class)",
        " " * width + "".join(f"{i:>7d}" for i in range(len(class_names))),
    ]
    for i, (name, row) in enumerate(zip(class_names, evaluation["confusion_matrix"])):
        lines.append(f"{i:>2d} {name:<{width - 3}}"[:width] + "".join(f"{v:>7d}" for v in row))
    lines += ["", "per-class accuracy"]
    lines += [
        f"  {name:<{width}} {value:.4f}" if value is not None else f"  {name:<{width}} n/a"
        for name, value in evaluation["per_class_accuracy"].items()
    ]
    lines += ["", "most confused pairs (true -> predicted)"]
    lines += [
        f"  {p['true']} -> {p['predicted']}: {p['count']} ({p['fraction_of_true']:.1%} of {p['true']})"
        for p in evaluation["most_confused"]
    ] or ["  none"]
    wrong = evaluation["misclassified"]
    lines += [
        "",
        f"misclassified: {len(wrong)} examples (all listed in metrics.json); the first {min(len(wrong), misclassified_rows)}:",
        "  test_position dataset_index true -> predicted (confidence)",
    ]
    lines += [
        f"  {m['test_position']:>13d} {m['dataset_index']:>13d} {m['true']} -> {m['predicted']} ({m['confidence']:.3f})"
        for m in wrong[:misclassified_rows]
    ]
    return "\n".join(lines) + "\n"
