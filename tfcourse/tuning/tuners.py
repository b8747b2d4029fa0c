"""KerasTuner searches over the registry's builders: ``make_tuner`` (RandomSearch, Hyperband or
BayesianOptimization around a ``CourseHyperModel``, with a time budget, CV folds, checkpoint pruning and
an oracle whose state is written atomically), the trial progress lines, and ``run_search`` (``tuner.search``
on the train pipeline, scored on the validation pipeline; the test split is never touched).
"""

from __future__ import annotations

import contextlib
import gc
import glob
import json
import os
import socket
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import keras
import keras_tuner as kt
from keras_tuner.src import config as kt_config
from keras_tuner.src.engine import oracle as kt_oracle
from keras_tuner.src.engine import tuner_utils

from tfcourse import rundir
from tfcourse.config import TUNER_KINDS, TuneConfig
from tfcourse.models import build_model, get_spec
from tfcourse.training import fit
from tfcourse.tuning import hparams
from tfcourse.tuning.search_state import (
    CHECKPOINT_FILE,
    TRACEBACK_FILE,
    TRIAL_STATS_FILE,
    best_epoch,
    objective_direction,
)


class BudgetSpent(Exception):
    """Raised between trials once a search's time budget is used up."""


def make_hypermodel(
    model_name: str,
    input_shape: Sequence[int],
    num_classes: int,
    steps_per_execution: int = 8,
    make_train: Optional[Callable[[int], Any]] = None,
    batch_size: Optional[int] = None,
    seed: int = 42,
    dtype_policy: str = "float32",
):
    """A ``keras_tuner.HyperModel`` whose ``build(hp)`` is the registry builder plus ``fit.compile_model``.

    Args:
        make_train: Batch size -> training pipeline (``Pipelines.make_train``). When given
            (with the pipelines' ``batch_size``), ``batch_size`` becomes a hyperparameter
            and each trial trains on a pipeline of its batch size.
        seed: Each trial's weights are initialised from ``seed`` + its trial number, so a
            trial is reproducible whatever ran before it (and after a resume).
        dtype_policy: Keras dtype policy each trial's model is built under (``mixed_bfloat16``: bfloat16
            compute, float32 logits); set inside ``build``, after KerasTuner's ``clear_session``.
    """
    # a table model's two-class head is one logit (binary cross-entropy); an image model's one per class
    binary = get_spec(model_name).kind == "table" and num_classes == 2

    class CourseHyperModel(kt.HyperModel):
        base_seed = trial_seed = seed
        train_maker = staticmethod(make_train) if make_train is not None else None  # a CV fold sets its own

        def build(self, hp):
            keras.utils.set_random_seed(self.trial_seed)
            with fit.dtype_policy(dtype_policy):
                model = build_model(model_name, hp, input_shape, num_classes)
            return fit.compile_model(model, hp, steps_per_execution=steps_per_execution, binary=binary)

        def fit(self, hp, model, x, *args, **kwargs):
            if self.train_maker is not None:
                chosen = hparams.batch_size_hp(hp, batch_size)
                if chosen != batch_size:
                    x = self.train_maker(chosen)
            # every trial traces its graphs afresh: on a short epoch one step per call is the faster trial
            steps = int(x.cardinality()) if hasattr(x, "cardinality") else None  # a tf.data pipeline
            model.steps_per_execution = fit.steps_per_execution_for(model.steps_per_execution, steps)
            history = model.fit(x, *args, **kwargs)
            fit.check_finite(history.history, "This trial", model)  # a FAILED trial, not a NaN score
            return history

    return CourseHyperModel(name=model_name)


