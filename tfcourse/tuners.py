"""KerasTuner searches over the registry's builders, and summaries a person can use.

A search is ``make_tuner`` (RandomSearch, Hyperband or BayesianOptimization around a
``CourseHyperModel``) then ``tuner.search`` on the train pipeline, scored on the validation
pipeline; the test split is never touched. Summaries are read back from KerasTuner's own files
(``<directory>/<project>/trial_*/trial.json``) plus the wall time and epoch count each trial
records beside them, so ``summarize`` works on any finished or interrupted search directory.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import time
from typing import Any, Dict, List, Sequence

TUNER_KINDS = ("random", "hyperband", "bayesian")
TRIAL_STATS_FILE = "tfcourse_trial.json"


def make_hypermodel(model_name: str, input_shape: Sequence[int], num_classes: int, steps_per_execution: int = 8):
    """A ``keras_tuner.HyperModel`` whose ``build(hp)`` is the registry builder plus ``fit.compile_model``."""
    import keras_tuner as kt

    from tfcourse import fit
    from tfcourse.models import build_model, get_spec

    get_spec(model_name)

    class CourseHyperModel(kt.HyperModel):
        def build(self, hp):
            model = build_model(model_name, hp, input_shape, num_classes)
            return fit.compile_model(model, hp, steps_per_execution=steps_per_execution)

    return CourseHyperModel(name=model_name)


def _tuner_class(kind: str):
    """The KerasTuner class for ``kind``, extended to clear the Keras session and time each trial."""
    import keras_tuner as kt

    bases = {"random": kt.RandomSearch, "hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization}
    if kind not in bases:
        raise ValueError(f"Unknown tuner {kind!r}; use one of {', '.join(TUNER_KINDS)}.")

    class CourseTuner(bases[kind]):
        def run_trial(self, trial, *args, **kwargs):
            import keras

            # Models of earlier trials otherwise stay in Keras' global graph state and memory grows.
            keras.backend.clear_session()
            start = time.perf_counter()
            histories = super().run_trial(trial, *args, **kwargs)
            epochs = [len(history.history.get("loss", [])) for history in histories if hasattr(history, "history")]
            stats = {"wall_seconds": round(time.perf_counter() - start, 3), "epochs_trained": sum(epochs)}
            with open(os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_STATS_FILE), "w", encoding="utf-8") as handle:
                json.dump(stats, handle)
            return histories

    CourseTuner.__name__ = f"Course{bases[kind].__name__}"
    return CourseTuner


def make_tuner(kind: str, hypermodel, *, objective: str = "val_accuracy", max_trials: int = 10, max_epochs: int = 10,
               factor: int = 3, executions_per_trial: int = 1, directory: str = "tuning", project_name: str = "search",
               overwrite: bool = False, seed: int = 42, hyperparameters=None, max_consecutive_failed_trials: int = 3,
               distribution_strategy=None):
    """Builds a KerasTuner tuner.

    Args:
        kind: ``random``, ``hyperband`` or ``bayesian``.
        hypermodel: From ``make_hypermodel``.
        objective: Metric to maximise (``val_*`` metrics; losses are minimised).
        max_trials: Trials for RandomSearch and Bayesian (Hyperband sizes itself from
            ``max_epochs`` and ``factor``).
        max_epochs, factor: Hyperband's budget per model and reduction factor.
        executions_per_trial: Models trained per trial (scores averaged).
        directory, project_name: Where KerasTuner keeps its state (resumable).
        overwrite: Start afresh instead of resuming.
        seed: Fixes the search's sampling.
        hyperparameters: A ``HyperParameters`` with fixed or narrowed entries.
        max_consecutive_failed_trials: Failed trials in a row before the search stops.
        distribution_strategy: A ``tf.distribute`` strategy for each trial's model.
    """
    import keras_tuner as kt

    direction = "min" if objective.endswith("loss") else "max"
    common = dict(
        objective=kt.Objective(objective, direction=direction), executions_per_trial=executions_per_trial,
        directory=directory, project_name=project_name, overwrite=overwrite, seed=seed,
        hyperparameters=hyperparameters, tune_new_entries=True,
        max_consecutive_failed_trials=max_consecutive_failed_trials, distribution_strategy=distribution_strategy,
    )
    tuner_class = _tuner_class(kind)
    if kind == "hyperband":
        return tuner_class(hypermodel, max_epochs=max_epochs, factor=factor, **common)
    return tuner_class(hypermodel, max_trials=max_trials, **common)


def trial_rows(project_dir: str) -> List[Dict[str, Any]]:
    """One row per trial of a search directory, read from KerasTuner's files.

    Returns:
        Dicts with ``trial_id``, ``status``, ``score``, ``best_epoch`` (1-based),
        ``epochs_trained``, ``wall_seconds``, ``message`` and every hyperparameter
        (as ``hp/<name>``), in trial order.

    Raises:
        ValueError: If ``project_dir`` holds no KerasTuner trials.
    """
    paths = glob.glob(os.path.join(project_dir, "trial_*", "trial.json"))
    if not paths:
        raise ValueError(f"{project_dir} holds no KerasTuner trials (trial_*/trial.json). Check the path.")
    rows = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            trial = json.load(handle)
        stats_path = os.path.join(os.path.dirname(path), TRIAL_STATS_FILE)
        stats = {}
        if os.path.isfile(stats_path):
            with open(stats_path, encoding="utf-8") as handle:
                stats = json.load(handle)
        best_step = trial.get("best_step")
        message = (trial.get("message") or "").strip()
        row = {
            "trial_id": trial["trial_id"],
            "status": trial.get("status"),
            "score": trial.get("score"),
            "best_epoch": best_step + 1 if isinstance(best_step, int) else None,
            "epochs_trained": stats.get("epochs_trained"),
            "wall_seconds": stats.get("wall_seconds"),
            "message": message.splitlines()[-1] if message else None,  # last line of a failure's traceback
        }
        row.update({f"hp/{name}": value for name, value in trial["hyperparameters"]["values"].items()})
        rows.append(row)
    rows.sort(key=lambda row: (len(row["trial_id"]), row["trial_id"]))
    return rows


def _search_space(project_dir: str) -> List[Dict[str, Any]]:
    with open(os.path.join(project_dir, "oracle.json"), encoding="utf-8") as handle:
        oracle = json.load(handle)
    return [{"name": entry["config"]["name"], "type": entry["class_name"],
             **{k: v for k, v in entry["config"].items() if k not in ("name", "conditions") and v is not None}}
            for entry in oracle["hyperparameters"]["space"]]


def summarize(project_dir: str, direction: str = "max", top: int = 5) -> Dict[str, str]:
    """Writes ``trials.csv``, ``trials.json`` and ``summary.md`` into ``project_dir``.

    Args:
        project_dir: ``<directory>/<project_name>`` of a search.
        direction: ``max`` if a higher score is better (accuracy), ``min`` for losses.
        top: How many of the best trials ``summary.md`` lists.

    Returns:
        The paths written, by file name.
    """
    rows = trial_rows(project_dir)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    paths = {name: os.path.join(project_dir, name) for name in ("trials.csv", "trials.json", "summary.md")}

    with open(paths["trials.csv"] + ".tmp", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    with open(paths["trials.json"] + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(rows, handle, indent=2)

    scored = [row for row in rows if row["score"] is not None]
    ranked = sorted(scored, key=lambda row: row["score"], reverse=direction == "max")
    hp_columns = [key for key in columns if key.startswith("hp/")]
    lines = [f"# Search summary: {os.path.basename(os.path.normpath(project_dir))}", ""]
    counts = {status: sum(row["status"] == status for row in rows) for status in sorted({row["status"] for row in rows})}
    lines.append(f"{len(rows)} trials: " + ", ".join(f"{n} {status.lower()}" for status, n in counts.items()) + ".")
    total = sum(row["wall_seconds"] or 0 for row in rows)
    lines += [f"Total trial wall time: {total:.1f} s.", "", f"## Top {min(top, len(ranked))} trials", ""]
    header = ["trial", "score", "best epoch", "epochs", "seconds"] + [key[3:] for key in hp_columns]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in ranked[:top]:
        cells = [row["trial_id"], f"{row['score']:.4f}", row["best_epoch"], row["epochs_trained"], row["wall_seconds"]]
        cells += [row.get(key) for key in hp_columns]
        lines.append("| " + " | ".join("" if cell is None else str(cell) for cell in cells) + " |")
    lines += ["", "## Search space", "", "| name | type | settings |", "|---|---|---|"]
    for entry in _search_space(project_dir):
        settings = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "type"))
        lines.append(f"| {entry['name']} | {entry['type']} | {settings} |")
    with open(paths["summary.md"] + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    for path in paths.values():
        os.replace(path + ".tmp", path)
    return paths


def run_search(tuner, pipelines, epochs: int, patience: int = 3, verbose: Any = "auto"):
    """Runs ``tuner.search`` on the train pipeline, scored on validation (never on test).

    ``epochs`` is per trial for RandomSearch/Bayesian; Hyperband sets its own epochs per
    bracket, so it is ignored there. Early stopping ends hopeless trials sooner.
    """
    import keras
    import keras_tuner as kt

    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience)]
    kwargs = dict(validation_data=pipelines.val, callbacks=callbacks, verbose=verbose, shuffle=False)
    if not isinstance(tuner, kt.Hyperband):
        kwargs["epochs"] = epochs
    tuner.search(pipelines.train, **kwargs)
    return tuner
