"""The speed pieces (issue 20): the fused batch norm, the fast recipe's schedule and loss, ``--precision``,
test-time augmentation, and explanations of a bfloat16 model."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcourse import machine
from tfcourse.config import RECIPES
from tfcourse.evaluation import evaluate
from tfcourse.models import build_model, float32_copy, load_keras_model
from tfcourse.models.layers import FusedBatchNormalization, OneCycle, SmoothedSparseCategoricalCrossentropy
from tfcourse.training import fit


def _pair(x, **kwargs):
    """A Keras batch norm and a fused one with the same settings and weights."""
    keras_bn, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    keras_bn.build(x.shape)
    fused.build(x.shape)
    fused.set_weights(keras_bn.get_weights())
    return keras_bn, fused


def test_fused_batch_norm_is_keras_batch_norm():
    x = np.random.default_rng(0).normal(1.0, 3.0, size=(16, 5, 5, 3)).astype("float32")
    keras_bn, fused = _pair(x, momentum=0.9)
    np.testing.assert_allclose(fused(x, training=True), keras_bn(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean, keras_bn.moving_mean, atol=1e-6)
    # the fused kernel updates with the unbiased variance (n / (n - 1)), Keras with the biased one
    n = 16 * 5 * 5
    batch_var = x.reshape(-1, 3).var(axis=0)
    np.testing.assert_allclose(fused.moving_variance, 0.9 * 1.0 + 0.1 * batch_var * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(keras_bn.moving_variance, 0.9 * 1.0 + 0.1 * batch_var, rtol=1e-5)
    # inference uses the moving statistics
    fused.set_weights(keras_bn.get_weights())
    np.testing.assert_allclose(fused(x, training=False), keras_bn(x, training=False), atol=1e-5)
    inputs = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        loss_keras = tf.reduce_sum(keras_bn(inputs, training=True) ** 3)
        loss_fused = tf.reduce_sum(fused(inputs, training=True) ** 3)
    for a, b in zip(
        tape.gradient(loss_keras, [inputs] + keras_bn.trainable_weights),
        tape.gradient(loss_fused, [inputs] + fused.trainable_weights),
    ):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3)


def test_fused_batch_norm_takes_the_keras_path_off_image_maps_and_when_frozen():
    x = np.random.default_rng(1).normal(size=(8, 4)).astype("float32")
    keras_bn, fused = _pair(x)
    np.testing.assert_allclose(fused(x, training=True), keras_bn(x, training=True), atol=1e-5)
    images = np.random.default_rng(2).normal(size=(4, 3, 3, 2)).astype("float32")
    _, frozen = _pair(images)
    frozen.trainable = False  # a frozen batch norm runs in inference mode, as Keras' does
    before = frozen.get_weights()
    frozen(images, training=True)
    for a, b in zip(before, frozen.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_image_models_use_the_fused_batch_norm_and_float32_logits_under_bfloat16():
    with fit.dtype_policy("mixed_bfloat16"):
        model = build_model("vgg", None, (28, 28, 1), 10)
    assert keras.config.dtype_policy().name == "float32"  # restored after the block
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(layer, FusedBatchNormalization) for layer in norms)
    assert model.get_layer("block0_conv0").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"
    outputs = model(np.zeros((2, 28, 28, 1), "float32"))
    assert outputs.dtype == "float32"


def test_one_cycle_rises_to_the_peak_then_falls_to_zero():
    schedule = OneCycle(0.2, total_steps=100, warmup_fraction=0.25)
    rates = np.array([float(schedule(step)) for step in range(100)])
    assert rates[0] == pytest.approx(0.2 * 1 / 25)
    assert rates.argmax() == 24 and rates.max() == pytest.approx(0.2)
    assert rates[-1] == pytest.approx(0.0, abs=1e-7)
    assert np.all(np.diff(rates[:25]) > 0) and np.all(np.diff(rates[24:]) < 0)
    assert OneCycle.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="warmup_fraction"):
        OneCycle(0.2, 100, warmup_fraction=1.0)


def test_smoothed_sparse_loss_equals_keras_categorical_loss_with_smoothing():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(6, 5)).astype("float32") * 3
    labels = rng.integers(0, 5, size=6)
    ours = SmoothedSparseCategoricalCrossentropy(0.1)(labels, logits)
    reference = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)(
        keras.ops.one_hot(labels, 5), logits
    )
    assert float(ours) == pytest.approx(float(reference), rel=1e-5)
    plain = SmoothedSparseCategoricalCrossentropy(0.0)(labels, logits)
    assert float(plain) == pytest.approx(float(keras.losses.SparseCategoricalCrossentropy(True)(labels, logits)))


def test_a_fast_recipe_model_saves_and_loads_with_its_schedule_and_loss(tmp_path):
    model = build_model("cnn", None, (8, 8, 1), 3)
    recipe = RECIPES["fast"]
    fit.compile_model(model, None, optimizer=fit.recipe_optimizer(recipe, 40), label_smoothing=0.1)
    x, y = np.random.default_rng(0).random((16, 8, 8, 1), "float32"), np.arange(16) % 3
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = load_keras_model(path)
    assert isinstance(loaded.optimizer.learning_rate, OneCycle) or "OneCycle" in str(
        type(loaded.optimizer._learning_rate)
    )
    assert isinstance(loaded.loss, SmoothedSparseCategoricalCrossentropy) and loaded.loss.label_smoothing == 0.1
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 {flags}\n")
    return str(path)


def test_precision_auto_picks_bfloat16_only_with_bfloat16_units(tmp_path):
    with_amx = machine.resolve_precision("auto", _cpuinfo(tmp_path, "avx512f amx_bf16"))
    assert with_amx["policy"] == "mixed_bfloat16" and "amx_bf16" in with_amx["reason"]
    with_avx512 = machine.resolve_precision("auto", _cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert with_avx512["policy"] == "mixed_bfloat16" and "avx512_bf16" in with_avx512["reason"]
    without = machine.resolve_precision("auto", _cpuinfo(tmp_path, "avx2 avx512f"))
    assert without["policy"] == "float32" and "no amx_bf16 or avx512_bf16" in without["reason"]
    assert machine.resolve_precision("float32", _cpuinfo(tmp_path, "amx_bf16"))["policy"] == "float32"
    assert machine.resolve_precision("mixed_bfloat16")["policy"] == "mixed_bfloat16"
    assert machine.speed_flags(_cpuinfo(tmp_path, "avx2 amx_bf16")) == {
        "avx2": True,
        "fma": False,
        "avx512f": False,
        "avx512_bf16": False,
        "amx_bf16": True,
    }
    assert machine.cpu_model(_cpuinfo(tmp_path, "")) == "Test CPU"
    with pytest.raises(ValueError, match="--precision 'half'"):
        machine.resolve_precision("half")


def test_flip_tta_averages_the_probabilities_of_the_image_and_its_mirror():
    model = build_model("cnn", None, (8, 8, 1), 3)
    images = np.random.default_rng(4).random((5, 8, 8, 1), "float32")
    plain = tf.nn.softmax(model(images)).numpy()
    mirrored = tf.nn.softmax(model(images[:, :, ::-1])).numpy()
    np.testing.assert_allclose(evaluate.probabilities(model, images, "flip"), (plain + mirrored) / 2, atol=1e-6)
    np.testing.assert_allclose(evaluate.probabilities(model, images), plain, atol=1e-6)
    labels = np.arange(5) % 3
    outputs = evaluate.predict(model, tf.data.Dataset.from_tensor_slices((images, labels)).batch(2), tta="flip")
    np.testing.assert_allclose(evaluate.softmax(outputs["logits"]), (plain + mirrored) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="test-time augmentation"):
        evaluate.probabilities(model, images, "rotate")


def test_float32_copy_of_a_bfloat16_model_has_its_weights_and_predictions():
    with fit.dtype_policy("mixed_bfloat16"):
        model = build_model("cnn", None, (8, 8, 1), 3)
    copy = float32_copy(model)
    assert copy is not model and all(layer.compute_dtype == "float32" for layer in copy.layers)
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    images = np.random.default_rng(5).random((4, 8, 8, 1), "float32")
    np.testing.assert_allclose(copy(images), model(images), atol=0.05)  # bfloat16 rounding only
    float_model = build_model("cnn", None, (8, 8, 1), 3)
    assert float32_copy(float_model) is float_model


def test_bfloat16_run_records_its_precision_explains_in_float32_and_exports_float32(tmp_path, idx_folder):
    from tfcourse.config import DataConfig, TrainConfig
    from tfcourse.jobs import image_run

    config = TrainConfig(
        model="cnn",
        epochs=2,
        recipe="fast",
        tta="flip",
        precision="mixed_bfloat16",
        output_dir=str(tmp_path / "run"),
        export=True,
        export_dir=str(tmp_path / "saved"),
        data=DataConfig(dataset=str(idx_folder), batch_size=64, augment=True),
    )
    result = image_run.train_and_evaluate(config, verbose=0)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["precision"] == {"requested": "mixed_bfloat16", "policy": "mixed_bfloat16", "reason": "asked for"}
    assert record["recipe"]["name"] == "fast" and record["recipe"]["optimizer"] == "sgd_nesterov"
    assert record["config"]["tta"] == "flip"
    report = (tmp_path / "run" / "report.md").read_text()
    assert "| precision | mixed_bfloat16" in report
    assert "figures/gradcam.png" in report  # the gallery ran (on the float32 copy: bfloat16 maps fail in SciPy)
    assert os.path.isfile(tmp_path / "run" / "figures" / "gradcam.png")
    exported = json.loads(open(os.path.join(result.export_dir, "assets.extra", "tfcourse.json")).read())
    assert exported["tta"] == "flip"
    serve = tf.saved_model.load(result.export_dir).signatures["serving_default"]
    assert serve.structured_input_signature[1]["images"].dtype == tf.float32
    assert serve(images=tf.zeros((1, 28, 28, 1)))["probabilities"].dtype == tf.float32
    # the signature averages each image with its mirror image, as the run's evaluation did
    images = np.random.default_rng(6).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    served = serve(images=tf.constant(images))["probabilities"].numpy()
    inputs = images / 255.0
    with_tta = evaluate.probabilities(result.model, inputs, "flip").numpy()
    without = evaluate.probabilities(result.model, inputs).numpy()
    assert np.abs(served - with_tta).mean() < np.abs(served - without).mean()


FREEZE_PROBE = """
import contextlib, gc, io, json, sys, weakref
from tfcourse import train, tune
before = gc.get_freeze_count()
with contextlib.redirect_stdout(io.StringIO()):
    train.main(["--dataset", "digits", "--model", "mlp", "--list-hp"])
after_train = gc.get_freeze_count()
with contextlib.redirect_stdout(io.StringIO()):
    tune.main(["--dataset", "digits", "--model", "mlp", "--show-space"])
after_tune = gc.get_freeze_count()
class Node: pass
node = Node(); node.self = node; alive = weakref.ref(node); del node  # cyclic garbage made afterwards
gc.collect()
print(json.dumps({"before": before, "train": after_train, "tune": after_tune, "cycle_collected": alive() is None,
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def test_the_command_lines_freeze_the_imported_libraries_once_and_still_collect_later_garbage():
    """Keras' clear_session and KerasTuner collect garbage before every model and trial; once TensorFlow,
    Keras and KerasTuner are imported the command lines freeze those objects (gc.freeze), once per process,
    so that a collection does not walk them again. Garbage made afterwards is still collected."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", FREEZE_PROBE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["tensorflow"] and probe["before"] == 0
    assert probe["train"] > 100_000  # TensorFlow's and Keras' objects (~420,000 here)
    assert probe["tune"] == probe["train"]  # once per process: a later call freezes nothing new
    assert probe["cycle_collected"]