@contextlib.contextmanager
def releasing_graph_gradients():
    """Drops the gradient functions TensorFlow registered globally while the block ran.

    ``tf.custom_gradient`` in graph mode (``tf.distribute``'s ``all_reduce`` uses it in every
    Keras training step) registers a ``CustomGradient-<n>`` function in TensorFlow's global
    gradient registry that is never removed and keeps the whole traced training graph alive:
    about 8 MB per trained model here, even after ``keras.backend.clear_session()``. Once a
    trial's model is done with, nothing will differentiate those graphs again, so the entries
    can go. (A private TensorFlow registry; if it is not found this does nothing.)
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        registry = None
    before = set(registry) if registry is not None else set()
    try:
        yield
    finally:
        if registry is not None:
            for name in [name for name in registry if name not in before and name.startswith("CustomGradient")]:
                registry.pop(name, None)
            gc.collect()


class _Shared(dict):
    """A dict every copy of which is itself: KerasTuner deep-copies a trial's callbacks, and what a copy
    learns must reach the tuner."""

    def __deepcopy__(self, memo):
        return self


class EpochDeadline(keras.callbacks.Callback):
    """Stops training at an epoch boundary when one more epoch, as long as the longest so far, would end
    after ``deadline()`` (``time.time()``, asked at each epoch's end: it moves as the search learns what its
    retrain will need); records that in ``found["stopped_by_budget"]``. The epochs already trained keep their
    scores: KerasTuner scores the trial on its best epoch so far."""

    def __init__(self, deadline: Callable[[], Optional[float]], found: _Shared):
        super().__init__()
        self.deadline, self.found = deadline, found
        self.longest, self.begun = 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.begun = time.time()

    def on_epoch_end(self, epoch, logs=None):
        now = time.time()
        self.longest = max(self.longest, now - (self.begun or now))
        deadline = self.deadline()
        if deadline is not None and now + self.longest > deadline:
            self.model.stop_training = True
            self.found["stopped_by_budget"] = True


def _tuner_class(kind: str):
    """The KerasTuner class for ``kind``, extended to seed, time and describe each trial."""
    bases = {"random": kt.RandomSearch, "hyperband": kt.Hyperband, "bayesian": kt.BayesianOptimization}
    if kind not in bases:
        raise ValueError(f"Unknown tuner {kind!r}; use one of {', '.join(TUNER_KINDS)}.")

    class CourseTuner(bases[kind]):
        deadline: Optional[float] = None  # time.time() at which the budget ends
        # seconds the command needs after the search (the retrain --retrain asks for): the search ends that
        # much before the deadline; a callable, since it depends on the best trial so far
        reserve: Optional[Callable[[], float]] = None
        folds: Optional[Sequence[Any]] = None  # cross-validation: one Pipelines per fold (data.cv_folds)
        keep_checkpoints: Optional[int] = None  # trials whose best-epoch weights stay on disk (None: all)
        _fold = 0

        def save(self):
            # KerasTuner writes its state files in place; a kill mid-write leaves a file no
            # resume can read. The same JSON, written atomically.
            if not self._is_worker():
                self.oracle.save()  # made atomic by make_tuner
            rundir.write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

        def search_deadline(self) -> Optional[float]:
            """When the search must end: the budget's end, less what the command needs after it."""
            if self.deadline is None:
                return None
            return self.deadline - (self.reserve() if self.reserve else 0.0)

        def trial_costs(self) -> Dict[str, Dict[str, float]]:
            """Per trial this process ran: wall seconds per epoch trained and its best epoch (1-based)."""
            return self.__dict__.setdefault("_trial_costs", {})

        def pre_create_trial(self):
            deadline = self.search_deadline()
            if deadline is not None and time.time() >= deadline:
                raise BudgetSpent()

        def run_trial(self, trial, *args, **kwargs):
            # KerasTuner clears the Keras session before building each model; with the gradient
            # registry cleaned too, earlier trials' graphs are freed. The seed makes each trial's
            # initialisation its own.
            self.hypermodel.trial_seed = self.hypermodel.base_seed + int(trial.trial_id)
            found = _Shared()
            if self.deadline is not None:  # a trial that would overrun the budget stops at an epoch boundary
                stop = EpochDeadline(self.search_deadline, found)
                kwargs = {**kwargs, "callbacks": [*kwargs.get("callbacks", []), stop]}
            start = time.perf_counter()
            objective = self.oracle.objective
            fold_scores = None
            with releasing_graph_gradients():
                if not self.folds:
                    histories = super().run_trial(trial, *args, **kwargs)
                else:  # K models, one per fold; KerasTuner averages their best-epoch scores for the oracle
                    histories, fold_scores = [], []
                    for number, fold in enumerate(self.folds):
                        self._fold, self.hypermodel.train_maker = number, fold.make_train
                        fold_histories = super().run_trial(
                            trial, fold.train, *args[1:], **{**kwargs, "validation_data": fold.val}
                        )
                        histories += fold_histories
                        metrics = tuner_utils.convert_to_metrics_dict(fold_histories, objective)
                        fold_scores.append(float(objective.get_value(metrics)))
                    self._fold = 0
            initial = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
            records = [history.history for history in histories if hasattr(history, "history")]
            stats = {
                "wall_seconds": round(time.perf_counter() - start, 3),
                "epochs_trained": sum(len(record.get("loss", [])) for record in records),
                "best_epoch": best_epoch(records, objective.name, objective.direction, initial),
                "end_time": round(time.time(), 3),
                "tuner_id": self.tuner_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                # per execution (per fold with --cv): the epoch curves the search page draws
                "history": [{key: [float(v) for v in values] for key, values in r.items()} for r in records],
            }
            if fold_scores is not None:
                stats["cv_scores"] = fold_scores
            stats["stopped_by_budget"] = bool(found.get("stopped_by_budget"))
            if stats["epochs_trained"]:
                self.trial_costs()[trial.trial_id] = {
                    "seconds_per_epoch": stats["wall_seconds"] / stats["epochs_trained"],
                    "best_epoch": stats["best_epoch"] or stats["epochs_trained"],
                }
            rundir.write_json(os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_STATS_FILE), stats)
            return histories

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # with --cv each fold's executions log beside the others: logs/<trial>/execution<fold*n+i>
            super()._configure_tensorboard_dir(callbacks, trial, self._fold * self.executions_per_trial + execution)

        def on_trial_end(self, trial):
            if trial.message:  # a failed trial: its traceback goes to its own folder, one line to the console
                rundir.write_text(os.path.join(self.get_trial_dir(trial.trial_id), TRACEBACK_FILE), trial.message)
            super().on_trial_end(trial)
            if not isinstance(self, kt.Hyperband):  # Hyperband's later rounds start from earlier checkpoints
                prune_checkpoints(self)

        def on_search_end(self):
            super().on_search_end()
            prune_checkpoints(self)

    CourseTuner.__name__ = f"Course{bases[kind].__name__}"
    return CourseTuner


