"""The attention models: attention weights, custom layers, round trips, errors, attention maps."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfcourse import data, explanations
from tfcourse import explain as explain_cli
from tfcourse.models import build_model
from tfcourse.models.layers import ClassToken, PositionEmbedding
from tfcourse.pages import run_page
from tfcourse.serving import savedmodel
from tfcourse.tuning import hparams


def _model(name, overrides, input_shape=(28, 28, 1), num_classes=10):
    return build_model(
        name, hparams.make_hyperparameters(name, overrides, input_shape, num_classes), input_shape, num_classes
    )


@pytest.mark.parametrize(
    "name, overrides, tokens",
    [
        ("attention", {"patch_size": 4, "depth": 2, "num_heads": 4}, 7 * 7 + 1),  # 49 patches + class token
        ("attention", {"patch_size": 7, "depth": 3, "num_heads": 2, "pool": "mean"}, 4 * 4),
        ("cnn_attention", {"depth": 2, "num_heads": 8}, 7 * 7),  # the 7x7 grid of the CNN
    ],
)
def test_attention_weights_have_one_row_per_query_summing_to_one(name, overrides, tokens):
    keras.utils.set_random_seed(0)
    model = _model(name, overrides)
    images = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    weights = explanations.attention_weights(model, images, batch_size=2)  # two batches and a remainder
    assert len(weights) == overrides["depth"]
    for layer_weights in weights:
        assert layer_weights.shape == (5, overrides["num_heads"], tokens, tokens)
        assert (layer_weights >= 0).all()
        np.testing.assert_allclose(layer_weights.sum(axis=-1), 1.0, atol=1e-5)
    rollout = explanations.attention_rollout(weights)
    assert rollout.shape == (5, tokens, tokens)
    np.testing.assert_allclose(rollout.sum(axis=-1), 1.0, atol=1e-5)


def test_rollout_of_a_small_example_by_hand():
    """Two layers, two tokens: layer 1's two heads average to [[.8,.2],[.4,.6]], mixed with the
    identity [[.9,.1],[.2,.8]]; layer 2 [[.5,.5],[0,1]] mixed [[.75,.25],[0,1]]; rollout = M2 @ M1."""
    layer1 = np.array([[[[1.0, 0.0], [0.4, 0.6]], [[0.6, 0.4], [0.4, 0.6]]]])  # (1 example, 2 heads, 2, 2)
    layer2 = np.array([[[[0.5, 0.5], [0.0, 1.0]]]])
    np.testing.assert_allclose(explanations.attention_rollout([layer1, layer2])[0], [[0.725, 0.275], [0.2, 0.8]])
    np.testing.assert_allclose(explanations.attention_rollout([layer1])[0], [[0.9, 0.1], [0.2, 0.8]])


def test_vit_structure_follows_its_hyperparameters():
    model = _model("attention", {"patch_size": 7, "embed_dim": 96, "depth": 3, "num_heads": 2, "mlp_ratio": 4})
    attention_layers = explanations.attention_layers(model)
    assert [layer.name for layer in attention_layers] == ["block0_attention", "block1_attention", "block2_attention"]
    assert all(layer.num_heads == 2 and layer.key_dim == 48 for layer in attention_layers)
    patch = model.get_layer("patch_embedding")
    assert patch.kernel_size == (7, 7) and patch.strides == (7, 7) and patch.filters == 96
    assert model.get_layer("block0_mlp1").units == 4 * 96
    assert model.get_layer("position_embedding").embedding.shape == (1, 16 + 1, 96)
    assert isinstance(model.get_layer("block0_norm1"), keras.layers.LayerNormalization)  # pre-norm: before attention
    assert explanations.token_grid(model) == {"grid": (4, 4), "class_token": True}


def test_shifted_patches_embed_the_image_and_its_four_diagonal_half_patch_shifts():
    model = _model("attention", {"patch_size": 4, "shifted_patches": True, "depth": 1})
    image = np.zeros((1, 28, 28, 1), dtype=np.float32)
    image[0, 10, 10, 0] = 1.0
    stacked = keras.Model(model.input, model.get_layer("shifted_patches").output)(image).numpy()[0]
    assert stacked.shape == (28, 28, 5)  # the image, then four copies moved by patch_size // 2 = 2 pixels
    where = [np.argwhere(stacked[..., channel] == 1).tolist() for channel in range(5)]
    assert where == [[[10, 10]], [[12, 12]], [[12, 8]], [[8, 12]], [[8, 8]]]
    assert stacked.sum() == 5  # zeros fill in, nothing wraps around
    assert model.get_layer("patch_embedding").kernel.shape == (4, 4, 5, 64)
    assert explanations.token_grid(model) == {"grid": (7, 7), "class_token": True}


def test_patch_size_that_does_not_divide_the_input_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match=r"patch_size=5 does not divide the 28x28 input .* use one of 2, 4, 7, 14 \(e.g. --hp patch_size=4\)",
    ):
        build_model("attention", _fixed(patch_size=5), (28, 28, 1), 10)
    # the declared choices follow the input: 7 is not among an 8x8 image's
    with pytest.raises(ValueError, match=r"patch_size=7 .* must be one of \[2, 4, 8\] \(the space declared for 8x8x1"):
        _model("attention", {"patch_size": 7}, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="embed_dim=36 is not a multiple of num_heads=8"):
        build_model("attention", _fixed(embed_dim=36, num_heads=8), (28, 28, 1), 10)


def _fixed(**values):
    """Values outside the builders' own choices, as a hand-made search space could hold them."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in values.items():
        hp.Fixed(name, value)
    return hp


