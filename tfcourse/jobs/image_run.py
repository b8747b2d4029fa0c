"""One training run from a ``TrainConfig`` to a complete run folder (and optionally an export).

``train_and_evaluate`` is what ``python -m tfcourse.train`` calls. Everything that can be
checked before training (data, model name, hyperparameters, output folder) is checked first;
the run folder is written under a hidden staging name and renamed only when complete, so a
failed or interrupted run leaves nothing half-written behind.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import shutil
import time
from typing import Any, Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

import tfcourse
from tfcourse import config as config_lib
from tfcourse import data, machine, rundir
from tfcourse.config import TrainConfig
from tfcourse.evaluation import artifacts, evaluate
from tfcourse.models import cost, get_spec, load_keras_model
from tfcourse.pages import cost_page, run_page
from tfcourse.rundir import MODEL_FILE, write_json, write_text
from tfcourse.serving import runtimes, savedmodel
from tfcourse.training import fit, transfer
from tfcourse.tuning import hparams


@dataclasses.dataclass
class RunResult:
    run_dir: str
    metrics: Dict[str, Any]
    history: Dict[str, list]
    export_dir: Optional[str]
    model: Any


@dataclasses.dataclass
class Trained:
    """What training produced: the history (all phases), training-step seconds per epoch, the wall
    time, and for a transfer run what each phase trained (``metrics.json``'s ``transfer``)."""

    history: Dict[str, list]
    epoch_seconds: List[float]
    seconds: float
    transfer: Optional[Dict[str, Any]] = None


def default_run_dir(config: TrainConfig) -> str:
    return os.path.join(
        "runs", f"{config.model}-{rundir.safe_name(config.data.dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"
    )


def validate_config(config: TrainConfig) -> None:
    """Raises ``ValueError`` for settings that cannot work, before any data is loaded."""
    if config.base is None:
        get_spec(config.model)
    transfer.check_arguments(
        config.base,
        config.freeze_base,
        config.fine_tune_at,
        config.base_weights,
        model_given=config.base is not None and config.model != config_lib.TRANSFER_MODEL,
    )
    checks = [
        (config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}"),
        (config.fine_tune_epochs >= 1, f"fine-tune epochs must be at least 1, got {config.fine_tune_epochs}"),
        (
            math.isfinite(config.fine_tune_lr_scale) and config.fine_tune_lr_scale > 0,
            f"fine-tune learning-rate scale must be a positive finite number, got {config.fine_tune_lr_scale}",
        ),
        (config.patience >= 0, f"patience must be 0 or more, got {config.patience}"),
        (config.data.batch_size >= 1, f"batch size must be at least 1, got {config.data.batch_size}"),
        (config.steps_per_execution >= 1, f"steps per execution must be at least 1, got {config.steps_per_execution}"),
        (
            config.export or tuple(config.export_formats) == ("savedmodel",),
            "--export-format writes files of an export; add --export",
        ),
        (
            config.data.split in config_lib.SPLIT_PROTOCOLS,
            f"split must be one of {config_lib.SPLIT_PROTOCOLS}, got {config.data.split!r}",
        ),
        (
            config.train_on in config_lib.TRAIN_ON,
            f"train_on must be one of {config_lib.TRAIN_ON}, got {config.train_on!r}",
        ),
        (
            config.lr_schedule in config_lib.LR_SCHEDULES,
            f"lr_schedule must be one of {config_lib.LR_SCHEDULES}, got {config.lr_schedule!r}",
        ),
        (
            config.data.normalization in config_lib.NORMALIZATIONS,
            f"normalization must be one of {config_lib.NORMALIZATIONS}, got {config.data.normalization!r}",
        ),
    ]
    checks += _recipe_checks(config)
    pretrained_rgb = config.hp.get("weights", "none") != "none" or (
        config.base is not None and transfer.is_application(config.base) and config.base_weights != "none"
    )
    if pretrained_rgb and config.data.normalization != "unit":
        checks.append(
            (
                False,
                "ImageNet-style weights come with ImageNet preprocessing, which expects pixels scaled "
                "to [0, 1]; use --normalization unit",
            )
        )
    for ok, message in checks:
        if not ok:
            raise ValueError(message + ".")
    runtimes.require(config_lib.parse_export_formats(",".join(config.export_formats)))  # before training


def _recipe_checks(config: TrainConfig):
    """What the recipe, test-time augmentation and precision settings must satisfy (``(ok, message)`` pairs)."""
    recipe = fit.get_recipe(config.recipe)
    machine.resolve_precision(config.precision)  # raises for an unknown value
    own_optimizer = recipe.optimizer != "hp"
    given = sorted(set(config.hp) & {"optimizer", "learning_rate"})
    mirror = data.mirror_safe(config.data.dataset)
    return [
        (
            config.tta in config_lib.TTA_MODES,
            f"tta must be one of {config_lib.TTA_MODES}, got {config.tta!r}",
        ),
        (
            not (config.tta == "flip" and mirror is False),
            f"--tta flip averages each test image with its mirror image, but a mirrored {config.data.dataset} "
            "image is not of the same class (e.g. a digit); use --tta none",
        ),
        (
            not (own_optimizer and given),
            f"--recipe {recipe.name} brings its own optimizer (SGD-Nesterov, one-cycle learning rate), so "
            f"--hp {', '.join(given)} would be ignored; use --peak-lr to set its peak, or --recipe standard",
        ),
        (
            config.peak_learning_rate is None or (own_optimizer and config.peak_learning_rate > 0),
            f"--peak-lr sets the peak of a one-cycle recipe (--recipe fast or quick) and must be positive; recipe "
            f"{recipe.name!r} takes the learning rate from --hp learning_rate",
        ),
        (
            not (own_optimizer and config.fine_tune_at is not None),
            f"--recipe {recipe.name} does not fine-tune in a second phase yet; drop --fine-tune-at or use "
            "--recipe standard",
        ),
        (
            not (own_optimizer and config.lr_schedule != config_lib.TrainConfig.lr_schedule),
            f"--recipe {recipe.name} has its own learning-rate curve (one-cycle); drop --lr-schedule",
        ),
        (
            not (own_optimizer and config.patience != config_lib.TrainConfig.patience),
            f"--recipe {recipe.name} runs every epoch (its learning rate ends at 0, so there is no early "
            "stopping); drop --patience and set --epochs instead",
        ),
    ]


def model_builder(config: TrainConfig, for_space: bool = False):
    """``build(hp, input_shape, num_classes)`` of the run's model: a registered one or base + head.

    Args:
        for_space: Only to list hyperparameters: an applications base is built without its
            (possibly downloaded) weights.
    """
    if config.base is None:
        return get_spec(config.model).build
    weights = "none" if for_space and transfer.is_application(config.base) else config.base_weights
    return functools.partial(transfer.build, base=config.base, base_weights=weights, freeze_base=config.freeze_base)


def space_rows(config: TrainConfig, download: bool = True):
    """``--list-hp``: every hyperparameter of the run's model (``hparams.describe_space`` rows), declared
    for the dataset named: its image shape (a trained transfer base's own input shape) and classes.

    Returns:
        ``(input_shape, num_classes, rows)``.
    """
    validate_config(config)
    dataset, _ = data.load_splits(config.data, config.seed, download)
    shape = dataset.input_shape
    if config.base and not transfer.is_application(config.base):  # a trained base fixes the image shape
        shape = tuple(load_keras_model(transfer.resolve_base_path(config.base), compile=False).input_shape[1:])
    space = hparams.hyperparameter_space(model_builder(config, for_space=True), shape, dataset.num_classes)
    return shape, dataset.num_classes, hparams.describe_space(space)


def train_and_evaluate(
    config: TrainConfig,
    download: bool = True,
    verbose: Any = "auto",
    verify_export: bool = True,
    record_extra: Optional[Dict[str, Any]] = None,
) -> RunResult:
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
    validate_config(config)
    run_dir = _claim_run_dir(config)
    staging = rundir.claim_partial(run_dir)  # removed on any failure below: a refused run leaves nothing
    try:
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        dataset, splits, pipelines = _load_data(config, download)
        model, hp = _build_model(config, pipelines)
        trained = _train(model, hp, pipelines, config, staging, verbose)
        outputs, metrics, model_cost = _evaluate(model, pipelines, splits, trained, config)
        record = _run_record(config, hp, dataset, splits, pipelines, record_extra)
        _write_run_folder(
            staging, config, record, trained.history, metrics, model_cost, outputs, model, splits, dataset.source
        )
        if config.report:
            _write_report(
                artifacts.Run.from_training(
                    staging,
                    os.path.basename(run_dir),
                    record,
                    model,
                    dataset,
                    splits,
                    metrics,
                    trained.history,
                    outputs,
                )
            )
        published = rundir.publish_new_folder(staging, run_dir)
    except BaseException:
        rundir.abandon_partial(staging)
        raise
    if published != run_dir:
        print(f"tfcourse: {run_dir} was made by another process meanwhile; this run is in {published}", flush=True)
        run_dir = published
    print(
        f"tfcourse: test accuracy {metrics['test_accuracy']:.4f} (loss {metrics['test_loss']:.4f}) "
        f"after {metrics['epochs_trained']} epochs in {trained.seconds:.1f}s; run folder {run_dir}",
        flush=True,
    )
    if os.path.isfile(os.path.join(run_dir, run_page.REPORT_HTML)):
        print(f"tfcourse: report {os.path.join(run_dir, run_page.REPORT_HTML)}", flush=True)

    export_dir = None
    if config.export:
        x, _ = dataset.pooled()
        export_dir = export_run(
            model,
            run_dir,
            config.export_dir,
            config.model,
            pipelines.class_names,
            pipelines.normalization,
            x[splits.test[:32]],
            metrics["test_accuracy"],
            verify=verify_export,
            tta=config.tta,
            formats=config.export_formats,
            calibration=calibration_images(x, splits, config.seed) if len(config.export_formats) > 1 else None,
        )
    return RunResult(run_dir, metrics, trained.history, export_dir, model)


# ----------------------------------------------------------------------------- the steps, in order


def _claim_run_dir(config: TrainConfig) -> str:
    """The run folder's path, checked: new, its parent writable (and the export root, when exporting);
    unfinished run folders of killed processes in that parent are swept."""
    run_dir = config.output_dir or default_run_dir(config)
    if os.path.exists(run_dir):
        raise ValueError(f"Run folder {run_dir} exists already; pass another --output-dir or remove it.")
    parent = os.path.dirname(os.path.abspath(run_dir))
    rundir.check_writable_folder(parent, "--output-dir")
    if config.export:
        rundir.check_writable_folder(config.export_dir, "--export-dir")
    for leftover in rundir.sweep_stale_partials(parent):
        print(f"tfcourse: removed {leftover}, the unfinished run folder of a process that is gone", flush=True)
    return run_dir


def _load_data(config: TrainConfig, download: bool):
    print(f"tfcourse: loading {config.data.dataset} ...", flush=True)
    dataset, splits, pipelines = data.load_pipelines(
        config.data, config.seed, download=download, train_on=config.train_on
    )
    print(
        f"tfcourse: {dataset.source}: {pipelines.num_classes} classes, images {pipelines.input_shape}, "
        f"split {splits.protocol} {splits.sizes()}, fitting on {config.train_on}",
        flush=True,
    )
    return dataset, splits, pipelines


def _build_model(config: TrainConfig, pipelines):
    """The compiled model and its hyperparameters (defaults plus ``--hp``)."""
    hp = hparams.make_hyperparameters(
        model_builder(config, for_space=True),
        config.hp,
        pipelines.input_shape,
        pipelines.num_classes,
        label=config.model,
        defaults=fit.get_recipe(config.recipe).model_defaults,
    )
    with fit.dtype_policy(machine.resolve_precision(config.precision)["policy"]):
        model = model_builder(config)(hp, pipelines.input_shape, pipelines.num_classes)
    if config.fine_tune_at is not None:
        transfer.fine_tune_start(model, config.fine_tune_at)  # a wrong layer fails now, not after training the head
    recipe = fit.get_recipe(config.recipe)
    optimizer = None
    if recipe.optimizer != "hp":
        steps = math.ceil(pipelines.sizes["train"] / pipelines.batch_size) * config.epochs
        optimizer = fit.recipe_optimizer(recipe, steps, config.peak_learning_rate)
    # compiling also registers optimizer/learning_rate (with the hp optimizer), so hp.values then lists every setting
    fit.compile_model(
        model,
        hp,
        steps_per_execution=config.steps_per_execution,
        optimizer=optimizer,
        label_smoothing=recipe.label_smoothing,
    )
    return model, hp


def _train(model, hp, pipelines, config: TrainConfig, staging: str, verbose) -> Trained:
    """Training, then (transfer runs with ``--fine-tune-at``) fine-tuning from that layer up."""
    phases = []
    frozen_before = _frozen_weights(model) if config.base else None
    start = time.perf_counter()
    history, epoch_seconds = _fit(model, pipelines, config, staging, verbose)
    if config.base:
        phases.append(_phase("head" if config.freeze_base else "all", model, history, frozen_before, hp))
    if config.fine_tune_at is not None:
        unfrozen = transfer.unfreeze_from(model, config.fine_tune_at)
        print(
            f"tfcourse: fine-tuning {len(unfrozen)} base layers from {config.fine_tune_at!r} at "
            f"{config.fine_tune_lr_scale}x the learning rate for {config.fine_tune_epochs} epochs",
            flush=True,
        )
        fit.compile_model(
            model, hp, steps_per_execution=config.steps_per_execution, learning_rate_scale=config.fine_tune_lr_scale
        )
        frozen_before = _frozen_weights(model)
        done = len(history["loss"])
        more, more_seconds = _fit(
            model, pipelines, config, staging, verbose, initial_epoch=done, epochs=config.fine_tune_epochs, append=True
        )
        phases.append(
            _phase("fine_tune", model, more, frozen_before, hp, learning_rate_scale=config.fine_tune_lr_scale)
        )
        history = {key: history.get(key, [None] * done) + values for key, values in more.items()}
        epoch_seconds = epoch_seconds + more_seconds
    described = (
        {
            **transfer.describe(config.base, config.base_weights, config.freeze_base, config.fine_tune_at),
            "phases": phases,
        }
        if phases
        else None
    )
    return Trained(history, epoch_seconds, time.perf_counter() - start, described)


def _evaluate(model, pipelines, splits, trained: Trained, config: TrainConfig):
    """Test-set predictions, every number of ``metrics.json`` (evaluation, training speed, cost) and the
    model's cost report."""
    outputs = evaluate.predict(model, pipelines.test, tta=config.tta)
    fit.check_finite_outputs(outputs["logits"])
    metrics = evaluate.evaluate_predictions(outputs["labels"], outputs["logits"], pipelines.class_names, splits.test)
    if not math.isfinite(metrics["test_loss"]):
        raise fit.TrainingDiverged(
            f"The trained model's test loss is {metrics['test_loss']} (non-finite logits), "
            "so nothing was saved. Lower the learning rate and run again."
        )
    val_losses = [v for v in trained.history.get("val_loss", []) if v is not None]
    model_cost = cost.cost_report(model)
    # pipelines.sizes["train"] already holds val when fitting on train+val
    images_per_second = pipelines.sizes["train"] * len(trained.epoch_seconds) / sum(trained.epoch_seconds)
    metrics.update(
        epochs_trained=len(trained.history.get("loss", [])),
        best_epoch=int(min(range(len(val_losses)), key=val_losses.__getitem__)) + 1 if val_losses else None,
        train_seconds=round(trained.seconds, 2),
        # training steps only (validation passes excluded), over all epochs incl. the first's tracing
        train_images_per_second=round(images_per_second, 1),
        epoch_train_seconds=[round(s, 2) for s in trained.epoch_seconds],
        parameters=int(model.count_params()),
        trainable_parameters=model_cost["trainable_params"],
        macs_per_image=model_cost["macs"],
        training_flops_per_image=model_cost["training_flops"],
        # from the ~3x-forward estimate; a frozen base needs less (no weight gradients there)
        achieved_training_gflops=round(images_per_second * model_cost["training_flops"] / 1e9, 2),
    )
    if trained.transfer:
        metrics["transfer"] = trained.transfer
    return outputs, metrics, model_cost


def _run_record(config: TrainConfig, hp, dataset, splits, pipelines, extra) -> Dict[str, Any]:
    """``config.json``: the settings, the hyperparameters, the data as loaded, the library versions."""
    recipe = fit.get_recipe(config.recipe)
    return {
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
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "tfcourse": tfcourse.__version__},
        "precision": machine.resolve_precision(config.precision),
        "machine": machine.describe(),
        "recipe": {
            **dataclasses.asdict(recipe),
            "peak_learning_rate": config.peak_learning_rate or recipe.peak_learning_rate,
        },
        **(extra or {}),
    }