def prune_checkpoints(tuner) -> List[str]:
    """Removes the best-epoch weights of every ended trial but the ``tuner.keep_checkpoints`` best (``None``:
    keeps all, KerasTuner's own behaviour; 0: removes every one); a trial still running (on another worker)
    keeps its own until it ends. Returns the files removed."""
    if tuner.keep_checkpoints is None:
        return []
    best = tuner.oracle.get_best_trials(num_trials=tuner.keep_checkpoints) if tuner.keep_checkpoints else []
    keep = {os.path.abspath(tuner._get_checkpoint_fname(trial.trial_id)) for trial in best}
    removed = []
    for path in glob.glob(os.path.join(tuner.project_dir, "trial_*", CHECKPOINT_FILE)):
        trial_id = os.path.basename(os.path.dirname(path))[len("trial_") :]
        if os.path.abspath(path) not in keep and not _running(tuner.oracle, trial_id):
            with contextlib.suppress(FileNotFoundError):  # another worker's prune got there first
                os.remove(path)
                removed.append(path)
    return removed


def _running(oracle, trial_id: str) -> bool:
    try:
        return oracle.get_trial(trial_id).status == kt.engine.trial.TrialStatus.RUNNING
    except (KeyError, ValueError):  # a folder the oracle does not know (left by an older search)
        return False


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def planned_trials(oracle) -> Optional[int]:
    """How many trials a search will run in all: ``max_trials``, or for Hyperband one iteration's brackets
    (KerasTuner's own bracket sizes; fewer when ``max_trials`` caps it)."""
    if isinstance(oracle, kt.oracles.HyperbandOracle):
        sizes = sum(
            oracle._get_size(bracket, round_)
            for bracket in range(oracle._get_num_brackets())
            for round_ in range(oracle._get_num_rounds(bracket))
        )
        return min(sizes, oracle.max_trials) if oracle.max_trials else sizes
    return oracle.max_trials


class TrialLines(kt_oracle.Display):
    """KerasTuner's console display (the oracle calls it as each trial begins and ends, on the chief in
    distributed mode), made one line per trial as it ends: its id and status, its score or why it failed
    (the traceback is in the trial's folder), the best so far, the time it took, the time since this
    process started the search, and an estimate of the time left within ``max_trials`` / the time budget."""

    def __init__(self, oracle, deadline: Optional[float] = None):
        super().__init__(oracle, verbose=0)
        self.deadline = deadline
        self.started = time.time()
        self.began: Dict[str, float] = {}
        self.durations: List[float] = []

    def on_trial_begin(self, trial):
        self.began[trial.trial_id] = time.time()

    def on_trial_end(self, trial):
        print(self.line(trial), flush=True)

    def line(self, trial) -> str:
        oracle, now = self.oracle, time.time()
        name = oracle.objective.name
        took = now - self.began.pop(trial.trial_id, now)
        self.durations.append(took)
        if trial.score is not None and trial.status == kt.engine.trial.TrialStatus.COMPLETED:
            result = f"{name} {trial.score:.4f}"
        else:
            last = (trial.message or "").strip().splitlines()[-1:] or ["no score"]
            where = os.path.join(oracle._get_trial_dir(trial.trial_id), TRACEBACK_FILE)
            result = f"{last[0][:160]} (traceback: {where})"
        best = [t for t in oracle.get_best_trials(1) if t.score is not None]  # a failed trial has no score
        best_text = f"best {best[0].score:.4f} (trial {best[0].trial_id})" if best else "no best yet"
        ended = sum(t.status not in ("RUNNING", "IDLE") for t in oracle.trials.values())
        planned = planned_trials(oracle)
        left = None
        if planned is not None:
            left = max(planned - ended, 0) * statistics.mean(self.durations)
        if self.deadline is not None:
            left = max(self.deadline - now, 0) if left is None else min(left, max(self.deadline - now, 0))
        progress = f"{ended}/{planned} trials" if planned else f"{ended} trials"
        estimate = f", ~{_clock(left)} left" if left is not None else ""
        return (
            f"tfcourse: trial {trial.trial_id} {trial.status.lower()}: {result} | {best_text} | {took:.1f} s | "
            f"{_clock(now - self.started)} elapsed, {progress}{estimate}"
        )


