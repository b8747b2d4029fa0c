"""Shared fixtures: tiny but real datasets written to disk in every supported format."""

import fcntl
import gzip
import json
import os
import shutil
import struct

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


def pytest_collection_finish(session):
    """Every test module is imported (TensorFlow, Keras, KerasTuner with them): take those objects out of
    the garbage collector's reach, as the command lines do, or every ``gc.collect()`` of Keras and
    KerasTuner walks them again."""
    from tfcourse import machine

    machine.freeze_imported_objects()


def write_idx(path, array, compress=True):
    """Writes ``array`` (uint8) in the IDX format, gzipped when ``compress``."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as handle:
        handle.write(payload)
    return path


def built_once(tmp_path_factory, name, build):
    """``build(folder)`` once per test run, its JSON result shared by every pytest-xdist worker.

    A session or module fixture runs once per worker that needs it; for an expensive one (a search,
    a trained run) the first worker builds it under a lock in the run's shared temporary folder and
    the others wait for it and read its result. The built folder must then only be read. Without
    xdist it is built in the session's own temporary folder.
    """
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return build(tmp_path_factory.mktemp(name))
    folder = tmp_path_factory.getbasetemp().parent / name  # this run's folder, above each worker's own
    result_file = folder.with_suffix(".json")
    with open(folder.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result_file.exists():
            return json.loads(result_file.read_text())
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another worker
        folder.mkdir()
        result = build(folder)
        result_file.write_text(json.dumps(result))
        return result


def make_images(num_per_class, num_classes=10, size=28, seed=0):
    """Learnable synthetic images: class ``k`` is a bright bar at a class-specific row."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), num_per_class)
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(len(labels), size, size), dtype=np.uint8)
    rows = np.linspace(1, size - 3, num_classes).astype(int)
    for i, label in enumerate(labels):
        images[i, rows[label] : rows[label] + 2, :] = 250
    return images, labels.astype(np.uint8)


@pytest.fixture
def idx_folder(tmp_path):
    """A folder with the four standard IDX .gz files: 200 train and 50 test images, 10 classes."""
    folder = tmp_path / "idx"
    folder.mkdir()
    x_train, y_train = make_images(20, seed=1)
    x_test, y_test = make_images(5, seed=2)
    write_idx(folder / "train-images-idx3-ubyte.gz", x_train)
    write_idx(folder / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", y_test)
    return folder


@pytest.fixture
def image_folder(tmp_path):
    """Three classes of 12x10 PNGs (RGB), 8 per class, one sub-folder per class."""
    from PIL import Image

    root = tmp_path / "images"
    rng = np.random.default_rng(3)
    for label, name in enumerate(["cat", "dog", "fish"]):
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 50, size=(12, 10, 3), dtype=np.uint8)
            pixels[..., label] = 200
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _cnn_run(root):
    from tfcourse.config import DataConfig, TrainConfig
    from tfcourse.jobs.image_run import train_and_evaluate

    result = train_and_evaluate(
        TrainConfig(
            model="cnn",
            epochs=12,
            patience=12,
            hp={"filters": 32},
            output_dir=str(root / "cnn"),
            export=True,
            export_dir=str(root / "exports"),
            data=DataConfig(dataset="digits"),
        ),
        verbose=0,
        verify_export=False,
    )
    assert result.metrics["test_accuracy"] > 0.8
    return [result.run_dir, result.export_dir]


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory):
    """A small cnn trained on scikit-learn's digits (8x8, 180 test images) through the real
    ``train_and_evaluate``, with its report and a SavedModel export: ``(run_dir, export_dir)``.
    Built once per test run and shared by the xdist workers: tests only read it (copy it to change it)."""
    return tuple(built_once(tmp_path_factory, "cnn_run", _cnn_run))


def _mlp_run(root):
    from tfcourse.config import DataConfig, TrainConfig
    from tfcourse.jobs.image_run import train_and_evaluate

    run_dir = str(root / "mlp")
    train_and_evaluate(
        TrainConfig(model="mlp", epochs=6, output_dir=run_dir, report=False, data=DataConfig(dataset="digits")),
        verbose=0,
    )
    return run_dir


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory):
    """An mlp trained on digits without a report: ``run_dir`` (shared, read only: see ``cnn_run``)."""
    return built_once(tmp_path_factory, "mlp_run", _mlp_run)


def _attention_run(root):
    from tfcourse.config import DataConfig, TrainConfig
    from tfcourse.jobs.image_run import train_and_evaluate

    result = train_and_evaluate(
        TrainConfig(
            model="attention",
            epochs=12,
            patience=12,
            hp={"patch_size": 2, "embed_dim": 32, "depth": 2, "dropout": 0.0},
            output_dir=str(root / "attention"),
            export=True,
            export_dir=str(root / "exports"),
            data=DataConfig(dataset="digits"),
        ),
        verbose=0,
        verify_export=False,
    )
    assert result.metrics["test_accuracy"] > 0.7
    return [result.run_dir, result.export_dir]


@pytest.fixture(scope="session")
def attention_run(tmp_path_factory):
    """A tiny ViT-style ``attention`` model (2x2 patches of the 8x8 digits: 16 tokens + class token,
    2 blocks of 4 heads) trained through ``train_and_evaluate`` with its report and an export:
    ``(run_dir, export_dir)`` (shared, read only: see ``cnn_run``)."""
    return tuple(built_once(tmp_path_factory, "attention_run", _attention_run))
