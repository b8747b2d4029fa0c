import keras
import keras_tuner
import numpy as np
import pytest

from tfcourse import fit
from tfcourse.models import MODELS, build_model, get_spec, list_models


def test_registry_lists_models_and_rejects_unknown_names():
    assert list_models() == sorted(MODELS) and {"mlp", "cnn"} <= set(list_models())
    with pytest.raises(ValueError, match="Unknown model 'resnet'; registered models: cnn, mlp"):
        get_spec("resnet")


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("input_shape", [(28, 28, 1), (8, 8, 1), (12, 10, 3)])
def test_every_model_builds_and_trains_one_step(name, input_shape):
    keras.utils.set_random_seed(0)
    hp = keras_tuner.HyperParameters()
    model = build_model(name, hp, input_shape, num_classes=3)
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    assert model.output_shape == (None, 3)
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits
    fit.compile_model(model, hp)
    x = np.random.default_rng(0).random((16,) + input_shape, dtype=np.float32)
    y = np.arange(16) % 3
    before = [w.copy() for w in model.get_weights()]
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_mlp_flattens_inside_the_model_and_pins_default_size():
    model = build_model("mlp", input_shape=(28, 28, 1), num_classes=10)
    assert model.input_shape == (None, 28, 28, 1)
    # 784*256+256 + 256*256+256 + 256*10+10
    assert model.count_params() == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10


def test_cnn_default_parameter_count():
    model = build_model("cnn", input_shape=(28, 28, 1), num_classes=10)
    conv0 = 3 * 3 * 1 * 32 + 4 * 32          # no bias (batch norm follows); BN has 4 vectors
    conv1 = 3 * 3 * 32 * 64 + 4 * 64
    dense = 7 * 7 * 64 * 128 + 128
    logits = 128 * 10 + 10
    assert model.count_params() == conv0 + conv1 + dense + logits


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
def test_mlp_hyperparameters_shape_the_model(activation):
    hp = fit.make_hyperparameters("mlp", {"hidden_layers": 3, "units": 64, "activation": activation,
                                          "batch_norm": True, "dropout": 0.0}, (8, 8, 1), 10)
    model = build_model("mlp", hp, (8, 8, 1), 10)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [64, 64, 64, 10]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 3
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert model.get_layer(f"{activation}_0").get_config()["activation"] == activation


def test_cnn_hyperparameters_shape_the_model():
    hp = fit.make_hyperparameters("cnn", {"conv_blocks": 3, "filters": 64, "convs_per_block": 2,
                                          "kernel_size": 5, "pooling": "avg", "dense_layers": 0,
                                          "activation": "gelu"}, (28, 28, 1), 10)
    model = build_model("cnn", hp, (28, 28, 1), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [64, 64, 128, 128, 256, 256]
    assert convs[0].kernel_size == (5, 5)
    assert all(isinstance(model.get_layer(f"block{i}_pool"), keras.layers.AveragePooling2D) for i in range(3))
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)] == ["logits"]
    assert model.get_layer("block2_conv1_gelu").get_config()["activation"] == "gelu"


def test_cnn_dense_head_depth():
    hp = fit.make_hyperparameters("cnn", {"dense_layers": 2, "dense_units": 96}, (28, 28, 1), 10)
    model = build_model("cnn", hp, (28, 28, 1), 10)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [96, 96, 10]


def test_cnn_too_many_blocks_for_input():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 4)
    with pytest.raises(ValueError, match="use at most 3 blocks"):
        build_model("cnn", hp, (8, 8, 1), 10)


def test_optimizer_and_learning_rate_are_hyperparameters():
    hp = fit.make_hyperparameters("mlp", {"optimizer": "sgd", "learning_rate": 0.005}, (8, 8, 1), 10)
    model = fit.compile_model(build_model("mlp", hp, (8, 8, 1), 10), hp)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    space = {entry.name for entry in fit.hyperparameter_space("cnn", (28, 28, 1), 10).space}
    assert {"optimizer", "learning_rate", "conv_blocks", "filters", "dropout", "batch_norm"} <= space


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"dropuot": 0.1}, "has no hyperparameter 'dropuot'; it has: .*dropout"),
        ({"dropout": 0.9}, r"dropout=0.9 .* must be in \[0.0, 0.5\]"),
        ({"activation": "gelu"}, "must be one of"),
        ({"units": 100.5}, "must be an integer"),
        ({"batch_norm": "yes"}, "true or false"),
    ],
)
def test_bad_overrides(overrides, match):
    with pytest.raises(ValueError, match=match):
        fit.make_hyperparameters("mlp", overrides, (8, 8, 1), 10)


@pytest.mark.parametrize("text, value", [("3", 3), ("0.25", 0.25), ("true", True), ("False", False), ("relu", "relu")])
def test_parse_hp_value(text, value):
    assert fit.parse_hp_value(text) == value and type(fit.parse_hp_value(text)) is type(value)


def test_same_seed_same_initial_weights():
    def weights(seed):
        keras.utils.set_random_seed(seed)
        return build_model("cnn", input_shape=(8, 8, 1), num_classes=10).get_weights()

    for a, b in zip(weights(5), weights(5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(5), weights(6), strict=True))