def make_tuner(
    kind: str,
    hypermodel,
    *,
    objective: str = "val_accuracy",
    max_trials: int = 10,
    max_epochs: int = 10,
    factor: int = 3,
    executions_per_trial: int = 1,
    directory: str = "tuning",
    project_name: str = "search",
    overwrite: bool = False,
    seed: int = 42,
    hyperparameters=None,
    max_consecutive_failed_trials: int = 3,
    distribution_strategy=None,
    max_minutes: Optional[float] = None,
    keep_checkpoints: Optional[int] = None,
):
    """Builds a KerasTuner tuner.

    Args:
        kind: ``random``, ``hyperband`` or ``bayesian``.
        hypermodel: From ``make_hypermodel``.
        objective: Metric to optimise (``val_*`` metrics; losses are minimised).
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
        max_minutes: Start no new trial after this many minutes from now.
        keep_checkpoints: Trials whose best-epoch weights stay on disk, the best ones (``None``: all).

    A failed trial prints one line (``TrialLines``) and leaves its traceback in its folder
    (``TRACEBACK_FILE``): KerasTuner's own traceback print (its ``config.DEBUG``) is turned off.
    """
    common = dict(
        objective=kt.Objective(objective, direction=objective_direction(objective)),
        executions_per_trial=executions_per_trial,
        directory=directory,
        project_name=project_name,
        overwrite=overwrite,
        seed=seed,
        hyperparameters=hyperparameters,
        tune_new_entries=True,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
        distribution_strategy=distribution_strategy,
    )
    tuner_class = _tuner_class(kind)
    if kind == "hyperband":
        tuner = tuner_class(hypermodel, max_epochs=max_epochs, factor=factor, **common)
    else:
        tuner = tuner_class(hypermodel, max_trials=max_trials, **common)
    kt_config.DEBUG = False  # KerasTuner prints each failed trial's traceback; it goes to the trial's folder
    if max_minutes is not None:
        tuner.deadline = time.time() + 60 * max_minutes
    tuner.keep_checkpoints = keep_checkpoints
    if isinstance(tuner.oracle, kt.Oracle):  # a worker's oracle is a gRPC client that writes nothing
        state = tuner.oracle._display.get_state()
        tuner.oracle._display = TrialLines(tuner.oracle, tuner.deadline)
        tuner.oracle._display.set_state(state)
        _write_oracle_state_atomically(tuner.oracle)
        _forget_ended_ongoing_trials(tuner.oracle)
    return tuner


def _ongoing_and_running(oracle) -> Dict[str, Any]:
    """``oracle.ongoing_trials`` less the trials whose own ``trial.json`` says they ended."""
    running = kt.engine.trial.TrialStatus.RUNNING
    return {tuner_id: trial for tuner_id, trial in oracle.ongoing_trials.items() if trial.status == running}


def _forget_ended_ongoing_trials(oracle) -> None:
    """A resumed search must not train a finished trial again. KerasTuner's ``Oracle.end_trial`` saves
    ``oracle.json`` before it removes the ended trial from ``ongoing_trials``, and ``Oracle.reload``
    sends every ongoing trial to the retry queue; so a project killed between that save and the next
    one (caught by a flaky kill-and-resume test) trains a COMPLETED trial again. Its ``trial.json``,
    written first, knows better: only trials still RUNNING there (killed mid-run) or INVALID (a failure
    KerasTuner retries) stay queued."""
    status = kt.engine.trial.TrialStatus
    retry = (status.RUNNING, status.INVALID)
    oracle._retry_queue = [t for t in oracle._retry_queue if t not in oracle.trials or oracle.trials[t].status in retry]