def _write_run_folder(
    staging: str, config: TrainConfig, record, history, metrics, model_cost, outputs, model, splits, source: str
) -> None:
    """Every file of the run folder but the report, into its staging folder."""
    write_json(os.path.join(staging, rundir.CONFIG_FILE), record)
    write_json(os.path.join(staging, rundir.HISTORY_FILE), history)
    write_json(os.path.join(staging, rundir.COST_JSON), model_cost)
    write_text(os.path.join(staging, rundir.COST_MD), cost_page.format_report(model_cost))
    evaluate.write_evaluation(
        staging, metrics, outputs["labels"], outputs["logits"], splits.test, f"{config.model} on {source}"
    )
    model.save(os.path.join(staging, MODEL_FILE))


# ----------------------------------------------------------------------------- helpers


def _fit(
    model,
    pipelines,
    config: TrainConfig,
    run_dir: str,
    verbose,
    initial_epoch: int = 0,
    epochs: Optional[int] = None,
    append: bool = False,
):
    """One ``model.fit`` with the standard callbacks; returns (history dict, training-step seconds per epoch)."""
    with_val = config.train_on == "train"
    epochs = epochs or config.epochs
    timer = fit.training_timer()
    history = model.fit(
        pipelines.train,
        validation_data=pipelines.val if with_val else None,
        initial_epoch=initial_epoch,
        epochs=initial_epoch + epochs,
        callbacks=[timer]
        + fit.standard_callbacks(
            run_dir,
            config.patience,
            fixed_epochs=None if with_val else epochs,
            append=append,
            first_epoch=initial_epoch,
            schedule_epochs=epochs if config.lr_schedule == "cosine" else None,
            per_step_schedule=fit.get_recipe(config.recipe).schedule != "hp",
        ),
        shuffle=False,  # the training pipeline shuffles, with the run's seed
        verbose=verbose,
    )
    history_dict = {key: [float(v) for v in values] for key, values in history.history.items()}
    fit.check_finite(history_dict, "Fine-tuning" if append else "Training", model)
    return history_dict, timer.epoch_seconds


