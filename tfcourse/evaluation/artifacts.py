"""Reading back what a run produced: a run folder or a SavedModel export, its configuration,
class names, preprocessing, test split and predictions, for the report and the explanations.

A run folder holds ``config.json`` (with the data settings and seed, so the test split is
recomputed exactly) and ``model.keras``. An export holds ``saved_model.pb`` and
``assets.extra/tfcourse.json`` (class names, preprocessing and the run folder it came from);
its predictions come from the serving signature itself, and methods that need gradients or
inner layers use the ``.keras`` model of that run folder (or one named explicitly).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional

import numpy as np

from tfcourse import data, rundir
from tfcourse.config import DataConfig
from tfcourse.evaluation import evaluate
from tfcourse.models import load_keras_model


def _read_json(path: str, default=None, what: str = "file"):
    """The file's JSON, ``default`` when it does not exist, a ``ValueError`` naming it when it is unreadable."""
    return rundir.read_json(
        path,
        what,
        "Rerun the command that wrote it (python -m tfcourse.train writes run folders), or restore the file.",
        missing=default,
    )


def _run_record(path: str) -> Dict[str, Any]:
    """A run folder's ``config.json``, checked for what reading a run back needs."""
    config_path = os.path.join(path, rundir.CONFIG_FILE)
    record = _read_json(config_path, what="run configuration")
    data_record = record.get("data") if isinstance(record, dict) else None
    missing = [
        key for key in ("class_names", "normalization") if not isinstance(data_record, dict) or key not in data_record
    ]
    if missing:
        raise ValueError(
            f"{config_path}: the run configuration lacks data.{' and data.'.join(missing)}; it was not "
            "written by python -m tfcourse.train (or was edited). Restore it, or train the run again."
        )
    return record


@dataclasses.dataclass
class TestData:
    images: np.ndarray  # raw pixels (N, H, W, C) uint8
    labels: np.ndarray
    indices: np.ndarray  # positions in Dataset.pooled()
    dataset: Any = None  # the tfcourse.data.Dataset, when loaded here
    splits: Any = None


