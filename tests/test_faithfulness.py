"""Faithfulness metrics (``tfcourse.explanations.faithfulness``): the deletion and insertion curves and
areas against a hand computation on a tiny model, and the randomisation check on a real trained model:
Grad-CAM passes it, an explainer that ignores the model (the input's edges) fails it."""

import math
import os

import numpy as np
import pytest

from tfcourse.explanations import faithfulness


def _sigmoid(value):
    return 1 / (1 + math.exp(-value))


def _tiny_predict(batch):
    """Two classes; class 1's logit is 0.3 x the pixel sum - 1.5 (class 0's is 0)."""
    logit = 0.3 * batch.reshape(len(batch), -1).sum(axis=1) - 1.5
    p1 = 1 / (1 + np.exp(-logit))
    return np.stack([1 - p1, p1], axis=1)


def test_deletion_and_insertion_agree_with_a_hand_computation():
    image = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    heat = np.array([[[0.9, 0.1], [0.5, 0.7]]])  # order: (0,0)=1, (1,1)=4, (1,0)=3, (0,1)=2
    found = faithfulness.curves(_tiny_predict, image, [1], heat, steps=4, canvas=np.zeros_like(image))
    deleted_sums = [10, 9, 5, 2, 0]  # one pixel per step, hottest first, set to 0
    revealed_sums = [0, 1, 5, 8, 10]  # the same order, revealed on a canvas of zeros
    expected_deletion = [_sigmoid(0.3 * s - 1.5) for s in deleted_sums]
    expected_insertion = [_sigmoid(0.3 * s - 1.5) for s in revealed_sums]
    np.testing.assert_allclose(found["deletion"][0], expected_deletion, rtol=1e-6)
    np.testing.assert_allclose(found["insertion"][0], expected_insertion, rtol=1e-6)
    # trapezoids over x = 0, 1/4, ..., 1
    by_hand = sum((a + b) / 2 * 0.25 for a, b in zip(expected_deletion, expected_deletion[1:]))
    assert faithfulness.area(found["deletion"])[0] == pytest.approx(by_hand)


def test_a_map_that_points_at_the_evidence_beats_the_random_and_edge_maps():
    rng = np.random.default_rng(0)
    images = rng.random((8, 6, 6, 1)).astype(np.float32) * 0.1
    images[:, 1:3, 1:3, 0] = 4.0  # the evidence the tiny model adds up sits in one corner square
    evidence = np.zeros((8, 6, 6))
    evidence[:, 1:3, 1:3] = 1.0
    right = faithfulness.score(_tiny_predict, images, [1] * 8, evidence, steps=9)
    chance = faithfulness.score(_tiny_predict, images, [1] * 8, faithfulness.random_maps((8, 6, 6)), steps=9)
    assert right["deletion"]["auc"] < chance["deletion"]["auc"]
    assert right["insertion"]["auc"] > chance["insertion"]["auc"]


def test_a_constant_map_that_stays_constant_counts_as_unchanged():
    flat, varied = np.zeros((1, 3, 3)), np.arange(9.0).reshape(1, 3, 3)
    assert list(faithfulness.rank_correlations(flat, flat)) == [1.0]
    assert list(faithfulness.rank_correlations(flat, varied)) == [0.0]
    assert faithfulness.rank_correlations(varied, -varied)[0] == pytest.approx(1.0)  # a sign flip is no change


def test_ties_are_broken_at_random_not_in_reading_order():
    ranks = faithfulness.pixel_ranks(np.zeros((1, 4, 4)), seed=1)
    assert sorted(ranks.ravel()) == list(range(16)) and list(ranks.ravel()) != list(range(16))


@pytest.mark.slow
def test_gradcam_passes_the_randomisation_check_and_an_edge_detector_fails_it(cnn_run):
    from tfcourse.evaluation import artifacts
    from tfcourse.explanations import explain

    run = artifacts.load(cnn_run[0])
    model = run.keras_model()
    test = run.test_data()
    images, labels = test.images[:16], test.labels[:16]
    inputs = run.model_inputs(images)

    gradcam = faithfulness.randomisation_check(model, lambda m: explain(m, "gradcam", inputs, labels)["maps"])
    assert gradcam["passed"], gradcam
    assert len(gradcam["layers"]) == faithfulness.CASCADE_LAYERS

    edges = faithfulness.randomisation_check(model, lambda m: faithfulness.edge_maps(images))  # ignores the model
    assert not edges["passed"] and edges["rank_correlation"][-1] == pytest.approx(1.0)
    assert np.asarray(model.get_weights()[-1]).shape  # the model itself is untouched: a copy was randomised
    before = [w.copy() for w in model.get_weights()]
    faithfulness.randomisation_check(model, lambda m: explain(m, "gradcam", inputs, labels)["maps"], depth=1)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


@pytest.mark.slow
def test_explain_evaluate_writes_the_table_json_and_curves_on_validation_images(cnn_run, tmp_path, capsys):
    import json

    from tfcourse import explain
    from tfcourse.evaluation import artifacts

    out = tmp_path / "faith"
    argv = [cnn_run[0], "--evaluate", "--evaluate-images", "8", "--method", "gradcam", "--method", "saliency"]
    assert explain.main(argv + ["--output-dir", str(out)]) == 0
    assert sorted(os.listdir(out)) == sorted(
        ["faithfulness.json", "faithfulness.md", "faithfulness.html", "faithfulness_curves.png"]
    )
    record = json.loads((out / "faithfulness.json").read_text())
    assert record["images"] == 8 and set(record["methods"]) == {"gradcam", "saliency"}
    splits = artifacts.load(cnn_run[0]).test_data().splits
    assert set(record["validation_indices"]) <= set(np.asarray(splits.val).tolist())  # never test images
    gradcam = record["methods"]["gradcam"]
    assert len(gradcam["deletion"]["per_image"]) == 8 and len(gradcam["deletion"]["curve"]) == faithfulness.STEPS + 1
    assert gradcam["randomisation"]["passed"] in (True, False) and "maps" not in gradcam
    table = (out / "faithfulness.md").read_text()
    assert "| gradcam |" in table and "| random map (baseline) |" in table and "| Sobel edges (baseline) |" in table
    assert "| gradcam |" in capsys.readouterr().out

    assert (
        explain.main([cnn_run[0], "--evaluate", "--method", "activation_max", "--output-dir", str(tmp_path / "x")]) == 2
    )
    assert "--evaluate measures maps of the input" in capsys.readouterr().err
