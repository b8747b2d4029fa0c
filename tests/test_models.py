import keras
import keras_tuner
import numpy as np
import pytest

from tfcourse.models import MODELS, build_model, get_spec, list_models
from tfcourse.training import fit
from tfcourse.tuning import hparams


def test_registry_lists_models_and_rejects_unknown_names():
    assert list_models() == sorted(MODELS)
    images = {"mlp", "cnn", "vgg", "resnet_small", "resnet50", "attention", "cnn_attention"}
    assert images <= set(list_models("image")) and list_models("table") == ["tabular_mlp"]
    assert set(list_models("image")) | set(list_models("table")) == set(list_models())
    with pytest.raises(
        ValueError,
        match="Unknown model 'resnet'; registered models: attention, cnn, cnn_attention, "
        "mlp, resnet50, resnet_small, tabular_mlp, vgg",
    ):
        get_spec("resnet")


def test_a_model_refuses_the_other_kind_of_input():
    with pytest.raises(ValueError, match=r"tabular_mlp is a model for tables: input_shape must be \(features,\)"):
        build_model("tabular_mlp", input_shape=(28, 28, 1), num_classes=2)
    with pytest.raises(ValueError, match="cnn is a model for images: input_shape must be"):
        build_model("cnn", input_shape=(12,), num_classes=2)


# every registered model is exercised on the inputs of its kind
SHAPES = {"image": [(28, 28, 1), (32, 32, 3), (8, 8, 1)], "table": [(1,), (37,)]}
CLASSES = {"image": [3], "table": [2, 3]}  # a table model's two-class head differs (one logit)
# ResNet50 (~30 s a case) on one RGB input already at its image size only: its resize-and-repeat path for
# small grey inputs is trained by test_tuners' zoo test (8x8 digits at image size 32) and built below
SKIP = {("resnet50", (8, 8, 1)), ("resnet50", (28, 28, 1))}
CASES = [
    (name, shape, classes)
    for name in list_models()
    for shape in SHAPES[get_spec(name).kind]
    for classes in CLASSES[get_spec(name).kind]
    if (name, shape) not in SKIP
]


def example_shape(name):
    return SHAPES[get_spec(name).kind][0]


@pytest.mark.parametrize("name, input_shape, num_classes", CASES)
def test_every_model_builds_and_trains_one_step(name, input_shape, num_classes):
    """Image models give one logit per class; a table model one logit (log-odds) for two classes."""
    keras.utils.set_random_seed(0)
    hp = keras_tuner.HyperParameters()
    model = build_model(name, hp, input_shape, num_classes=num_classes)
    binary = get_spec(name).kind == "table" and num_classes == 2
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    assert model.output_shape == (None, 1 if binary else num_classes)
    assert model.layers[-1].get_config()["activation"] == "linear"  # logits
    fit.compile_model(model, hp, binary=binary)
    x = np.random.default_rng(0).random((16,) + input_shape, dtype=np.float32)
    y = np.arange(16) % num_classes
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
    conv0 = 3 * 3 * 1 * 32 + 4 * 32  # no bias (batch norm follows); BN has 4 vectors
    conv1 = 3 * 3 * 32 * 64 + 4 * 64
    dense = 7 * 7 * 64 * 128 + 128
    logits = 128 * 10 + 10
    assert model.count_params() == conv0 + conv1 + dense + logits


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
def test_mlp_hyperparameters_shape_the_model(activation):
    hp = hparams.make_hyperparameters(
        "mlp",
        {"hidden_layers": 3, "units": 64, "activation": activation, "batch_norm": True, "dropout": 0.0},
        (8, 8, 1),
        10,
    )
    model = build_model("mlp", hp, (8, 8, 1), 10)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in dense] == [64, 64, 64, 10]
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 3
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert model.get_layer(f"{activation}_0").get_config()["activation"] == activation


