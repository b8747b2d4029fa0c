"""SavedModel export: TF Serving layout, versions, signatures, and serving from a fresh process."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from tfcourse import data, rundir
from tfcourse.models import build_model
from tfcourse.serving import savedmodel
from tfcourse.training import fit
from tfcourse.tuning import hparams


@pytest.fixture(scope="module")
def trained():
    """A small CNN trained for one epoch on digits, with standardisation (non-trivial preprocessing)."""
    keras.utils.set_random_seed(0)
    dataset = data.load_dataset("digits")
    x, y = dataset.pooled()
    normalization = data.Normalization.fit("standardize", x)
    hp = hparams.make_hyperparameters("cnn", {}, (8, 8, 1), 10)
    model = fit.compile_model(build_model("cnn", hp, (8, 8, 1), 10), hp)
    model.fit(np.asarray(normalization.apply(x)), y, epochs=1, batch_size=128, verbose=0)
    return model, normalization, dataset


def test_export_serves_the_same_predictions_in_a_fresh_process(tmp_path, trained):
    model, normalization, dataset = trained
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert path == str(tmp_path / "cnn" / "1")
    images = dataset.x_train[:40]
    served = savedmodel.serve_in_fresh_process(path, images)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(normalization.apply(images), training=False)))
    for signature in ("serving_default", "serving_uint8"):
        np.testing.assert_allclose(served[f"{signature}/probabilities"], expected, atol=1e-5)
        np.testing.assert_array_equal(
            served[f"{signature}/classes"], np.array(dataset.class_names)[expected.argmax(axis=1)]
        )


def test_verify_export_catches_a_mismatch(tmp_path, trained):
    model, normalization, dataset = trained
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert savedmodel.verify_export(model, path, dataset.x_train[:8], normalization) < 1e-5
    wrong_preprocessing = data.Normalization("unit", (0.0,), (1.0,))  # the model was trained standardised
    with pytest.raises(RuntimeError, match="disagrees with the trained model"):
        savedmodel.verify_export(model, path, dataset.x_train[:8], wrong_preprocessing)


def test_layout_versions_and_metadata(tmp_path, trained):
    model, normalization, dataset = trained
    first = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    second = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert [os.path.basename(first), os.path.basename(second)] == ["1", "2"]
    assert sorted(os.listdir(tmp_path / "cnn")) == ["1", "2"]  # no temporary folders left
    shutil.rmtree(first)
    assert rundir.next_version(str(tmp_path / "cnn")) == 3  # never reuses below the highest
    assert rundir.load_class_names(second) == list(dataset.class_names)
    info = json.loads((tmp_path / "cnn" / "2" / rundir.METADATA_FILE).read_text())
    assert info["input_shape"] == [8, 8, 1] and info["normalization"]["mode"] == "standardize"
    with pytest.raises(ValueError, match="exists already"):
        savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization, version=2)


def test_wrong_class_names_are_refused_before_anything_is_written(tmp_path, trained):
    model, normalization, dataset = trained
    with pytest.raises(ValueError, match="10 outputs but 3 class names"):
        savedmodel.export_saved_model(model, str(tmp_path), "cnn", ["a", "b", "c"], normalization)
    assert not os.path.exists(tmp_path / "cnn") or os.listdir(tmp_path / "cnn") == []


def test_an_export_that_fails_midway_leaves_nothing(tmp_path, trained, monkeypatch):
    """The SavedModel is half written into its staging folder when the disk fills up."""
    import errno

    from keras.src.export.saved_model import (
        BackendSavedModelExportArchive as ExportArchive,  # what ExportArchive() makes
    )

    model, normalization, dataset = trained
    real_write_out = ExportArchive.write_out

    def write_out_then_disk_full(self, filepath, *args, **kwargs):
        real_write_out(self, filepath, *args, **kwargs)
        assert os.listdir(filepath)  # the staging folder holds files when the fault strikes
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ExportArchive, "write_out", write_out_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert os.listdir(tmp_path / "cnn") == []


def test_a_failed_check_never_gets_a_version_number(tmp_path, trained):
    """The fresh-process check runs on the staging folder: a mismatch leaves no integer version a
    model server would load, and no staging folder."""
    model, normalization, dataset = trained
    wrong_preprocessing = data.Normalization("unit", (0.0,), (1.0,))  # the model was trained standardised
    seen = []

    def check(staging):
        seen.append(os.path.basename(staging))
        savedmodel.verify_export(model, staging, dataset.x_train[:8], wrong_preprocessing)

    with pytest.raises(RuntimeError, match="disagrees with the trained model"):
        savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization, check=check)
    assert seen[0].startswith(".tmp-")  # checked under its hidden name, before the rename
    assert os.listdir(tmp_path / "cnn") == []
    path, difference = savedmodel.export_checked(
        model, str(tmp_path), "cnn", dataset.class_names, normalization, dataset.x_train[:8]
    )
    assert os.path.basename(path) == "1" and difference < 1e-5


def test_verify_export_fails_on_nan(tmp_path, trained):
    """A diverged model (NaN weights) disagrees with anything; ``difference > tolerance`` is False for NaN."""
    model, normalization, dataset = trained
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    broken = keras.models.clone_model(model)
    broken.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    with pytest.raises(RuntimeError, match="nan"):
        savedmodel.verify_export(broken, path, dataset.x_train[:8], normalization)


def test_racing_exports_take_the_next_free_version(tmp_path, trained, monkeypatch):
    """Another export renames its folder to version 1 between our look and our rename: we take 2."""
    model, normalization, dataset = trained
    real_rename = os.rename
    raced = []

    def rename_after_a_rival(source, target):
        if not raced:
            raced.append(target)
            os.makedirs(os.path.join(target, "variables"))  # the rival's complete export
        return real_rename(source, target)

    monkeypatch.setattr(savedmodel.os, "rename", rename_after_a_rival)
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert raced == [str(tmp_path / "cnn" / "1")]
    assert os.path.basename(path) == "2" and sorted(os.listdir(tmp_path / "cnn")) == ["1", "2"]
    assert json.loads((tmp_path / "cnn" / "2" / rundir.METADATA_FILE).read_text())["version"] == 2


def test_a_killed_exports_staging_folder_is_swept(tmp_path, trained):
    model, normalization, dataset = trained
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / "cnn" / f".tmp-{int(dead.stdout)}-abc"
    (leftover / "variables").mkdir(parents=True)
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    assert sorted(os.listdir(tmp_path / "cnn")) == [os.path.basename(path)]


def test_saved_model_cli_lists_the_signature(tmp_path, trained):
    model, normalization, dataset = trained
    path = savedmodel.export_saved_model(model, str(tmp_path), "cnn", dataset.class_names, normalization)
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    done = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "signature_def['serving_default']" in done.stdout and "signature_def['serving_uint8']" in done.stdout
    assert "inputs['images']" in done.stdout and "outputs['probabilities']" in done.stdout
    assert "shape: (-1, 8, 8, 1)" in done.stdout and "shape: (-1, 10)" in done.stdout


@pytest.mark.parametrize("name", ["vgg", "resnet_small", "resnet50"])
def test_zoo_models_export_and_serve_in_a_fresh_process(name, tmp_path):
    """The model-zoo builders export like the others (ResNet50 with its in-model resizing and RGB mapping)."""
    keras.utils.set_random_seed(4)
    model = build_model(name, input_shape=(28, 28, 1), num_classes=3)
    normalization = data.Normalization.fit("unit", np.zeros((1, 28, 28, 1), dtype=np.uint8))
    path = savedmodel.export_saved_model(model, str(tmp_path), name, ["a", "b", "c"], normalization)
    images = np.random.default_rng(5).integers(0, 256, size=(4, 28, 28, 1), dtype=np.uint8)
    assert savedmodel.verify_export(model, path, images, normalization) < 1e-4