def _write_oracle_state_atomically(oracle) -> None:
    """KerasTuner's oracle writes ``oracle.json`` and each ``trial.json`` in place, so a kill
    mid-write leaves a file no resume can read; these write the same JSON atomically (and without
    the ended trial ``end_trial`` still lists as ongoing when it saves: see ``_forget_ended_ongoing_trials``)."""

    def save():
        state = oracle.get_state()
        state["ongoing_trials"] = {tuner_id: trial.trial_id for tuner_id, trial in _ongoing_and_running(oracle).items()}
        rundir.write_text(oracle._get_oracle_fname(), json.dumps(state))

    def save_trial(trial):
        rundir.write_text(
            os.path.join(oracle._get_trial_dir(trial.trial_id), "trial.json"), json.dumps(trial.get_state())
        )

    oracle.save = save
    oracle._save_trial = save_trial


def tuner_for(
    config: TuneConfig, pipelines, hyperparameters, project_name: str, precision: str, role, distribution_strategy
):
    """The tuner a ``TuneConfig`` asks for: the hypermodel over the registered builder (trained on
    ``pipelines``) and ``make_tuner`` over the search space ``hyperparameters``, every tuner setting read from
    ``config`` here (a new tuner option: its default in ``TuneConfig``, its flag in ``tfcourse.tune``, its use
    here and in ``make_tuner``)."""
    hypermodel = make_hypermodel(
        config.model,
        pipelines.input_shape,
        pipelines.num_classes,
        config.steps_per_execution,
        make_train=pipelines.make_train,
        batch_size=pipelines.batch_size,
        seed=config.seed,
        dtype_policy=precision,
    )
    return make_tuner(
        config.tuner,
        hypermodel,
        objective=config.objective,
        max_trials=config.max_trials,
        max_epochs=config.max_epochs,
        factor=config.factor,
        executions_per_trial=config.executions_per_trial,
        directory=config.directory,
        project_name=project_name,
        overwrite=config.overwrite and role != "worker",
        seed=config.seed,
        hyperparameters=hyperparameters,
        distribution_strategy=distribution_strategy,
        max_minutes=config.max_minutes,
        keep_checkpoints=config.keep_checkpoints,
    )


def run_search(
    tuner,
    pipelines,
    epochs: int,
    patience: int = 3,
    verbose: Any = "auto",
    log_dir: Optional[str] = None,
    lr_schedule: str = "plateau",
) -> bool:
    """Runs ``tuner.search`` on the train pipeline, scored on validation (never on test).

    Each trial gets ``fit.standard_callbacks`` (learning-rate cut on plateau, or with
    ``lr_schedule="cosine"`` a cosine decay over ``epochs``, Hyperband's ``max_epochs``; early
    stopping on ``val_loss``), as a ``tfcourse.train`` run does, and with ``log_dir`` a
    TensorBoard callback: KerasTuner then logs each trial under ``log_dir/<trial>/execution<i>``
    with the HParams plugin. ``epochs`` is per trial for RandomSearch/Bayesian; Hyperband sets
    its own.

    Returns:
        ``True`` if the search ran to its end, ``False`` if the time budget stopped it.
    """
    hyperband = isinstance(tuner, kt.Hyperband)
    schedule_epochs = (tuner.oracle.max_epochs if hyperband else epochs) if lr_schedule == "cosine" else None
    callbacks = fit.standard_callbacks(None, patience, schedule_epochs=schedule_epochs)
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir))
    kwargs = dict(validation_data=pipelines.val, callbacks=callbacks, verbose=verbose, shuffle=False)
    if not hyperband:
        kwargs["epochs"] = epochs
    try:
        tuner.search(pipelines.train, **kwargs)
    except BudgetSpent:
        tuner.on_search_end()
        return False
    except RuntimeError as error:  # KerasTuner's Oracle._check_consecutive_failures
        if "consecutive failures" not in str(error):
            raise
        last = (str(error).strip().splitlines() or [""])[-1]
        raise ValueError(
            f"the search stopped: {tuner.oracle.max_consecutive_failed_trials} trials in a row failed, the last "
            f"with {last!r}; each failed trial's traceback is in its folder "
            f"({os.path.join(tuner.project_dir, 'trial_*', TRACEBACK_FILE)}). Fix what it names (narrow the space "
            "with --space, or check the data) and run the same command again: completed trials are kept."
        ) from None
    return True