def test_cnn_hyperparameters_shape_the_model():
    hp = hparams.make_hyperparameters(
        "cnn",
        {
            "conv_blocks": 3,
            "filters": 64,
            "convs_per_block": 2,
            "kernel_size": 5,
            "pooling": "avg",
            "dense_layers": 0,
            "activation": "gelu",
        },
        (28, 28, 1),
        10,
    )
    model = build_model("cnn", hp, (28, 28, 1), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [64, 64, 128, 128, 256, 256]
    assert convs[0].kernel_size == (5, 5)
    assert all(isinstance(model.get_layer(f"block{i}_pool"), keras.layers.AveragePooling2D) for i in range(3))
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)] == ["logits"]
    assert model.get_layer("block2_conv1_gelu").get_config()["activation"] == "gelu"


def test_cnn_dense_head_depth():
    hp = hparams.make_hyperparameters("cnn", {"dense_layers": 2, "dense_units": 96}, (28, 28, 1), 10)
    model = build_model("cnn", hp, (28, 28, 1), 10)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [96, 96, 10]


def test_cnn_head_flatten_or_global_average():
    flat = build_model(
        "cnn", hparams.make_hyperparameters("cnn", {"dense_layers": 0}, (28, 28, 1), 10), (28, 28, 1), 10
    )
    gap = build_model(
        "cnn", hparams.make_hyperparameters("cnn", {"dense_layers": 0, "head": "gap"}, (28, 28, 1), 10), (28, 28, 1), 10
    )
    assert isinstance(flat.get_layer("features"), keras.layers.Flatten)
    assert isinstance(gap.get_layer("features"), keras.layers.GlobalAveragePooling2D)
    # 64 channels of a 7x7 map: the flatten head sees 7*7*64 inputs, the pooled one 64
    assert flat.get_layer("logits").kernel.shape == (7 * 7 * 64, 10)
    assert gap.get_layer("logits").kernel.shape == (64, 10)


def test_cnn_too_many_blocks_for_input():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("conv_blocks", 4)
    with pytest.raises(ValueError, match="use at most 3 blocks"):
        build_model("cnn", hp, (8, 8, 1), 10)


def test_optimizer_and_learning_rate_are_hyperparameters():
    hp = hparams.make_hyperparameters("mlp", {"optimizer": "sgd", "learning_rate": 0.005}, (8, 8, 1), 10)
    model = fit.compile_model(build_model("mlp", hp, (8, 8, 1), 10), hp)
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    space = {entry.name for entry in hparams.hyperparameter_space("cnn", (28, 28, 1), 10).space}
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
        hparams.make_hyperparameters("mlp", overrides, (8, 8, 1), 10)


@pytest.mark.parametrize("text, value", [("3", 3), ("0.25", 0.25), ("true", True), ("False", False), ("relu", "relu")])
def test_parse_hp_value(text, value):
    assert hparams.parse_hp_value(text) == value and type(hparams.parse_hp_value(text)) is type(value)


def test_same_seed_same_initial_weights():
    def weights(seed):
        keras.utils.set_random_seed(seed)
        return build_model("cnn", input_shape=(8, 8, 1), num_classes=10).get_weights()

    for a, b in zip(weights(5), weights(5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(weights(5), weights(6), strict=True))


@pytest.mark.parametrize("name", list_models())
def test_save_load_round_trip(name, tmp_path):
    """Every model saves to .keras and loads back (in this process) predicting the same logits."""
    keras.utils.set_random_seed(1)
    model = build_model(name, input_shape=example_shape(name), num_classes=4)
    x = np.random.default_rng(2).random((3,) + example_shape(name), dtype=np.float32)
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_vgg_defaults_are_the_course_reference():
    model = build_model("vgg", input_shape=(28, 28, 1), num_classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [32, 32, 64, 64, 128, 128]
    assert all(layer.kernel_size == (3, 3) for layer in convs)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [256, 10]
    dropouts = {layer.name: layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)}
    assert dropouts == {"block0_dropout": 0.25, "block1_dropout": 0.25, "block2_dropout": 0.25, "dense_0_dropout": 0.4}
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 6
    # convs without bias (batch norm follows: 4 vectors each), 28 -> 14 -> 7 -> 3 after pooling
    convs_params = sum(
        9 * cin * cout + 4 * cout for cin, cout in [(1, 32), (32, 32), (32, 64), (64, 64), (64, 128), (128, 128)]
    )
    assert model.count_params() == convs_params + (3 * 3 * 128 * 256 + 256) + (256 * 10 + 10) == 585_514


def test_vgg_hyperparameters_shape_the_model():
    hp = hparams.make_hyperparameters(
        "vgg",
        {
            "blocks": 2,
            "filters": 16,
            "convs_per_block": 3,
            "batch_norm": False,
            "conv_dropout": 0.0,
            "head": "gap",
            "dense_layers": 2,
            "dense_units": 64,
        },
        (28, 28, 1),
        10,
    )
    model = build_model("vgg", hp, (28, 28, 1), 10)
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [16] * 3 + [32] * 3
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert isinstance(model.get_layer("features"), keras.layers.GlobalAveragePooling2D)
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 64, 10]
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        "dense_0_dropout",
        "dense_1_dropout",
    ]


