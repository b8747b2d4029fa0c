"""Transfer learning offline: pretrain ``vgg`` on digits 0-4, transfer its frozen base to digits 5-9."""

import json
import os

import keras
import numpy as np
import pytest

from tfcourse import train
from tfcourse.config import DataConfig, TrainConfig
from tfcourse.jobs.image_run import train_and_evaluate
from tfcourse.training import transfer

SMALL_VGG = {"blocks": 2}  # 8x8 digits: two pooling blocks


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A vgg trained on the digits 0-4 (15 epochs, ~99% test accuracy)."""
    run_dir = str(tmp_path_factory.mktemp("pretrain") / "vgg04")
    result = train_and_evaluate(
        TrainConfig(
            model="vgg",
            epochs=15,
            patience=15,
            hp=SMALL_VGG,
            output_dir=run_dir,
            report=False,
            data=DataConfig(dataset="digits", classes=tuple(range(5))),
        ),
        verbose=0,
    )
    assert result.metrics["test_accuracy"] > 0.9
    return run_dir


def digits_5_to_9(**kwargs):
    return TrainConfig(data=DataConfig(dataset="digits", classes=(5, 6, 7, 8, 9)), **kwargs)


def test_frozen_base_stays_unchanged_and_learns_faster_than_scratch(pretrained, tmp_path):
    epochs = 2
    moved = train_and_evaluate(
        digits_5_to_9(
            model="transfer",
            base=pretrained,
            freeze_base=True,
            epochs=epochs,
            patience=9,
            output_dir=str(tmp_path / "transfer"),
        ),
        verbose=0,
    )
    scratch = train_and_evaluate(
        digits_5_to_9(
            model="vgg", hp=SMALL_VGG, epochs=epochs, patience=9, report=False, output_dir=str(tmp_path / "scratch")
        ),
        verbose=0,
    )

    # every weight of the base (kernels and batch norm statistics) is the pretrained one
    source = transfer.feature_extractor(keras.models.load_model(os.path.join(pretrained, "model.keras")))
    base = transfer.base_of(moved.model)
    assert len(base.weights) == len(source.weights) > 0
    for after, before in zip(base.weights, source.weights, strict=True):
        np.testing.assert_array_equal(np.array(after), np.array(before))

    metrics = json.loads((tmp_path / "transfer" / "metrics.json").read_text())
    head = metrics["transfer"]["phases"][0]
    assert head["phase"] == "head" and head["epochs"] == epochs and head["frozen_weights_unchanged"] is True
    assert head["trainable"] == ["head_dense", "logits"]
    assert "base/block0_conv0" in head["frozen"] and "base/block1_conv1_bn" in head["frozen"]
    assert (
        metrics["trainable_parameters"] == head["trainable_params"] == base.output.shape[-1] * 256 + 256 + 256 * 5 + 5
    )
    assert metrics["transfer"]["base"] == os.path.abspath(os.path.join(pretrained, "model.keras"))

    # equal epochs: the transferred features give far better accuracy than learning from scratch
    assert moved.history["val_accuracy"][-1] > scratch.history["val_accuracy"][-1] + 0.15
    assert moved.metrics["test_accuracy"] > scratch.metrics["test_accuracy"] + 0.15

    # the report's Grad-CAM reaches into the nested base (the direct GradientTape implementation)
    gallery = np.load(tmp_path / "transfer" / "figures" / "gradcam.npz")
    assert str(gallery["layer"]).startswith("base/") and gallery["maps"].shape == (5, 8, 8)
    assert (tmp_path / "transfer" / "report.html").is_file()

    reloaded = keras.models.load_model(tmp_path / "transfer" / "model.keras")  # the nested base saves and loads
    x = np.random.default_rng(0).random((2, 8, 8, 1), dtype=np.float32)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), moved.model.predict(x, verbose=0), atol=1e-5)


def test_fine_tune_at_unfreezes_the_top_of_the_base(pretrained, tmp_path):
    assert (
        train.main(
            [
                "--no-report",
                "--base",
                pretrained,
                "--freeze-base",
                "--fine-tune-at",
                "block1_conv0",
                "--fine-tune-epochs",
                "2",
                "--epochs",
                "2",
                "--dataset",
                "digits",
                "--classes",
                "5-9",
                "--output-dir",
                str(tmp_path / "ft"),
                "--verbose",
                "0",
                "--export",
                "--export-dir",
                str(tmp_path / "served"),
            ]
        )
        == 0
    )
    assert (tmp_path / "served" / "transfer" / "1" / "saved_model.pb").is_file()  # verified in a fresh process
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    head, tune = metrics["transfer"]["phases"]
    assert tune["phase"] == "fine_tune" and tune["epochs"] == 2 and metrics["epochs_trained"] == 4
    assert tune["learning_rate"] == pytest.approx(head["learning_rate"] * 0.1)
    assert tune["trainable"] == ["base/block1_conv0", "base/block1_conv1", "head_dense", "logits"]
    assert "base/block1_conv0_bn" in tune["frozen"] and "base/block0_conv1" in tune["frozen"]
    assert tune["frozen_weights_unchanged"] is True

    model = keras.models.load_model(tmp_path / "ft" / "model.keras")
    source = keras.models.load_model(os.path.join(pretrained, "model.keras"))
    base = transfer.base_of(model)
    np.testing.assert_array_equal(
        base.get_layer("block0_conv1").get_weights()[0], source.get_layer("block0_conv1").get_weights()[0]
    )
    assert not np.array_equal(
        base.get_layer("block1_conv1").get_weights()[0], source.get_layer("block1_conv1").get_weights()[0]
    )
    history = json.loads((tmp_path / "ft" / "history.json").read_text())
    assert len(history["loss"]) == 4
    assert len((tmp_path / "ft" / "history.csv").read_text().strip().splitlines()) == 1 + 4


def test_applications_base_with_a_local_weights_file(tmp_path):
    """VGG16 from keras.applications with no-top weights of our own (the offline stand-in for ImageNet)."""
    keras.utils.set_random_seed(3)
    vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    weights_path = str(tmp_path / "vgg16_notop.weights.h5")
    vgg16.save_weights(weights_path)
    result = train_and_evaluate(
        TrainConfig(
            model="transfer",
            base="VGG16",
            base_weights=weights_path,
            report=False,
            freeze_base=True,
            epochs=1,
            hp={"head_units": 0},
            output_dir=str(tmp_path / "run"),
            data=DataConfig(dataset="digits"),
        ),
        verbose=0,
    )
    model = result.model
    assert model.get_layer("resize").output.shape == (None, 32, 32, 1)
    assert isinstance(model.get_layer("imagenet_preprocessing"), keras.layers.Layer)
    base = transfer.base_of(model)
    for after, before in zip(base.weights, vgg16.weights, strict=True):
        np.testing.assert_array_equal(np.array(after), np.array(before))
    head = result.metrics["transfer"]["phases"][0]
    assert head["trainable"] == ["logits"] and head["trainable_params"] == 512 * 10 + 10
    assert result.metrics["transfer"]["base_weights"] == weights_path


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--freeze-base"], "--freeze-base and --fine-tune-at need --base"),
        (["--base", "VGG16", "--model", "cnn"], "--base replaces --model"),
        (["--base", "VGG16", "--fine-tune-at", "block5_conv1"], "add --freeze-base"),
        (["--base", "/no/such/run"], "is neither a keras.applications model"),
        (["--base", "VGG16", "--base-weights", "/no/weights.h5"], "--base-weights '/no/weights.h5'"),
        (["--base", "VGG16", "--normalization", "standardize"], "use --normalization unit"),
        (
            ["--model", "resnet50", "--hp", "weights=imagenet", "--normalization", "standardize"],
            "use --normalization unit",
        ),
    ],
)
def test_bad_transfer_flags_exit_2_and_write_nothing(extra, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        train.main(["--dataset", "digits", "--output-dir", str(tmp_path / "run"), "--verbose", "0", *extra])
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_unknown_fine_tune_layer_and_a_base_without_convolutions(pretrained, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        train.main(
            [
                "--base",
                pretrained,
                "--freeze-base",
                "--fine-tune-at",
                "block9",
                "--dataset",
                "digits",
                "--classes",
                "5-9",
                "--epochs",
                "1",
                "--output-dir",
                str(tmp_path / "ft"),
                "--verbose",
                "0",
            ]
        )
    err = capsys.readouterr().err
    assert done.value.code == 2 and "'block9' is not a layer of the base" in err and "block1_conv1" in err
    assert os.listdir(tmp_path) == []

    train.main(
        [
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--no-report",
            "--output-dir",
            str(tmp_path / "mlp"),
            "--verbose",
            "0",
        ]
    )
    with pytest.raises(SystemExit) as done:
        train.main(
            [
                "--base",
                str(tmp_path / "mlp"),
                "--dataset",
                "digits",
                "--output-dir",
                str(tmp_path / "t"),
                "--verbose",
                "0",
            ]
        )
    assert done.value.code == 2 and "has no convolutional base" in capsys.readouterr().err


def test_list_hp_of_a_transfer_model(pretrained, capsys):
    assert train.main(["--base", pretrained, "--freeze-base", "--list-hp"]) == 0
    out = capsys.readouterr().out
    assert "head_units" in out and "head_dropout" in out and "learning_rate" in out and "blocks" not in out
