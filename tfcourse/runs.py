"""One training run from a ``TrainConfig`` to a complete run folder (and optionally an export).

``train_and_evaluate`` is what ``python -m tfcourse.train`` calls. Everything that can be
checked before training (data, model name, hyperparameters, output folder) is checked first;
the run folder is written under a hidden staging name and renamed only when complete, so a
failed or interrupted run leaves nothing half-written behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from typing import Any, Dict, Optional

from tfcourse import config as config_lib
from tfcourse.config import TrainConfig

MODEL_FILE = "model.keras"


@dataclasses.dataclass
class RunResult:
    run_dir: str
    metrics: Dict[str, Any]
    history: Dict[str, list]
    export_dir: Optional[str]
    model: Any


def write_json(path: str, payload: Any) -> None:
    """Writes JSON atomically (temporary file, then rename)."""
    staging = f"{path}.tmp-{os.getpid()}"
    with open(staging, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, default=_json_default)
        handle.write("\n")
    os.replace(staging, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"Not JSON serialisable: {type(value).__name__}")


def default_run_dir(config: TrainConfig) -> str:
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(os.path.normpath(config.data.dataset)))
    return os.path.join("runs", f"{config.model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}")


def validate_config(config: TrainConfig) -> None:
    """Raises ``ValueError`` for settings that cannot work, before any data is loaded."""
    from tfcourse.models import get_spec

    get_spec(config.model)
    checks = [
        (config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}"),
        (config.patience >= 0, f"patience must be 0 or more, got {config.patience}"),
        (config.data.batch_size >= 1, f"batch size must be at least 1, got {config.data.batch_size}"),
        (config.steps_per_execution >= 1, f"steps per execution must be at least 1, got {config.steps_per_execution}"),
        (config.data.split in config_lib.SPLIT_PROTOCOLS, f"split must be one of {config_lib.SPLIT_PROTOCOLS}, got {config.data.split!r}"),
        (config.train_on in config_lib.TRAIN_ON, f"train_on must be one of {config_lib.TRAIN_ON}, got {config.train_on!r}"),
        (config.data.normalization in config_lib.NORMALIZATIONS,
         f"normalization must be one of {config_lib.NORMALIZATIONS}, got {config.data.normalization!r}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message + ".")


def train_and_evaluate(config: TrainConfig, download: bool = True, verbose: Any = "auto",
                       verify_export: bool = True, record_extra: Optional[Dict[str, Any]] = None) -> RunResult:
    """Loads data, builds, trains, evaluates and saves one model; exports it if asked.

    Args:
        config: The run's configuration.
        download: Allow ``tfds.load`` to download a catalogued dataset missing locally.
        verbose: Keras ``fit`` verbosity (``"auto"``, 0, 1 or 2).
        verify_export: After exporting, load the export in a fresh Python process and
            check it predicts what the Keras model predicts on a few test images.
        record_extra: More entries for ``config.json`` (e.g. the search a run came from).

    Returns:
        A ``RunResult`` with the run folder, metrics, history, export folder and model.

    Raises:
        ValueError: For invalid settings or data, or an existing run folder.
    """
    import keras
    import tensorflow as tf

    from tfcourse import data, export, fit
    from tfcourse.models import build_model

    validate_config(config)
    run_dir = config.output_dir or default_run_dir(config)
    if os.path.exists(run_dir):
        raise ValueError(f"Run folder {run_dir} exists already; pass another --output-dir or remove it.")

    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    print(f"tfcourse: loading {config.data.dataset} ...", flush=True)
    dataset, splits, pipelines = data.load_pipelines(config.data, config.seed, download=download,
                                                     train_on=config.train_on)
    with_val = config.train_on == "train"
    print(f"tfcourse: {dataset.source}: {pipelines.num_classes} classes, images {pipelines.input_shape}, "
          f"split {splits.protocol} {splits.sizes()}, fitting on {config.train_on}", flush=True)

    hp = fit.make_hyperparameters(config.model, config.hp, pipelines.input_shape, pipelines.num_classes)
    model = build_model(config.model, hp, pipelines.input_shape, pipelines.num_classes)
    # compiling also registers optimizer/learning_rate, so hp.values then lists every setting
    fit.compile_model(model, hp, steps_per_execution=config.steps_per_execution)

    parent = os.path.dirname(os.path.abspath(run_dir))
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(run_dir)}.partial-{os.getpid()}")
    os.makedirs(staging)
    try:
        timer = fit.training_timer()
        start = time.perf_counter()
        history = model.fit(
            pipelines.train,
            validation_data=pipelines.val if with_val else None,
            epochs=config.epochs,
            callbacks=[timer] + fit.standard_callbacks(staging, config.patience,
                                                       fixed_epochs=None if with_val else config.epochs),
            shuffle=False,  # the training pipeline shuffles, with the run's seed
            verbose=verbose,
        )
        train_seconds = time.perf_counter() - start
        fit_size = pipelines.sizes["train"]  # already holds val when fitting on train+val
        history_dict = {key: [float(v) for v in values] for key, values in history.history.items()}
        metrics = fit.evaluate_model(model, pipelines.test, pipelines.class_names)
        val_losses = history_dict.get("val_loss", [])
        metrics.update(
            epochs_trained=len(history_dict.get("loss", [])),
            best_epoch=int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1 if val_losses else None,
            train_seconds=round(train_seconds, 2),
            # training steps only (validation passes excluded), over all epochs incl. the first's tracing
            train_images_per_second=round(fit_size * len(timer.epoch_seconds) / sum(timer.epoch_seconds), 1),
            epoch_train_seconds=[round(s, 2) for s in timer.epoch_seconds],
            parameters=int(model.count_params()),
        )
        record = {
            "config": config_lib.to_dict(config),
            "hyperparameters": dict(hp.values),
            "data": {
                "source": dataset.source,
                "class_names": list(pipelines.class_names),
                "input_shape": list(pipelines.input_shape),
                "split_sizes": splits.sizes(),
                "fitted_on": config.train_on,
                "normalization": dataclasses.asdict(pipelines.normalization),
            },
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
            **(record_extra or {}),
        }
        write_json(os.path.join(staging, "config.json"), record)
        write_json(os.path.join(staging, "history.json"), history_dict)
        write_json(os.path.join(staging, "metrics.json"), metrics)
        model.save(os.path.join(staging, MODEL_FILE))
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    print(f"tfcourse: test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) "
          f"after {metrics['epochs_trained']} epochs in {train_seconds:.1f}s; run folder {run_dir}", flush=True)

    export_dir = None
    if config.export:
        export_dir = export.export_saved_model(
            model, config.export_dir, config.model, pipelines.class_names, pipelines.normalization,
            metadata={"run_dir": os.path.abspath(run_dir), "test_accuracy": metrics["test_accuracy"]},
        )
        write_json(os.path.join(run_dir, "export.json"), {"export_dir": os.path.abspath(export_dir)})
        print(f"tfcourse: exported SavedModel to {export_dir}", flush=True)
        if verify_export:
            x, _ = dataset.pooled()
            images = x[splits.test[:32]]
            difference = export.verify_export(model, export_dir, images, pipelines.normalization)
            print(f"tfcourse: export verified in a fresh process (max |dp| = {difference:.1e} on {len(images)} "
                  "test images)", flush=True)

    return RunResult(run_dir, metrics, history_dict, export_dir, model)
