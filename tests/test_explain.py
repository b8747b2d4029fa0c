"""Explanations on a tiny trained cnn: every method, the two Grad-CAMs agree, errors, exports."""

import os

import keras
import numpy as np
import pytest

from tfcourse import explain as explain_cli
from tfcourse import explanations
from tfcourse.evaluation import artifacts
from tfcourse.pages import gallery

CAM_AND_GRADIENT = explanations.CAM_METHODS + explanations.GRADIENT_METHODS


@pytest.fixture(scope="module")
def opened(cnn_run):
    run = artifacts.load(cnn_run[0])
    model = run.keras_model()
    test = run.test_data()
    predictions = run.predictions()["logits"].argmax(axis=1)
    positions = gallery.pick_examples(test.labels, predictions)
    return run, model, run.model_inputs(test.images[positions]), test.labels[positions]


@pytest.mark.parametrize("method", CAM_AND_GRADIENT)
def test_every_method_gives_one_normalised_map_per_image(opened, method):
    run, model, inputs, labels = opened
    result = explanations.explain(model, method, inputs, labels, smooth_samples=4)
    maps = result["maps"]
    assert maps.shape == inputs.shape[:3]
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert (maps.reshape(len(maps), -1).max(axis=1) > 0).sum() >= len(maps) // 2  # not all blank
    if method in explanations.CAM_METHODS:
        assert result["layer"] == explanations.last_conv_layer(model)


def test_default_layer_is_the_last_rectified_conv_block(opened):
    _, model, _, _ = opened
    assert explanations.last_conv_layer(model) == "block1_conv0_relu"  # conv -> bn -> relu, before the pooling


def test_direct_gradcam_agrees_with_tf_keras_vis(opened):
    _, model, inputs, labels = opened
    for layer in (None, "block0_conv0_relu", "block1_conv0"):
        ours = explanations.gradcam_tape(model, inputs, labels, layer=layer)
        theirs = explanations.gradcam(model, inputs, labels, layer=layer)
        assert gallery.correlation(ours, theirs) > 0.99
        np.testing.assert_allclose(ours, theirs, atol=1e-2)
    # and it is not trivially equal to a different explanation
    assert (
        gallery.correlation(
            explanations.gradcam_tape(model, inputs, labels),
            explanations.gradcam_tape(model, inputs, (labels + 1) % 10),
        )
        < 0.99
    )