def test_resnet_small_defaults_are_resnet20():
    model = build_model("resnet_small", input_shape=(28, 28, 1), num_classes=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    main_path = [layer for layer in convs if "shortcut" not in layer.name]
    # 6n+2 = 20 weighted layers for n=3: the stem, 3 stages x 3 blocks x 2 convs, the logits
    assert len(main_path) + 1 == 20
    assert [layer.filters for layer in main_path] == [16] + [16] * 6 + [32] * 6 + [64] * 6
    assert [layer.name for layer in convs if "shortcut" in layer.name] == [
        "stage1_block0_shortcut",
        "stage2_block0_shortcut",
    ]  # 1x1 projections where the shape changes
    assert model.get_layer("features").output.shape == (None, 64)
    assert model.get_layer("stage2_block2_out").output.shape == (None, 7, 7, 64)
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 9
    assert model.count_params() == 273_754


def test_resnet_small_depth_and_width():
    hp = hparams.make_hyperparameters(
        "resnet_small", {"stages": 2, "blocks_per_stage": 1, "width": 32, "weight_decay": 0.0}, (28, 28, 1), 10
    )
    model = build_model("resnet_small", hp, (28, 28, 1), 10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [layer.filters for layer in convs] == [32, 32, 32, 64, 64, 64]
    assert all(layer.kernel_regularizer is None for layer in convs)
    assert model.get_layer("features").output.shape == (None, 64)
    fixed = keras_tuner.HyperParameters()
    fixed.Fixed("stages", 4)
    with pytest.raises(ValueError, match="stages=4 halves a 4x4 input below 1x1; use at most 3 stages"):
        build_model("resnet_small", fixed, (4, 4, 1), 10)
    # the declared range follows the input: a 4x4 image takes 2 halvings, so at most 3 stages
    with pytest.raises(ValueError, match=r"stages=4 for model 'resnet_small' must be in \[2, 3\]"):
        hparams.make_hyperparameters("resnet_small", {"stages": 4}, (4, 4, 1), 10)


def test_resnet50_adapts_small_grayscale_inputs():
    model = build_model("resnet50", input_shape=(28, 28, 1), num_classes=10)
    assert model.get_layer("resize").output.shape == (None, 32, 32, 1)
    assert model.get_layer("gray_to_rgb").output.shape == (None, 32, 32, 3)
    assert "imagenet_preprocessing" not in [layer.name for layer in model.layers]  # weights=None: no ImageNet inputs
    assert model.get_layer("conv5_block3_out").output.shape == (None, 1, 1, 2048)  # one flat Functional graph
    assert model.count_params() == 23_587_712 + 2048 * 10 + 10  # keras.applications ResNet50 without top
    hp = hparams.make_hyperparameters("resnet50", {"image_size": 64}, (28, 28, 1), 10)
    assert build_model("resnet50", hp, (28, 28, 1), 10).get_layer("conv5_block3_out").output.shape == (None, 2, 2, 2048)


def test_resnet50_loads_a_local_weights_file_with_imagenet_preprocessing(tmp_path):
    """The offline stand-in for ``weights="imagenet"``: a no-top ResNet50 weights file of our own."""
    keras.utils.set_random_seed(5)
    pretrained = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    path = str(tmp_path / "resnet50_notop.weights.h5")
    pretrained.save_weights(path)
    hp = hparams.make_hyperparameters("resnet50", {"weights": path}, (28, 28, 1), 10)
    model = build_model("resnet50", hp, (28, 28, 1), 10)
    for name in ["conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_bn"]:
        for loaded, saved in zip(
            model.get_layer(name).get_weights(), pretrained.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(loaded, saved)
    preprocessing = model.get_layer("imagenet_preprocessing")
    gray = np.full((1, 2, 2, 3), 0.5, dtype=np.float32)
    np.testing.assert_allclose(
        preprocessing(gray).numpy()[0, 0, 0], 127.5 - np.array([103.939, 116.779, 123.68]), rtol=1e-5
    )
    rgb = np.zeros((1, 1, 1, 3), dtype=np.float32)
    rgb[..., 0] = 1.0  # pure red becomes channel 2 (BGR order)
    np.testing.assert_allclose(preprocessing(rgb).numpy()[0, 0, 0], [-103.939, -116.779, 255 - 123.68], rtol=1e-5)
    with pytest.raises(ValueError, match="does not exist"):
        build_model(
            "resnet50",
            hparams.make_hyperparameters("resnet50", {"weights": str(tmp_path / "no.h5")}, (28, 28, 1), 10),
            (28, 28, 1),
            10,
        )


def test_reading_a_space_keeps_the_dtype_policy_the_caller_set():
    """``hyperparameter_space`` clears the Keras session (its probe model is thrown away); a mixed-precision
    policy set before it must survive, or every model built after it silently trains in float32."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        hparams.hyperparameter_space("mlp", (8, 8, 1), 10)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")


LOAD_AFTER_IMPORT = """
import sys
order = sys.argv[1]
if order == "keras-first":
    import keras
import tfcourse
assert order == "keras-first" or ("keras" not in sys.modules and "tensorflow" not in sys.modules), "import tfcourse is heavy"
import keras
import numpy as np
for path in sys.argv[2:]:
    model = keras.models.load_model(path)
    print(path, type(model).__name__, [type(layer).__name__ for layer in model.layers])
"""


@pytest.mark.slow
def test_a_saved_model_loads_with_plain_keras_after_import_tfcourse(cnn_run, attention_run, tmp_path):
    """``keras.models.load_model`` on the ``model.keras`` of a cnn, vgg, resnet_small, attention and table run
    (custom batch norm, attention layers, the table model's imputing normaliser), in a fresh process that imports tfcourse and keras in either order; without
    ``import tfcourse`` Keras cannot find the custom classes. ``import tfcourse`` itself stays light."""
    import os
    import subprocess
    import sys

    from tfcourse.config import DataConfig, TableConfig, TrainConfig
    from tfcourse.jobs import image_run, table_run

    runs = [cnn_run[0], attention_run[0]]
    for model in ("vgg", "resnet_small"):  # a run's model.keras of each other registered family
        config = TrainConfig(
            model=model,
            epochs=1,
            output_dir=str(tmp_path / model),
            report=False,
            data=DataConfig(dataset="digits", train_limit=200),
        )
        runs.append(image_run.train_and_evaluate(config, verbose=0).run_dir)
    runs.append(table_run.train_table(TableConfig(output_dir=str(tmp_path / "table"), epochs=1, report=False)).run_dir)
    paths = [os.path.join(run, "model.keras") for run in runs]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for order in ("tfcourse-first", "keras-first"):
        done = subprocess.run(
            [sys.executable, "-c", LOAD_AFTER_IMPORT, order, *paths], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, (order, done.stderr[-3000:])
        assert done.stdout.count(" Functional ") == len(paths) == 5 and "FusedBatchNormalization" in done.stdout
    plain = subprocess.run(
        [sys.executable, "-c", "import sys, keras; keras.models.load_model(sys.argv[1])", paths[0]],
        capture_output=True,
        text=True,
        env=env,
    )
    assert plain.returncode != 0 and "Could not locate class 'FusedBatchNormalization'" in plain.stderr
