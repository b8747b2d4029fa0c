"""The cost report: hand-calculated multiply-adds, parameters equal to Keras' count, the CLI."""

import json

import keras
import pytest

from tfcourse import cost as inspect
from tfcourse.models import build_model, cost, get_spec, list_models


def conv_model(*layers, input_shape=(28, 28, 192)):
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def test_5x5_convolution_by_hand():
    report = cost.cost_report(conv_model(keras.layers.Conv2D(32, 5, padding="same", name="conv5x5")))
    # 28 * 28 * 32 * 5 * 5 * 192
    assert report["macs"] == 120_422_400
    assert report["layers"][-1]["output_shape"] == [28, 28, 32]
    assert report["forward_flops"] == 2 * 120_422_400 and report["training_flops"] == 6 * 120_422_400


def test_1x1_bottleneck_by_hand():
    report = cost.cost_report(
        conv_model(
            keras.layers.Conv2D(16, 1, name="bottleneck"), keras.layers.Conv2D(32, 5, padding="same", name="conv5x5")
        )
    )
    # 28*28*16*192 = 2,408,448 for the 1x1, then 28*28*32*5*5*16 = 10,035,200
    assert [row["macs"] for row in report["layers"][1:]] == [2_408_448, 10_035_200]
    assert report["macs"] == 12_443_648


def test_strides_groups_dense_depthwise_and_attention():
    strided = cost.cost_report(conv_model(keras.layers.Conv2D(8, 3, strides=2, padding="valid"), input_shape=(9, 9, 4)))
    assert strided["macs"] == 4 * 4 * 8 * 3 * 3 * 4
    grouped = cost.cost_report(conv_model(keras.layers.Conv2D(8, 3, padding="same", groups=2), input_shape=(5, 5, 4)))
    assert grouped["macs"] == 5 * 5 * 8 * 3 * 3 * 4 // 2
    depthwise = cost.cost_report(conv_model(keras.layers.DepthwiseConv2D(3, padding="same"), input_shape=(5, 5, 4)))
    assert depthwise["macs"] == 5 * 5 * 4 * 3 * 3
    dense = cost.cost_report(conv_model(keras.layers.Dense(7), input_shape=(6, 5)))  # applied at 6 positions
    assert dense["macs"] == 6 * 5 * 7 and dense["total_params"] == 5 * 7 + 7

    tokens = keras.Input(shape=(16, 32))
    attention = keras.layers.MultiHeadAttention(num_heads=4, key_dim=8, name="mha")
    report = cost.cost_report(keras.Model(tokens, attention(tokens, tokens)))
    projections = 3 * 16 * 32 * 4 * 8 + 16 * 4 * 8 * 32  # q, k, v in; output back to 32
    scores_and_mix = 2 * 16 * 16 * 4 * 8  # Q K^T, then attention-weighted values
    assert report["macs"] == projections + scores_and_mix


@pytest.mark.parametrize("name", list_models())
def test_parameters_match_keras_for_every_model(name):
    shape = (28, 28, 1) if get_spec(name).kind == "image" else (40,)
    model = build_model(name, input_shape=shape, num_classes=10)
    report = cost.cost_report(model)
    assert report["total_params"] == model.count_params()
    assert report["trainable_params"] == sum(int(w.numpy().size) for w in model.trainable_weights)
    assert report["macs"] > 0 and all(row["macs"] >= 0 for row in report["layers"])


def test_vgg_macs_by_hand():
    report = cost.cost_report(build_model("vgg", input_shape=(28, 28, 1), num_classes=10))
    convs = 28 * 28 * 32 * 9 * (1 + 32) + 14 * 14 * 64 * 9 * (32 + 64) + 7 * 7 * 128 * 9 * (64 + 128)
    assert report["macs"] == convs + 3 * 3 * 128 * 256 + 256 * 10


def test_nested_models_are_expanded():
    inner_in = keras.Input(shape=(8, 8, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same", name="inner_conv")(inner_in), name="inner")
    outer_in = keras.Input(shape=(8, 8, 3))
    model = keras.Model(outer_in, keras.layers.Dense(2, name="head")(inner(outer_in)))
    report = cost.cost_report(model)
    names = [row["name"] for row in report["layers"]]
    assert "inner/inner_conv" in names and report["total_params"] == model.count_params()
    assert report["macs"] == 8 * 8 * 4 * 9 * 3 + 8 * 8 * 4 * 2


def test_inspect_cli_markdown_and_json(capsys, tmp_path):
    assert inspect.main(["--model", "vgg"]) == 0
    out = capsys.readouterr().out
    assert "| block0_conv0 | Conv2D | 28x28x32 | 288 | 225,792 |" in out
    assert "parameters: 585,514" in out and "estimated training FLOPs per image" in out

    assert (
        inspect.main(["--model", "cnn", "--input-shape", "32", "32", "3", "--hp", "conv_blocks=3", "--format", "json"])
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["input_shape"] == [32, 32, 3]
    assert [row["name"] for row in report["layers"] if row["type"] == "Conv2D"] == [
        "block0_conv0",
        "block1_conv0",
        "block2_conv0",
    ]

    model = build_model("mlp", input_shape=(8, 8, 1), num_classes=3)
    model.save(tmp_path / "m.keras")
    assert inspect.main(["--model", str(tmp_path / "m.keras"), "--summary-only"]) == 0
    out = capsys.readouterr().out
    assert "Dropout" not in out and f"parameters: {model.count_params():,}" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "vggg"], "Unknown model 'vggg'"),
        (["--model", "/no/such/model.keras"], "does not exist"),
        (["--model", "vgg", "--hp", "blocks=9"], "must be in [1, 4] (the space declared for 28x28x1 inputs)"),
    ],
)
def test_inspect_cli_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        inspect.main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err