def test_gradcam_follows_the_evidence_on_a_model_with_a_known_answer():
    # a fixed "model": the class-1 logit is the sum of the feature map over the left half of the image
    inputs = keras.Input((6, 6, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="conv")(inputs)
    left = keras.layers.Lambda(lambda t: t[:, :, :3, :], output_shape=(6, 3, 1))(features)
    pooled = keras.layers.Flatten()(keras.layers.GlobalAveragePooling2D()(left))
    logits = keras.layers.Concatenate()([-pooled, pooled])
    model = keras.Model(inputs, logits)
    image = np.ones((1, 6, 6, 1), np.float32)
    cam = explanations.gradcam_tape(model, image, [1], upsample=False)[0]
    # weights > 0 only where gradients flow (the left half), averaged over the map: a uniform positive CAM
    assert cam.shape == (6, 6) and np.allclose(cam, 0.0)  # constant map -> normalised to 0
    image[0, :, :3] = 2.0
    cam = explanations.gradcam_tape(model, image, [1], upsample=False)[0]
    assert cam[:, :3].min() == pytest.approx(1.0) and cam[:, 3:].max() == pytest.approx(0.0)


def test_activation_maximisation_raises_the_filter_activation(opened):
    run, model, _, _ = opened
    low, high = run.normalization.input_range()
    images, start = explanations.activation_maximization(
        model, "block1_conv0", units=[0, 1], input_range=(low, high), steps=30, seed=0
    )
    assert images.shape == start.shape == (2,) + tuple(model.inputs[0].shape[1:])
    probe = keras.Model(model.inputs, model.get_layer("block1_conv0").output)
    before = probe(start).numpy()[..., :2].mean(axis=(1, 2))
    after = probe(images).numpy()[..., :2].mean(axis=(1, 2))
    assert after[0, 0] > before[0, 0] and after[1, 1] > before[1, 1]
    assert images.min() >= np.min(low) - 1e-6 and images.max() <= np.max(high) + 1e-6
    # class visualisation (no layer): the chosen logit goes up from random noise
    images, start = explanations.activation_maximization(model, None, units=[3], input_range=(low, high), steps=30)
    assert model(images).numpy()[0, 3] > model(start).numpy()[0, 3]
    # the seed fixes the start and the random jitter and rotation of every step, whatever ran before
    np.random.seed(123)
    again, _ = explanations.activation_maximization(model, None, units=[3], input_range=(low, high), steps=30)
    np.testing.assert_array_equal(again, images)


def test_cam_methods_do_not_apply_to_an_mlp(mlp_run):
    model = artifacts.load(mlp_run).keras_model()
    x = np.zeros((1, 8, 8, 1), np.float32)
    for method in ("gradcam", "gradcam++", "scorecam", "gradcam_tape"):
        with pytest.raises(ValueError, match="no convolutional layer.*saliency"):
            explanations.explain(model, method, x, [0])
    assert explanations.saliency(model, x + 0.5, [0]).shape == (1, 8, 8)  # gradients still work


def test_cli_writes_arrays_and_figures(cnn_run, tmp_path):
    out = tmp_path / "explain"
    assert (
        explain_cli.main(
            [cnn_run[0], "--method", "all", "--output-dir", str(out), "--steps", "10", "--smooth-samples", "4"]
        )
        == 0
    )
    names = set(os.listdir(out))
    for method in explanations.METHODS:
        stem = method.replace("+", "_plus")
        if method == "attention":  # the cnn has no attention layers: 'all' leaves it out
            assert not {stem + ".npz", stem + ".png"} & names
        else:
            assert {stem + ".npz", stem + ".png"} <= names
    with np.load(out / "gradcam.npz") as saved:
        assert saved["maps"].shape == (10, 8, 8) and sorted(saved["labels"]) == list(range(10))
        assert (saved["predictions"] == saved["labels"]).all()  # correctly classified examples
        assert str(saved["layer"]) == "block1_conv0_relu"
    with np.load(out / "activation_max.npz") as saved:
        assert saved["images"].shape == (10, 8, 8, 1) and saved["images"].dtype == np.uint8


def test_cli_refuses_inapplicable_methods_and_bad_targets(mlp_run, tmp_path, capsys):
    out = tmp_path / "explain"
    assert explain_cli.main([mlp_run, "--method", "saliency", "--method", "gradcam", "--output-dir", str(out)]) == 2
    assert "no convolutional layer" in capsys.readouterr().err and not out.exists()
    assert explain_cli.main([str(tmp_path), "--output-dir", str(out)]) == 2
    assert "neither a run folder" in capsys.readouterr().err and not out.exists()
    assert explain_cli.main([mlp_run, "--method", "activation_max", "--layer", "nope", "--output-dir", str(out)]) == 2
    assert "has no layer 'nope'" in capsys.readouterr().err


def test_an_export_is_explained_with_the_keras_model_beside_it(cnn_run, tmp_path):
    run_dir, export_dir = cnn_run
    out = tmp_path / "from_export"
    assert explain_cli.main([export_dir, "--method", "gradcam", "--output-dir", str(out)]) == 0
    assert explain_cli.main([run_dir, "--method", "gradcam", "--output-dir", str(tmp_path / "from_run")]) == 0
    with np.load(out / "gradcam.npz") as from_export, np.load(tmp_path / "from_run" / "gradcam.npz") as own:
        np.testing.assert_allclose(from_export["maps"], own["maps"], atol=1e-5)


def test_silhouette_ratio_by_hand():
    images = np.zeros((1, 2, 2, 1), np.uint8)
    images[0, 0, 0] = 200  # one object pixel
    maps = np.array([[[0.8, 0.1], [0.1, 0.1]]])
    ratio = gallery.silhouette_ratio(maps, images)
    assert ratio["ratio"] == pytest.approx(8.0) and ratio["share_inside"] == pytest.approx(0.8 / 1.1)
    assert ratio["area_inside"] == 0.25


def test_nested_layers_use_the_direct_gradcam_and_tf_keras_vis_methods_refuse_them():
    keras.utils.set_random_seed(0)  # an unseeded conv could leave a map all zero after ReLU
    inner_in = keras.Input((8, 8, 1))
    inner = keras.Model(
        inner_in, keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inner_in), name="base"
    )
    outer_in = keras.Input((8, 8, 1))
    features = inner(outer_in, training=False)
    model = keras.Model(outer_in, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(features)))
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)

    assert explanations.last_conv_layer(model) == "base/conv"
    # The reference by hand: behind global average pooling and one Dense layer, d logit_c / d A^k_ij
    # is W[k, c] / (H * W) at every position, so Grad-CAM = ReLU(A @ W[:, c]) / 64, scaled to [0, 1].
    kernel = np.array([[1.0, -1.0, 0.0], [0.5, 2.0, 0.0], [0.2, -0.5, 0.0], [1.5, 1.0, 0.0]], dtype=np.float32)
    model.layers[-1].kernel.assign(kernel)  # class 0: every channel counts for it; class 1: mixed signs
    features = keras.ops.convert_to_numpy(inner(x))
    expected = np.maximum(np.einsum("nijk,kn->nij", features, kernel[:, [0, 1]]) / 64, 0)
    span = np.ptp(expected, axis=(1, 2), keepdims=True)
    assert (span > 0).all()  # two maps with something to show
    expected = (expected - expected.min(axis=(1, 2), keepdims=True)) / span
    np.testing.assert_allclose(explanations.gradcam(model, x, [0, 1]), expected, atol=1e-5)
    for method in ("gradcam++", "scorecam"):
        with pytest.raises(ValueError, match="cannot reach 'base/conv' inside a nested model"):
            explanations.check_method(model, method)
        with pytest.raises(ValueError, match="cannot reach"):
            explanations.explain(model, method, x, [0, 1])
    with pytest.raises(ValueError, match="cannot reach"):
        explanations.check_method(model, "activation_max", layer="base/conv")


def test_the_earlier_layer_is_the_last_one_at_the_next_larger_size():
    import keras

    image = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_a")(image)
    x = keras.layers.ReLU(name="relu_a")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    model = keras.Model(image, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x)))
    assert explanations.last_conv_layer(model) == "relu_b"
    assert explanations.earlier_layer(model) == "relu_a"  # 8x8, the size above relu_b's 4x4; not the input
    assert explanations.earlier_layer(model, "relu_a") is None  # nothing larger but the input
    flat = keras.Input((4,))
    assert explanations.earlier_layer(keras.Model(flat, keras.layers.Dense(2)(flat))) is None  # no convolutions
