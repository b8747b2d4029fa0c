"""The export in runtimes nobody here wrote and TF Serving's conventions: ONNX Runtime and the LiteRT
interpreter run the exported files in a fresh process without TensorFlow and agree with the SavedModel;
the warm-up requests parse with TF Serving's own protos and run through the signature; the REST example
gets the classes its README promises; bad formats and failed checks leave nothing behind."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfcourse import export as export_cli
from tfcourse import rundir, train
from tfcourse.evaluation import artifacts, evaluate
from tfcourse.serving import runtime_runner, runtimes, savedmodel, tf_serving


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    """A cnn trained in float32 on standardised digits through ``python -m tfcourse.train --export --export-format
    savedmodel,onnx,litert``: ``(run_dir, export_dir)``."""
    root = tmp_path_factory.mktemp("runtimes")
    argv = ["--model", "cnn", "--dataset", "digits", "--epochs", "8", "--patience", "8", "--hp", "filters=32"]
    argv += ["--normalization", "standardize"]  # a mean and a std inside every format
    argv += ["--precision", "float32", "--no-report", "--verbose", "0", "--output-dir", str(root / "run")]
    argv += ["--export", "--export-dir", str(root / "exports"), "--export-format", "savedmodel,onnx,litert"]
    assert train.main(argv) == 0
    with open(root / "run" / "export.json", encoding="utf-8") as handle:
        return str(root / "run"), json.load(handle)["export_dir"]


def test_onnx_and_litert_agree_with_the_savedmodel_in_a_fresh_process(float32_run):
    run_dir, export_dir = float32_run
    x, y = artifacts.load(run_dir).test_data().dataset.pooled()
    images, labels = x[:1000], y[:1000]
    served = savedmodel.serve_in_fresh_process(export_dir, images)["serving_default/probabilities"]
    others = runtimes.run_in_fresh_process(export_dir, images)
    assert not others.pop("tensorflow_loaded")  # ONNX Runtime and LiteRT alone ran them
    assert sorted(others) == sorted(runtime_runner.FILES)
    for key in ("onnx", "litert_float32"):
        assert np.abs(others[key] - served).max() < 1e-4, key
    assert np.abs(others["litert_float16"] - served).max() < runtimes.FLOAT16_TOLERANCE

    def accuracy(probabilities):
        return np.mean(probabilities.argmax(axis=1) == labels)

    assert accuracy(served) > 0.9
    assert accuracy(others["litert_int8"]) >= accuracy(served) - 0.005
    sizes = {key: os.path.getsize(os.path.join(export_dir, name)) for key, name in runtime_runner.FILES.items()}
    assert sizes["litert_int8"] * 3 <= sizes["litert_float32"]
    recorded = rundir.read_metadata(export_dir)["formats"]  # what the export's own check measured
    assert {key: info["bytes"] for key, info in recorded.items()} == sizes
    assert recorded["onnx"]["max_abs_dp"] < 1e-4 and recorded["litert_int8"]["same_top1"] >= runtimes.INT8_SAME_TOP1


def test_warmup_requests_and_the_rest_example_run_through_the_signature(float32_run):
    run_dir, export_dir = float32_run
    run = artifacts.load(run_dir)
    test_images = run.test_data().images
    loaded = tf.saved_model.load(export_dir)
    requests = tf_serving.read_warmup(os.path.join(export_dir, tf_serving.WARMUP_FILE))  # TF Serving's protos
    assert len(requests) == tf_serving.WARMUP_REQUESTS
    for row, (name, signature, inputs) in enumerate(requests):
        assert (name, signature, sorted(inputs)) == ("cnn", "serving_default", ["images"])
        np.testing.assert_array_equal(inputs["images"], test_images[row : row + 1].astype(np.float32))
        served = loaded.signatures[signature](images=tf.constant(inputs["images"]))["probabilities"].numpy()
        expected = evaluate.probabilities(run.keras_model(), run.model_inputs(test_images[row : row + 1]))
        np.testing.assert_allclose(served, expected.numpy(), atol=1e-5)

    with open(os.path.join(export_dir, tf_serving.REQUEST_FILE), encoding="utf-8") as handle:
        body = json.load(handle)
    assert body["signature_name"] == "serving_default" and len(body["instances"]) == tf_serving.REST_EXAMPLES
    inputs = tf_serving.body_inputs(body, ["images"])
    np.testing.assert_array_equal(inputs["images"], test_images[: tf_serving.REST_EXAMPLES])
    classes = loaded.signatures["serving_default"](images=tf.constant(inputs["images"], tf.float32))["classes"]
    with open(os.path.join(export_dir, tf_serving.README_FILE), encoding="utf-8") as handle:
        readme = handle.read()
    assert json.dumps([name.decode() for name in classes.numpy()]) in readme  # what the curl must print
    model_dir, version = os.path.split(export_dir)
    assert f'-v "{model_dir}:/models/cnn" -e MODEL_NAME=cnn tensorflow/serving' in readme
    assert f"http://localhost:8501/v1/models/cnn/versions/{version}:predict" in readme
    assert f'-d @"{os.path.join(export_dir, tf_serving.REQUEST_FILE)}"' in readme


def test_the_export_command_writes_the_formats_asked_for(float32_run, tmp_path, capsys):
    run_dir, _ = float32_run
    assert export_cli.main([run_dir, "--export-dir", str(tmp_path), "--format", "onnx", "--no-verify"]) == 0
    version = tmp_path / "cnn" / "1"
    assert (version / "saved_model.pb").exists() and (version / "model.onnx").exists()
    assert not list(version.glob("*.tflite"))
    assert sorted(rundir.read_metadata(str(version))["formats"]) == ["onnx"]
    assert "model.onnx" in capsys.readouterr().out


def test_a_file_that_fails_its_check_publishes_nothing(float32_run, tmp_path):
    run_dir, _ = float32_run
    run = artifacts.load(run_dir)
    test = run.test_data()
    black = np.zeros((20,) + test.images.shape[1:], np.uint8)  # int8 ranges calibrated on blank images only
    with pytest.raises(RuntimeError, match="model_int8.tflite file disagrees"):
        savedmodel.export_saved_model(
            run.keras_model(),
            str(tmp_path),
            "cnn",
            run.class_names,
            run.normalization,
            examples=test.images[:64],
            formats=("savedmodel", "litert"),
            calibration=black,
        )
    assert os.listdir(tmp_path / "cnn") == []  # no version, no staging folder


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "digits", "--export", "--export-format", "savedmodel,tflite"], "unknown export format tflite"),
        (["--dataset", "digits", "--export-format", "onnx"], "add --export"),
        (["--dataset", "seattle_weather", "--export", "--export-format", "onnx"], "--export-format does not apply"),
    ],
)
def test_bad_export_formats_exit_2_before_training(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        train.main([*argv, "--output-dir", str(tmp_path / "run")])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_missing_runtime_is_named_with_its_install_command(monkeypatch):
    monkeypatch.setitem(runtimes.NEEDS, "onnx", ("tfcourse_no_such_runtime",))
    with pytest.raises(ValueError, match=r"tfcourse_no_such_runtime.*pip install -e '\.\[runtimes\]'"):
        runtimes.require(("savedmodel", "onnx"))
    runtimes.require(("savedmodel", "litert"))  # the installed one passes