@dataclasses.dataclass
class Run:
    """A trained model on disk, as the report and the explanations see it."""

    run_dir: Optional[str]
    export_dir: Optional[str]
    record: Dict[str, Any]
    class_names: tuple
    normalization: Any  # tfcourse.data.Normalization
    keras_path: Optional[str]
    label: Optional[str] = None  # the name shown in reports (default: the folder's name)
    _model: Any = None
    _test: Optional[TestData] = None
    _predictions: Optional[Dict[str, np.ndarray]] = None
    _metrics: Optional[Dict[str, Any]] = None
    _history: Optional[Dict[str, list]] = None

    @classmethod
    def from_training(
        cls,
        run_dir: str,
        name: str,
        record: Dict[str, Any],
        model,
        dataset,
        splits,
        metrics: Dict[str, Any],
        history: Dict[str, list],
        predictions: Dict[str, np.ndarray],
    ) -> "Run":
        """The run ``tfcourse.train`` has just trained, from what it holds in memory (model, data, splits,
        numbers), so its report reads nothing back from disk."""
        x, y = dataset.pooled()
        return cls(
            run_dir,
            None,
            record,
            tuple(record["data"]["class_names"]),
            data.Normalization.from_dict(record["data"]["normalization"]),
            None,
            label=name,
            _model=model,
            _test=TestData(x[splits.test], y[splits.test], splits.test, dataset, splits),
            _predictions={
                "labels": predictions["labels"],
                "logits": predictions["logits"],
                "test_indices": np.asarray(splits.test),
            },
            _metrics=metrics,
            _history=history,
        )

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        path = self.run_dir or self.export_dir
        return os.path.basename(os.path.normpath(path)) if path else "run"

    @property
    def metrics(self) -> Dict[str, Any]:
        """``metrics.json`` (read once; ``{}`` for an export without its run folder)."""
        if self._metrics is None:
            self._metrics = _read_json(os.path.join(self.run_dir, rundir.METRICS_FILE), {}) if self.run_dir else {}
        return self._metrics

    @property
    def history(self) -> Dict[str, list]:
        """``history.json`` (read once)."""
        if self._history is None:
            self._history = _read_json(os.path.join(self.run_dir, rundir.HISTORY_FILE), {}) if self.run_dir else {}
        return self._history

    def keras_model(self, required_for: str = ""):
        """The Keras model (loaded once). Raises ``ValueError`` when there is none to load."""
        if self._model is None:
            if self.keras_path is None:
                raise ValueError(
                    f"{self.export_dir} is an export without a reachable .keras model ({required_for}); "
                    "pass --keras-model FILE.keras (the run folder's model.keras)."
                )
            self._model = load_keras_model(self.keras_path)
        return self._model

    def test_data(self) -> TestData:
        """The run's test split, recomputed from its data settings and seed (no download)."""
        if self._test is None:
            settings = (self.record.get("config") or {}).get("data")
            if not settings:
                raise ValueError(
                    f"{self.run_dir or self.export_dir} records no data settings (config.json), so its "
                    "test split cannot be rebuilt; pass a run folder written by tfcourse.train."
                )
            dataset, splits = data.load_splits(
                DataConfig(**settings), int(self.record["config"]["seed"]), download=False
            )
            x, y = dataset.pooled()
            self._test = TestData(x[splits.test], y[splits.test], splits.test, dataset, splits)
        return self._test

    def split_sample(self, split: str, count: int, seed: int = 0):
        """A seeded sample of ``count`` raw images of the run's ``split`` (``train``, ``val`` or ``test``; all of
        it when smaller), in dataset order: ``(images, labels, dataset indices)``, empty for an empty split."""
        test = self.test_data()
        x, y = test.dataset.pooled()
        members = np.asarray(getattr(test.splits, split))
        chosen = np.sort(np.random.default_rng(seed).choice(members, size=min(count, len(members)), replace=False))
        return x[chosen], y[chosen], chosen

    @property
    def tta(self) -> str:
        """The test-time augmentation the run was evaluated (and exported) with (``none`` for older runs)."""
        return ((self.record or {}).get("config") or {}).get("tta", "none")

    def model_inputs(self, raw_images):
        """Raw pixels -> what the Keras model takes (the run's normalisation), as a NumPy array."""
        return self.normalization.apply(np.asarray(raw_images)).numpy()

    def predictions(self, batch_size: int = 256) -> Dict[str, np.ndarray]:
        """Labels, logits and dataset indices on the test split: ``predictions.npz`` when the run folder
        has it, else the Keras model, else (an export alone) the SavedModel's serving signature
        (log-probabilities stand in for logits: same ranking, same cross-entropy). Computed once per ``Run``:
        a report asks for them several times."""
        if self._predictions is None:
            self._predictions = self._compute_predictions(batch_size)
        return self._predictions

    def _compute_predictions(self, batch_size: int) -> Dict[str, np.ndarray]:
        saved = os.path.join(self.run_dir, rundir.PREDICTIONS_FILE) if self.run_dir else None
        if saved and os.path.isfile(saved) and self.export_dir is None:
            return evaluate.load_predictions(saved)
        test = self.test_data()
        chunks = []
        if self.export_dir is not None:
            import tensorflow as tf

            serve = tf.saved_model.load(self.export_dir).signatures["serving_default"]
            for start in range(0, len(test.images), batch_size):
                batch = tf.constant(test.images[start : start + batch_size], tf.float32)
                chunks.append(np.log(np.maximum(serve(images=batch)["probabilities"].numpy(), 1e-12)))
        else:
            model = self.keras_model("predictions")
            for start in range(0, len(test.images), batch_size):
                inputs = self.model_inputs(test.images[start : start + batch_size])
                chunks.append(np.asarray(evaluate.recorded_logits(model, inputs, self.tta)))
        return {"labels": test.labels, "logits": np.concatenate(chunks), "test_indices": test.indices}


def load(path: str, keras_model: Optional[str] = None) -> Run:
    """Opens a run folder or a SavedModel export.

    Raises:
        ValueError: If ``path`` is neither.
    """
    if not os.path.isdir(path):
        raise ValueError(
            f"{path} is not a folder; pass a run folder (from python -m tfcourse.train) or a SavedModel "
            "export version folder (saved_models/<model>/<version>)."
        )
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        info = _read_json(os.path.join(path, rundir.METADATA_FILE))
        if info is None:
            raise ValueError(
                f"{path} is a SavedModel without {rundir.METADATA_FILE}; only tfcourse exports can be "
                "reported on or explained."
            )
        run_dir = info.get("run_dir")
        run_dir = run_dir if run_dir and os.path.isfile(os.path.join(run_dir, rundir.CONFIG_FILE)) else None
        record = _run_record(run_dir) if run_dir else {}
        keras_path = keras_model or (os.path.join(run_dir, rundir.MODEL_FILE) if run_dir else None)
        return Run(
            run_dir,
            path,
            record,
            tuple(info["class_names"]),
            data.Normalization.from_dict(info["normalization"]),
            keras_path if keras_path and os.path.isfile(keras_path) else None,
        )
    if not os.path.isfile(os.path.join(path, rundir.CONFIG_FILE)) or not os.path.isfile(
        os.path.join(path, rundir.MODEL_FILE)
    ):
        raise ValueError(
            f"{path} is neither a run folder (config.json + {rundir.MODEL_FILE}) nor a SavedModel export "
            "(saved_model.pb); pass the folder python -m tfcourse.train wrote, or an export version folder."
        )
    record = _run_record(path)
    return Run(
        path,
        None,
        record,
        tuple(record["data"]["class_names"]),
        data.Normalization.from_dict(record["data"]["normalization"]),
        keras_model or os.path.join(path, rundir.MODEL_FILE),
    )