def _frozen_weights(model):
    """Copies of the weights training must not change: the non-trainable ones (the frozen base's
    kernels, and its batch norm statistics, which stay put because the base runs in inference mode)."""
    return {id(w): np.array(w) for w in model.non_trainable_weights}


def _phase(name: str, model, history: Dict[str, list], frozen_before, hp, learning_rate_scale: float = 1.0):
    """What one training phase of a transfer run trained, and proof that the frozen weights did not move."""
    after = {id(w): np.array(w) for w in model.weights if id(w) in frozen_before}
    changed = [key for key, value in frozen_before.items() if not np.array_equal(value, after[key])]
    return {
        "phase": name,
        "epochs": len(history.get("loss", [])),
        "learning_rate": float(hp.get("learning_rate")) * learning_rate_scale,
        **transfer.trainable_layers(model),
        "frozen_weights_unchanged": not changed,
    }


def _write_report(run: artifacts.Run) -> None:
    """The run report, from the in-memory model and data. A failure here must not throw away the
    trained model: it is reported, the report's partial files are removed, and the run goes on."""
    try:
        run_page.write_report(run.run_dir, run=run, progress=True)
    except Exception as error:  # noqa: BLE001  (the run itself is complete and worth keeping)
        for leftover in (run_page.REPORT_HTML, run_page.REPORT_MD, run_page.FIGURES_DIR):
            path = os.path.join(run.run_dir, leftover)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
        print(
            f"tfcourse: warning: the report failed ({type(error).__name__}: {error}); the run is kept. Retry with "
            f"python -m tfcourse.report {run.name}",
            flush=True,
        )


