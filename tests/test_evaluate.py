"""Evaluation numbers against scikit-learn computed independently from the same predictions."""

import json
import os

import keras
import numpy as np
import pytest
from sklearn import metrics as skm

from tfcourse import rundir
from tfcourse.evaluation import artifacts, evaluate


def random_predictions(n=300, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 2.0 * np.eye(classes)[labels] * rng.random((n, 1))
    return labels, logits


def test_numbers_computed_by_hand():
    """A reference written out by hand (evaluate.py uses scikit-learn, so scikit-learn is no check of it).

    Eight examples of three classes; each row's probabilities are 0.6 for the predicted class,
    0.3 for the runner-up and 0.1 for the last, so the logits log(p) give known losses and top-2.
    """
    labels = [0, 0, 0, 1, 1, 2, 2, 2]
    rows = [  # (predicted, runner-up, last)
        (0, 1, 2),
        (0, 2, 1),
        (1, 0, 2),  # true 0: right, right, wrong (true class runner-up)
        (1, 0, 2),
        (2, 0, 1),  # true 1: right, wrong (true class last)
        (2, 1, 0),
        (2, 0, 1),
        (0, 2, 1),  # true 2: right, right, wrong (true class runner-up)
    ]
    probabilities = np.zeros((8, 3))
    for i, (first, second, third) in enumerate(rows):
        probabilities[i, [first, second, third]] = [0.6, 0.3, 0.1]
    ours = evaluate.evaluate_predictions(np.array(labels), np.log(probabilities), ["a", "b", "c"])

    assert ours["test_accuracy"] == pytest.approx(5 / 8)
    assert ours["test_loss"] == pytest.approx(-(5 * np.log(0.6) + 2 * np.log(0.3) + np.log(0.1)) / 8)
    assert ours["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert np.allclose(ours["confusion_matrix_normalized"], [[2 / 3, 1 / 3, 0], [0, 1 / 2, 1 / 2], [1 / 3, 0, 2 / 3]])
    assert list(ours["per_class_accuracy"].values()) == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    report = ours["classification_report"]
    # precision: predicted a 3 times (2 right), b twice (1 right), c 3 times (2 right)
    assert [report[c]["precision"] for c in "abc"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert [report[c]["f1-score"] for c in "abc"] == pytest.approx([2 / 3, 1 / 2, 2 / 3])
    assert [report[c]["support"] for c in "abc"] == [3, 2, 3]
    assert report["macro avg"]["f1-score"] == pytest.approx(11 / 18)
    assert report["weighted avg"]["f1-score"] == pytest.approx(5 / 8)
    assert ours["top_k_accuracy"]["1"] == pytest.approx(5 / 8)
    assert ours["top_k_accuracy"]["2"] == pytest.approx(7 / 8)
    assert [m["test_position"] for m in ours["misclassified"]] == [2, 4, 7]
    assert [(m["true_id"], m["predicted_id"]) for m in ours["misclassified"]] == [(0, 1), (1, 2), (2, 0)]
    assert all(m["confidence"] == pytest.approx(0.6) for m in ours["misclassified"])
    assert {(p["true_id"], p["predicted_id"], p["count"]) for p in ours["most_confused"]} == {
        (0, 1, 1),
        (1, 2, 1),
        (2, 0, 1),
    }


def test_numbers_equal_scikit_learn():
    labels, logits = random_predictions()
    names = ["a", "b", "c", "d"]
    ours = evaluate.evaluate_predictions(labels, logits, names, test_indices=np.arange(300) + 1000)
    predicted = logits.argmax(axis=1)

    assert ours["test_accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert ours["test_loss"] == pytest.approx(skm.log_loss(labels, evaluate.softmax(logits), labels=range(4)))
    np.testing.assert_array_equal(ours["confusion_matrix"], skm.confusion_matrix(labels, predicted))
    np.testing.assert_allclose(
        ours["confusion_matrix_normalized"], skm.confusion_matrix(labels, predicted, normalize="true")
    )
    expected = skm.classification_report(labels, predicted, target_names=names, output_dict=True, zero_division=0)
    for name in names + ["macro avg", "weighted avg"]:
        for key in ("precision", "recall", "f1-score", "support"):
            assert ours["classification_report"][name][key] == pytest.approx(expected[name][key])
    for k in ("1", "2", "3"):
        assert ours["top_k_accuracy"][k] == pytest.approx(skm.top_k_accuracy_score(labels, logits, k=int(k)))
    recall = skm.recall_score(labels, predicted, average=None)
    assert list(ours["per_class_accuracy"].values()) == pytest.approx(list(recall))

    wrong = np.flatnonzero(predicted != labels)
    assert [m["test_position"] for m in ours["misclassified"]] == list(wrong)
    first = ours["misclassified"][0]
    assert first["dataset_index"] == wrong[0] + 1000 and first["predicted_id"] == predicted[wrong[0]]
    assert first["confidence"] == pytest.approx(evaluate.softmax(logits)[wrong[0]].max())
    matrix = np.array(ours["confusion_matrix"])
    np.fill_diagonal(matrix, 0)
    top = ours["most_confused"][0]
    assert top["count"] == matrix.max() and matrix[top["true_id"], top["predicted_id"]] == matrix.max()
    assert "macro avg" in ours["classification_report_text"]


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="Expected logits of shape"):
        evaluate.evaluate_predictions([0, 1], np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError, match="as many labels"):
        evaluate.evaluate_predictions([0], np.zeros((2, 2)), ["a", "b"])


def test_a_trained_run_reports_what_scikit_learn_computes(cnn_run):
    run_dir, _ = cnn_run
    metrics = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    saved = evaluate.load_predictions(os.path.join(run_dir, rundir.PREDICTIONS_FILE))

    # the saved logits are the saved model's outputs on the run's test split, recomputed from its config
    run = artifacts.load(run_dir)
    test = run.test_data()
    np.testing.assert_array_equal(saved["test_indices"], test.indices)
    np.testing.assert_array_equal(saved["labels"], test.labels)
    model = keras.models.load_model(os.path.join(run_dir, "model.keras"))
    np.testing.assert_allclose(model.predict(run.model_inputs(test.images), verbose=0), saved["logits"], atol=1e-4)

    predicted = saved["logits"].argmax(axis=1)
    assert metrics["test_accuracy"] == pytest.approx(skm.accuracy_score(saved["labels"], predicted))
    np.testing.assert_array_equal(metrics["confusion_matrix"], skm.confusion_matrix(saved["labels"], predicted))
    expected = skm.classification_report(
        saved["labels"], predicted, output_dict=True, zero_division=0, target_names=metrics["per_class_accuracy"].keys()
    )
    assert metrics["classification_report"]["macro avg"]["f1-score"] == pytest.approx(expected["macro avg"]["f1-score"])
    assert len(metrics["misclassified"]) == int((predicted != saved["labels"]).sum())
    text = open(os.path.join(run_dir, rundir.REPORT_TEXT_FILE)).read()
    assert "classification report (scikit-learn)" in text and f"{metrics['test_accuracy']:.4f}" in text
