"""One hyperparameter search from a ``TuneConfig``: data, space, tuner, summaries, and the retrained best.

``run_search`` is what ``python -m tfcourse.tune`` calls. The search state lives in
KerasTuner's own files under ``<directory>/<project_name>/``, beside tfcourse's
``search.json`` (the settings that define the search). Running the same search again
resumes it: finished trials are kept and the trial that was running is started again.
A directory holding another search is refused rather than silently mixed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Dict, Optional, Tuple

import keras

from tfcourse import config as config_lib
from tfcourse import data, machine, rundir
from tfcourse.config import TableConfig, TableDataConfig, TrainConfig, TuneConfig
from tfcourse.jobs import image_run, table_run
from tfcourse.models import get_spec, list_models
from tfcourse.pages import search_page
from tfcourse.tuning import hparams, search_state, tuners

# Settings that define a search: resuming with any of them changed would mix two searches.
IDENTITY_KEYS = (
    "model",
    "tuner",
    "objective",
    "seed",
    "space",
    "executions_per_trial",
    "lr_schedule",
    "precision",
    "dataset",
    "split",
    "val_fraction",
    "test_fraction",
    "normalization",
    "augment",
    "image_size",
    "cv",
) + config_lib.TABLE_SETTINGS  # a table's (absent, so None, for images)
# what a search.json written before the key existed ran with (float32: before --precision, always)
IDENTITY_DEFAULTS = {"lr_schedule": "plateau", "precision": "float32"}
HYPERBAND_KEYS = ("max_epochs", "factor")  # Hyperband's budget; the others train each trial for --epochs
EPOCH_KEYS = ("epochs",)


@dataclasses.dataclass
class SearchResult:
    project_dir: str
    tuner: Any
    finished: bool
    summary_paths: Dict[str, str]


def project_name(config: TuneConfig) -> str:
    if config.project_name:
        return config.project_name
    return f"{config.model}-{rundir.safe_name(config.data.dataset)}-{config.tuner}"


def project_dir(config: TuneConfig) -> str:
    return os.path.join(config.directory, project_name(config))


def search_record(config: TuneConfig, input_shape, num_classes: int) -> Dict[str, Any]:
    """What ``search.json`` holds: the settings, the objective's direction and the data's shape."""
    record = {key: value for key, value in config_lib.to_dict(config).items() if key != "data"}
    record.update({key: value for key, value in config_lib.to_dict(config.data).items()})
    image_size = getattr(config.data, "image_size", None)
    record["image_size"] = list(image_size) if image_size else None
    record.update(
        # the policy auto resolved to on this machine: a resume elsewhere must not mix float32 and bfloat16 trials
        precision="float32" if is_table(config) else machine.resolve_precision(config.precision)["policy"],
        direction=search_state.objective_direction(config.objective),
        input_shape=list(input_shape),
        num_classes=int(num_classes),
    )
    return record


def _identity(record: Dict[str, Any]) -> Dict[str, Any]:
    keys = IDENTITY_KEYS + (HYPERBAND_KEYS if record.get("tuner") == "hyperband" else EPOCH_KEYS)
    return {key: record.get(key, IDENTITY_DEFAULTS.get(key)) for key in keys}


def check_project_name(name: Optional[str]) -> None:
    """Refuses a ``--project-name`` that is not one plain folder name.

    ``--overwrite`` deletes ``<directory>/<project_name>``, so ``..``, ``.``, an absolute
    path or a name with a separator would delete the parent folder, every sibling search,
    or any folder at all.

    Raises:
        ValueError: Naming the problem and the fix.
    """
    if name is None:
        return
    separators = [sep for sep in (os.sep, os.altsep, "/") if sep]
    if not name.strip() or name in (".", "..") or any(sep in name for sep in separators) or os.path.isabs(name):
        raise ValueError(
            f"--project-name {name!r} must be one plain folder name (no '/', not '.' or '..'); "
            "put the folder it lives in into --directory."
        )


def check_project(directory: str, record: Dict[str, Any], overwrite: bool) -> None:
    """Refuses to resume into, or to overwrite, a directory that holds something else.

    ``--overwrite`` replaces only a tfcourse search (a folder with ``search.json``) or an
    empty folder: KerasTuner deletes the whole project folder, so anything else in it
    would be lost.

    Raises:
        ValueError: If ``directory`` is a file, holds no tfcourse ``search.json`` (with or
            without ``overwrite``), or holds a search whose defining settings differ from
            ``record`` (without ``overwrite``).
    """
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise ValueError(f"{directory} is a file, not a search folder; pass another --project-name or --directory.")
    if not os.path.isdir(directory) or not os.listdir(directory):
        return
    existing = search_state.read_search_record(directory)
    if existing is None:
        raise ValueError(
            f"{directory} is not empty and holds no tfcourse search.json (another project or other "
            "files?); --overwrite only replaces a tfcourse search. Pass another --project-name, or move "
            "that folder away yourself."
        )
    if overwrite:
        return
    search_state.check_state(directory)
    fix = "pass --overwrite to replace it, or --project-name to start another one beside it"
    old, new = _identity(existing), _identity(record)
    different = [f"{key}: {old[key]!r} there, {new[key]!r} now" for key in new if old.get(key) != new[key]]
    if different:
        raise ValueError(f"{directory} holds a different search ({'; '.join(different)}); {fix}.")


def is_table(config: TuneConfig) -> bool:
    return isinstance(config.data, TableDataConfig)


def validate(config: TuneConfig) -> None:
    """Raises ``ValueError`` for settings that cannot work, before any data is loaded."""
    kind = get_spec(config.model).kind
    if kind != ("table" if is_table(config) else "image"):
        raise ValueError(
            f"--model {config.model} is a model for {kind}s; {config.data.dataset} takes "
            f"{', '.join(list_models('table' if is_table(config) else 'image'))}."
        )
    check_project_name(config.project_name)
    checks = [
        (
            config.tuner in config_lib.TUNER_KINDS,
            f"tuner must be one of {config_lib.TUNER_KINDS}, got {config.tuner!r}",
        ),
        (config.max_trials >= 1, f"max trials must be at least 1, got {config.max_trials}"),
        (config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}"),
        (config.max_epochs >= 1, f"max epochs must be at least 1, got {config.max_epochs}"),
        (config.factor >= 2, f"factor must be at least 2, got {config.factor}"),
        (
            config.executions_per_trial >= 1,
            f"executions per trial must be at least 1, got {config.executions_per_trial}",
        ),
        (
            config.objective in config_lib.OBJECTIVES,
            f"objective must be one of {config_lib.OBJECTIVES} (trials are "
            f"scored on the validation split), got {config.objective!r}",
        ),
        (
            config.max_minutes is None or config.max_minutes > 0,
            f"max minutes must be positive, got {config.max_minutes}",
        ),
        (config.cv is None or config.cv >= 2, f"--cv needs at least 2 folds, got {config.cv}"),
        (
            config.cv is None or config.tuner != "hyperband",
            "--cv scores each trial on K folds, but Hyperband carries each model from round to round on its "
            "checkpoint, one model per trial; use --tuner random or --tuner bayesian with --cv, or drop --cv",
        ),
        (
            config.cv is None or not is_table(config),
            f"--cv is for image datasets; a table's encoding and threshold are fitted on its training rows and "
            f"chosen on validation, so {config.data.dataset} is searched on its validation split: drop --cv",
        ),
        (
            config.keep_checkpoints is None or config.keep_checkpoints >= 0,
            f"--keep-checkpoints must keep 0 or more trials, got {config.keep_checkpoints}",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message + ".")
    if is_table(config):
        table_run.validate(TableConfig(model=config.model, seed=config.seed, data=config.data))
        return
    probe = TrainConfig(
        model=config.model,
        seed=config.seed,
        steps_per_execution=config.steps_per_execution,
        lr_schedule=config.lr_schedule,
        precision=config.precision,
        data=config.data,
    )
    image_run.validate_config(probe)


def space_rows(config: TuneConfig, download: bool = True):
    """``tune --show-space``: the space the search would explore (``hparams.describe_space`` rows, the
    declared space with ``--space`` narrowing applied), for the dataset named (its shape and classes).

    Returns:
        ``(input_shape, num_classes, rows)``.
    """
    validate(config)
    if is_table(config):
        _, _, pipelines = table_run.load_pipelines(config.data, config.seed)
        shape, classes = pipelines.input_shape, pipelines.num_classes
    else:
        dataset, _ = data.load_splits(config.data, config.seed, download)
        shape, classes = dataset.input_shape, dataset.num_classes
    batch = config.data.batch_size
    declared = hparams.describe_space(hparams.hyperparameter_space(config.model, shape, classes, batch))
    narrowed = {
        entry["name"]: entry
        for entry in hparams.describe_space(
            hparams.make_search_space(config.model, config.space, shape, classes, batch)
        )
    }
    return shape, classes, [narrowed.get(entry["name"], entry) for entry in declared]


def _load_data(config: TuneConfig, download: bool):
    """The search's pipelines (train and validation; the test split is never used) and, with ``--cv``, its
    folds of the training split; says what was loaded."""
    print(f"tfcourse: loading {config.data.dataset} ...", flush=True)
    if is_table(config):
        dataset, splits, pipelines = table_run.load_pipelines(config.data, config.seed)
        what = f"{dataset.num_rows} rows, {len(dataset.columns)} features -> {pipelines.input_shape[0]} inputs"
    else:
        dataset, splits, pipelines = data.load_pipelines(config.data, config.seed, download=download)
        what = f"images {pipelines.input_shape}"
    print(
        f"tfcourse: {dataset.source}: {pipelines.num_classes} classes, {what}, "
        f"split {splits.protocol} {splits.sizes()}; the test split is not used by the search",
        flush=True,
    )
    if not config.cv:
        return pipelines, None
    folds = data.cv_folds(dataset, splits, config.data, config.seed, config.cv)
    print(
        f"tfcourse: each trial is scored by {config.cv}-fold stratified cross-validation on the "
        f"{len(splits.train)} training examples (folds of {', '.join(str(f.sizes['val']) for f in folds)}); "
        "the validation split is not used by the search",
        flush=True,
    )
    return pipelines, folds


# What a retrain costs beyond its epochs: evaluation, the report, the export and its check in a fresh
# process. The README's main job (vgg, Fashion-MNIST, 2 AMD EPYC cores) spent 33 s of its 186 s outside
# training; the search holds back this much more than the retrain's epochs.
RETRAIN_OVERHEAD_SECONDS = 35.0


def retrain_reserve(tuner, epochs: Optional[int], train_on: str, sizes: Dict[str, int]) -> Callable[[], float]:
    """Seconds to hold back for ``--retrain``: the best trial so far's seconds per epoch (its wall time over
    its epochs, tracing and validation included) times the epochs the retrain will run (``epochs``, else
    the trial's best epoch), scaled up for train+val, plus ``RETRAIN_OVERHEAD_SECONDS``."""
    scale = (
        (sizes.get("train", 0) + sizes.get("val", 0)) / max(1, sizes.get("train", 0)) if train_on != "train" else 1.0
    )

    def reserve() -> float:
        costs = tuner.trial_costs()
        best = [trial for trial in tuner.oracle.get_best_trials(num_trials=1) if trial.trial_id in costs]
        if not best:
            return 0.0
        cost = costs[best[0].trial_id]
        return cost["seconds_per_epoch"] * (epochs or cost["best_epoch"]) * scale + RETRAIN_OVERHEAD_SECONDS

    return reserve


def run_search(
    config: TuneConfig,
    download: bool = True,
    verbose: Any = "auto",
    role: Optional[str] = None,
    distribution_strategy=None,
    top: int = 5,
    retrain: Optional[Tuple[Optional[int], str]] = None,
) -> SearchResult:
    """Loads the data, builds the search space and the tuner, searches, and writes the summaries.

    Args:
        config: The search's settings.
        download: Allow ``tfds.load`` to download a catalogued dataset missing locally.
        verbose: Keras ``fit`` verbosity for each trial.
        role: ``None`` for a single process; ``chief`` or ``worker`` in KerasTuner's
            distributed mode (the ``KERASTUNER_*`` environment must be set). The chief
            hands out trials and writes the summaries; workers train.
        distribution_strategy: A ``tf.distribute`` strategy for each trial's model.
        top: Trials printed at the end (the search page lists them all).
        retrain: ``(epochs or None, train_on)`` when a retrain of the best trial follows: with
            ``max_minutes`` the search ends early enough to leave it the time it will take
            (``retrain_reserve``), so the budget bounds the whole command.

    Raises:
        ValueError: For invalid settings, data or space overrides, or a directory holding
            another search.
    """
    validate(config)
    keras.utils.set_random_seed(config.seed)
    pipelines, folds = _load_data(config, download)
    hyperparameters = hparams.make_search_space(
        config.model, config.space, pipelines.input_shape, pipelines.num_classes, batch_size=config.data.batch_size
    )
    directory = project_dir(config)
    record = search_record(config, pipelines.input_shape, pipelines.num_classes)
    if role != "worker":  # a worker trains in the chief's folder, which the chief may be filling right now
        check_project(directory, record, config.overwrite)
    tuner = tuners.tuner_for(
        config, pipelines, hyperparameters, project_name(config), record["precision"], role, distribution_strategy
    )
    tuner.folds = folds
    if retrain is not None and config.max_minutes is not None:
        tuner.reserve = retrain_reserve(tuner, retrain[0], retrain[1], pipelines.sizes)
    if role != "worker":
        os.makedirs(directory, exist_ok=True)
        rundir.write_json(os.path.join(directory, search_state.SEARCH_FILE), record)

    if role == "worker":  # the oracle is the chief's, behind gRPC
        print(f"tfcourse: worker {tuner.tuner_id} asking the chief for trials of {directory}", flush=True)
    else:
        print(
            f"tfcourse: {config.tuner} search of {config.model} in {directory} "
            f"({len(tuner.oracle.trials)} trials there already)",
            flush=True,
        )
    finished = tuners.run_search(
        tuner,
        pipelines,
        epochs=config.epochs,
        patience=config.patience,
        verbose=verbose,
        log_dir=os.path.join(directory, "logs"),
        lr_schedule=config.lr_schedule,
    )
    if not finished:
        held = tuner.reserve() if tuner.reserve else 0.0
        print(
            f"tfcourse: time budget of {config.max_minutes} min spent; no new trials started"
            + (f" (the last {held:.0f} s are the retrain's estimated time)" if held else ""),
            flush=True,
        )
    if role == "worker":
        return SearchResult(directory, tuner, finished, {})
    if not tuner.oracle.trials:
        print(f"tfcourse: no trial ran in {directory}; nothing to summarise", flush=True)
        return SearchResult(directory, tuner, finished, {})

    paths = summarize(directory, direction=record["direction"])
    print("\n".join(search_state.top_trials_lines(directory, top)), flush=True)
    print(f"tfcourse: search page {paths['search.html']} (search.md, trials.csv and figures beside it)", flush=True)
    return SearchResult(directory, tuner, finished, paths)


def summarize(project_directory: str, direction: Optional[str] = None) -> Dict[str, str]:
    """A search directory's trials (``trials.csv``, ``trials.json``, per-trial figures) and its one summary,
    the search page (``search.html``, ``search.md``); the paths written, by file name."""
    paths = search_page.write_trial_files(project_directory, direction=direction)
    paths.update(search_page.write_search_page(project_directory))
    return paths


def _record_retrained(project_directory: str, run, best: Dict[str, Any], train_on: str) -> None:
    """Writes the search's ``retrained.json`` (the run the search page links to) and rewrites the page."""
    metrics = run.metrics or {}
    rundir.write_json(
        os.path.join(project_directory, search_page.RETRAINED_FILE),
        {
            "run_dir": os.path.abspath(run.run_dir),
            "trial_id": best["trial_id"],
            "train_on": train_on,
            "test_accuracy": metrics.get("test_accuracy", metrics.get("accuracy")),  # a two-class table: accuracy
            "export_dir": run.export_dir,
        },
    )
    search_page.write_search_page(project_directory)


def best_trial_settings(project_directory: str) -> Dict[str, Any]:
    """The best completed trial of a search: its id, score, hyperparameters and best epoch count.

    Raises:
        ValueError: If the search has no completed trial.
    """
    record = search_state.read_search_record(project_directory) or {}
    direction = record.get("direction", "max")
    rows = [row for row in search_state.trial_rows(project_directory) if row["score"] is not None and row["best_epoch"]]
    if not rows:
        raise ValueError(f"{project_directory} has no completed trial to retrain; run the search first.")
    best = sorted(rows, key=lambda row: row["score"], reverse=direction == "max")[0]
    values = {
        key[3:]: value for key, value in best.items() if key.startswith("hp/") and not key.startswith("hp/tuner/")
    }
    return {
        "trial_id": best["trial_id"],
        "score": best["score"],
        "best_epoch": best["best_epoch"],
        "hyperparameters": values,
    }


def retrain_best(
    config: TuneConfig,
    project_directory: str,
    train_on: str = "train",
    epochs: Optional[int] = None,
    output_dir: Optional[str] = None,
    export_dir: str = "saved_models",
    download: bool = True,
    verbose: Any = "auto",
    export_formats=("savedmodel",),
):
    """Trains the best trial's hyperparameters afresh, evaluates once on test, and exports a SavedModel
    (and the ONNX / LiteRT files of ``export_formats``, an image model only).

    The model trains for the best trial's best epoch count (``epochs`` overrides it) on
    the train split, or on train + validation with ``train_on="train+val"``; the run
    folder and export are exactly those of ``tfcourse.train --export``, with the search
    and trial recorded in ``config.json`` under ``tuned_from``.

    A table's model is retrained by ``table_run.train_table`` (up to the best epoch count, early
    stopping kept; its threshold chosen on validation) and exported for raw rows.

    Returns:
        The ``image_run.RunResult`` (a table: the ``table_run.TableRun``).
    """
    best = best_trial_settings(project_directory)
    values = dict(best["hyperparameters"])
    batch_size = int(values.pop("batch_size", config.data.batch_size))
    run_epochs = epochs or best["best_epoch"]
    tuned_from = {"tuned_from": {"project_dir": os.path.abspath(project_directory), **best}}
    table = is_table(config)
    if table and train_on != "train":
        raise ValueError("--retrain-on train+val is for images; a table's validation rows choose its threshold.")
    common = dict(
        model=config.model,
        epochs=run_epochs,
        patience=config.patience,
        seed=config.seed,
        hp=values,
        output_dir=output_dir,
        export=True,
        export_dir=export_dir,
        data=dataclasses.replace(config.data, batch_size=batch_size),
    )
    how = f"up to {run_epochs} epochs" if table else f"{run_epochs} epochs on {train_on}"
    print(
        f"tfcourse: retraining trial {best['trial_id']} (val score {best['score']:.4f}, best epoch "
        f"{best['best_epoch']}) for {how}, batch size {batch_size}",
        flush=True,
    )
    if table:
        run = table_run.train_table(TableConfig(**common), verbose=verbose, record_extra=tuned_from)
        print(table_run.summary(run), flush=True)
    else:
        image_only = dict(
            export_formats=tuple(export_formats),
            steps_per_execution=config.steps_per_execution,
            train_on=train_on,
            lr_schedule=config.lr_schedule,
            precision=config.precision,
        )
        train_config = TrainConfig(**common, **image_only)
        run = image_run.train_and_evaluate(train_config, download=download, verbose=verbose, record_extra=tuned_from)
    _record_retrained(project_directory, run, best, train_on)
    return run


def load_tuner(project_directory: str):
    """Reloads the KerasTuner tuner of a tfcourse search directory (``None`` without its ``search.json``,
    or when KerasTuner's state files cannot be read back: ``search_state.unreadable_state``)."""
    record = search_state.read_search_record(project_directory)
    if record is None or search_state.unreadable_state(project_directory):
        return None
    hypermodel = tuners.make_hypermodel(record["model"], record["input_shape"], record["num_classes"])
    parent, name = os.path.split(os.path.normpath(project_directory))
    return tuners.make_tuner(
        record["tuner"],
        hypermodel,
        objective=record["objective"],
        max_trials=record["max_trials"],
        max_epochs=record["max_epochs"],
        factor=record["factor"],
        directory=parent or ".",
        project_name=name,
        overwrite=False,
        seed=record["seed"],
    )