def calibration_images(x, splits, seed: int):
    """A seeded sample of raw training images for an int8 export's calibration (never the test split)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(splits.train, size=min(runtimes.CALIBRATION_IMAGES, len(splits.train)), replace=False)
    return x[np.sort(chosen)]


def export_run(
    model,
    run_dir: str,
    export_root: str,
    model_name: str,
    class_names,
    normalization,
    images,
    test_accuracy: Optional[float],
    verify: bool = True,
    tta: str = "none",
    formats=("savedmodel",),
    calibration=None,
) -> str:
    """Exports a finished run's model (checked in a fresh process before it gets a version number)
    and records where in ``export.json``; ``formats`` and ``calibration`` as ``savedmodel.export_saved_model``.

    Raises:
        ValueError: If the export or its check fails; the run folder stays complete, and the
            message says how to export it again.
    """
    export_dir, difference = rundir.export_of_run(
        run_dir,
        export_root,
        lambda: savedmodel.export_checked(
            model,
            export_root,
            model_name,
            class_names,
            normalization,
            images,
            metadata={"run_dir": os.path.abspath(run_dir), "test_accuracy": test_accuracy},
            verify=verify,
            tta=tta,
            formats=formats,
            calibration=calibration,
        ),
    )
    print(f"tfcourse: exported SavedModel to {export_dir}", flush=True)
    others = rundir.read_metadata(export_dir).get("formats")
    if others:
        print(
            f"tfcourse: ONNX/LiteRT files beside it, each checked in a fresh process against the model on "
            f"{len(images)} test images:\n{runtimes.describe(others)}",
            flush=True,
        )
    if difference is not None:
        print(
            f"tfcourse: export verified in a fresh process before it got its version number (max |dp| = "
            f"{difference:.1e} on {len(images)} test images)",
            flush=True,
        )
    return export_dir