def test_the_cli_refuses_a_patch_size_before_writing_anything(tmp_path, capsys):
    from tfcourse import train

    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        train.main(
            [
                "--dataset",
                "digits",
                "--model",
                "attention",
                "--hp",
                "patch_size=7",
                "--output-dir",
                str(out),
                "--no-report",
            ]
        )
    assert exit_.value.code == 2
    assert (
        "patch_size=7 for model 'attention' must be one of [2, 4, 8] (the space declared for 8x8x1 inputs)"
        in capsys.readouterr().err
    )
    assert not out.exists()


def test_custom_layers_have_complete_configs():
    for layer in (ClassToken(stddev=0.05, name="cls"), PositionEmbedding(stddev=0.1, name="pos")):
        config = layer.get_config()
        clone = type(layer).from_config(config)
        assert clone.get_config() == config and clone.stddev == layer.stddev
        assert keras.saving.get_registered_object(f"tfcourse>{type(layer).__name__}") is type(layer)


@pytest.mark.parametrize(
    "name, overrides", [("attention", {}), ("attention", {"shifted_patches": True}), ("cnn_attention", {})]
)
def test_keras_round_trip_keeps_logits_and_attention(name, overrides, tmp_path):
    keras.utils.set_random_seed(3)
    model = _model(name, {"depth": 2, "dropout": 0.1, **overrides}, num_classes=4)
    images = np.random.default_rng(4).random((3, 28, 28, 1), dtype=np.float32)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: the layers are registered
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), atol=1e-5)
    for before, after in zip(
        explanations.attention_weights(model, images), explanations.attention_weights(loaded, images)
    ):
        np.testing.assert_allclose(after, before, atol=1e-6)


def test_attention_model_exports_and_serves_in_a_fresh_process(tmp_path):
    keras.utils.set_random_seed(5)
    model = _model("attention", {"depth": 1}, num_classes=3)
    normalization = data.Normalization.fit("unit", np.zeros((1, 28, 28, 1), dtype=np.uint8))
    path = savedmodel.export_saved_model(model, str(tmp_path), "attention", ["a", "b", "c"], normalization)
    images = np.random.default_rng(6).integers(0, 256, size=(4, 28, 28, 1), dtype=np.uint8)
    assert savedmodel.verify_export(model, path, images, normalization) < 1e-4


def test_patch_attention_reads_the_class_token_row():
    matrix = np.zeros((1, 5, 5))
    matrix[0, 0] = [0.2, 0.1, 0.2, 0.3, 0.2]  # the class token's attention: itself, then 4 patches
    matrix[0, 1:, 0] = 1.0
    np.testing.assert_allclose(
        explanations.patch_attention(matrix, (2, 2), class_token=True)[0], [[0.1, 0.2], [0.3, 0.2]]
    )
    received = explanations.patch_attention(matrix[:, 1:, 1:] + 0.25, (2, 2), class_token=False)[0]
    np.testing.assert_allclose(received, matrix[0, 1:, 1:].mean(axis=0).reshape(2, 2) + 0.25)


def test_attention_maps_written_for_a_trained_model(attention_run, tmp_path):
    run_dir, _ = attention_run
    out = tmp_path / "maps"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfcourse.explain",
            run_dir,
            "--method",
            "attention",
            "--head",
            "3",
            "--output-dir",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    arrays = np.load(out / "attention.npz")
    assert list(arrays["layers"]) == ["block0_attention", "block1_attention"]
    weights = arrays["weights_block1_attention"]
    assert weights.shape == (10, 4, 17, 17)  # one test image per class; 4 heads; 16 patches + class token
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(arrays["matrices"], weights[:, 3])  # --head 3 is the one drawn
    # the map is the class token's attention over the 4x4 patches, each patch 2x2 pixels of the 8x8 image
    expected = weights.mean(axis=1)[:, 0, 1:].reshape(10, 4, 4)
    np.testing.assert_allclose(arrays["patches"], expected, rtol=1e-5)
    assert arrays["maps"].shape == (10, 8, 8) and arrays["maps"].max() == pytest.approx(1.0)
    assert (arrays["maps"][:, ::2, ::2] == arrays["maps"][:, 1::2, 1::2]).all()  # whole patches, not blurred
    assert (out / "attention.png").stat().st_size > 10_000

    rolled = tmp_path / "rollout"
    assert explain_cli.main([run_dir, "--method", "attention", "--rollout", "--output-dir", str(rolled)]) == 0
    arrays = np.load(rolled / "attention.npz")
    assert str(arrays["layer"]) == "rollout"
    layers = [arrays[f"weights_block{i}_attention"] for i in range(2)]
    # the rollout from its definition, written here: per layer 0.5 (mean over heads) + 0.5 I, then
    # the second layer's matrix times the first's; the class token's row over the 4x4 patches
    mixed = [0.5 * weights.mean(axis=1) + 0.5 * np.eye(17) for weights in layers]
    expected = np.einsum("nij,njk->nik", mixed[1], mixed[0])[:, 0, 1:].reshape(10, 4, 4)
    np.testing.assert_allclose(arrays["patches"], expected, rtol=1e-5)


def test_attention_errors_name_the_fix(attention_run, mlp_run, tmp_path, capsys):
    run_dir, _ = attention_run
    assert explain_cli.main([mlp_run, "--method", "attention", "--output-dir", str(tmp_path / "a")]) == 2
    assert "has no MultiHeadAttention layer" in capsys.readouterr().err
    assert explain_cli.main([run_dir, "--method", "attention", "--head", "4", "--output-dir", str(tmp_path / "b")]) == 2
    assert "--head 4 is out of range: block1_attention has 4 heads (0..3)" in capsys.readouterr().err
    assert (
        explain_cli.main(
            [run_dir, "--method", "attention", "--layer", "block0_norm1", "--output-dir", str(tmp_path / "c")]
        )
        == 2
    )
    assert "choose one of block0_attention, block1_attention" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def test_report_of_an_attention_run_shows_its_attention(attention_run):
    run_dir, export_dir = attention_run
    markdown = open(os.path.join(run_dir, run_page.REPORT_MD), encoding="utf-8").read()
    assert "figures/attention.png" in markdown and "attention weights" in markdown
    assert os.path.isfile(os.path.join(run_dir, "figures", "attention.npz"))
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    # the cost counts the attention: the four projections and QK^T / weighted values of 17 tokens
    assert metrics["macs_per_image"] > 2 * 17 * (4 * 32 * 32 + 2 * 17 * 32)
    assert os.path.isdir(export_dir)
