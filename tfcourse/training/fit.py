"""Compile a model from its hyperparameters and train it: optimizer, callbacks, schedules, divergence checks.

One trial of a tuner and one ``tfcourse.train`` run are the same thing: ``compile_model``
then ``model.fit`` with ``standard_callbacks``. The optimizer and learning rate are
hyperparameters like any other, declared here so every model shares them.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from typing import Any, List, Mapping, Optional, Sequence

import keras

from tfcourse.config import RECIPES, Recipe
from tfcourse.models import describe_non_finite, non_finite_weights
from tfcourse.models.layers import OneCycle, SmoothedSparseCategoricalCrossentropy

OPTIMIZERS = ["adam", "sgd", "rmsprop"]
PLATEAU_FACTOR = 0.3  # the learning rate is cut to this share on a val_loss plateau


def make_optimizer(hp, learning_rate_scale: float = 1.0):
    """The optimizer named by ``hp`` (``optimizer``, ``learning_rate``; log-sampled 1e-4..1e-2).

    Args:
        learning_rate_scale: Multiplies the learning rate (e.g. 0.1 for fine-tuning).
    """
    name = hp.Choice("optimizer", OPTIMIZERS, default="adam")
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3) * learning_rate_scale
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)
    return keras.optimizers.RMSprop(learning_rate)


def get_recipe(name: str) -> Recipe:
    """A recipe by name; ``ValueError`` naming the valid ones otherwise."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; use one of {', '.join(RECIPES)}.")
    return RECIPES[name]


def recipe_optimizer(recipe: Recipe, total_steps: int, peak_learning_rate: Optional[float] = None):
    """The optimizer of a recipe that brings its own (``optimizer != "hp"``), with its learning-rate curve.

    Args:
        total_steps: Training steps of the run (the one-cycle curve spans them).
        peak_learning_rate: Overrides the recipe's peak.
    """
    if recipe.optimizer != "sgd_nesterov" or recipe.schedule != "onecycle":
        raise ValueError(f"Recipe {recipe.name!r} takes its optimizer from the hyperparameters (make_optimizer).")
    schedule = OneCycle(peak_learning_rate or recipe.peak_learning_rate, total_steps, recipe.warmup_fraction)
    return keras.optimizers.SGD(schedule, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay)


@contextlib.contextmanager
def dtype_policy(policy: str):
    """Builds models under Keras' global dtype ``policy`` (e.g. ``mixed_bfloat16``), then restores the previous one.

    The policy is read when a layer is made, so the model keeps it after the block; set it after any
    ``keras.backend.clear_session()``, which resets it.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def compile_model(
    model,
    hp,
    steps_per_execution: int = 1,
    learning_rate_scale: float = 1.0,
    jit_compile: bool = False,
    binary: bool = False,
    optimizer=None,
    label_smoothing: float = 0.0,
    build_optimizer: bool = True,
):
    """Compiles ``model`` for integer labels and logits outputs, from ``hp``.

    Args:
        jit_compile: XLA-compile the training step (off: measured slower on CPUs here,
            ``benchmarks/pipeline_throughput.py``).
        binary: The model has one output, the positive class's log-odds (a two-class table):
            binary cross-entropy, accuracy at log-odds 0 (probability 0.5) and ROC-AUC.
        optimizer: A recipe's own optimizer (``recipe_optimizer``); ``None``: ``make_optimizer(hp)``
            (which also declares the optimizer hyperparameters).
        label_smoothing: Of the (multi-class) loss; 0 is plain cross-entropy.
        build_optimizer: Create the optimizer's variables now. Keras (with no distribution strategy)
            otherwise creates them while tracing the first training step, and a ``tf.function`` that
            creates variables is traced a second time: the first epoch then pays the tracing twice
            (``benchmarks/trace_once.py``). ``False`` keeps Keras' own behaviour (for that benchmark).
    """
    if binary:
        loss = keras.losses.BinaryCrossentropy(from_logits=True)
        metrics = [
            keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
            keras.metrics.AUC(from_logits=True, name="auc"),
        ]
    elif label_smoothing:
        loss = SmoothedSparseCategoricalCrossentropy(label_smoothing)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    else:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    model.compile(
        optimizer=optimizer if optimizer is not None else make_optimizer(hp, learning_rate_scale),
        loss=loss,
        metrics=metrics,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    if build_optimizer and model.built:
        model.optimizer.build(model.trainable_variables)
    return model


# An epoch shorter than this many graph calls runs one step per call instead: the multi-step loop is a second
# graph to trace, which a short epoch does not win back (measured: a ResNet50 trial on 256 digits 40.5/43.4 s
# with 8 steps per call, 33.2/36.0 s with 1; a tiny mlp trial ~15% faster).
SHORT_EPOCH_CALLS = 4


def steps_per_execution_for(requested: int, steps_per_epoch: Optional[int]) -> int:
    """``requested``, or 1 when an epoch has fewer than ``SHORT_EPOCH_CALLS * requested`` steps (unknown: kept)."""
    if steps_per_epoch is not None and 0 <= steps_per_epoch < SHORT_EPOCH_CALLS * requested:
        return 1
    return requested


def cosine_schedule(epochs: int, first_epoch: int = 0):
    """Per-epoch cosine decay of the compiled learning rate, from its value to near 0 over ``epochs``.

    The starting rate is read afresh at the start of every ``fit`` and kept on the callback
    itself, so the deep copies KerasTuner makes of a search's callbacks each decay their own
    trial's learning rate. Epochs count as ``fit`` numbers them (from ``initial_epoch``), so a
    Hyperband trial resumed at epoch 4 of a 10-epoch decay goes on where its curve stood.

    Args:
        first_epoch: The epoch index the decay starts at (``initial_epoch`` of a later fit).
    """

    class CosineDecay(keras.callbacks.LearningRateScheduler):
        def __init__(self):
            super().__init__(self.rate)
            self.start_rate = None

        def on_train_begin(self, logs=None):
            self.start_rate = None

        def rate(self, epoch, learning_rate):
            if self.start_rate is None:
                self.start_rate = float(learning_rate)
            return self.start_rate * 0.5 * (1 + math.cos(math.pi * (epoch - first_epoch) / epochs))

    return CosineDecay()


def training_timer():
    """A callback that adds up the seconds spent in training steps only (validation excluded).

    Its ``epoch_seconds`` list has one entry per epoch: from the epoch's start to the start
    of its validation pass (or its end, without validation). Throughput from these is what the
    hardware did on training steps, which ``fit``'s wall time (validation included) is not.
    """

    class TrainingTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_seconds: List[float] = []
            self._start = None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def _stop(self):
            if self._start is not None:
                self.epoch_seconds.append(time.perf_counter() - self._start)
                self._start = None

        def on_test_begin(self, logs=None):  # fit's validation pass; a no-op outside an epoch
            self._stop()

        def on_epoch_end(self, epoch, logs=None):
            self._stop()

    return TrainingTimer()


def standard_callbacks(
    run_dir: Optional[str],
    patience: int,
    monitor: str = "val_loss",
    fixed_epochs: Optional[int] = None,
    append: bool = False,
    first_epoch: int = 0,
    schedule_epochs: Optional[int] = None,
    per_step_schedule: bool = False,
) -> List:
    """Divergence stop, learning-rate schedule, early stopping, TensorBoard and CSV logs of a run or a trial.

    ``TerminateOnNaN`` ends training at the first non-finite batch loss; ``check_finite``
    then turns that into an error (a diverged model must not be saved, exported or scored).

    With validation data (``fixed_epochs=None``) the learning rate is cut to 30% after
    ``patience // 2`` epochs without ``monitor`` improvement, or, given ``schedule_epochs``,
    follows a cosine decay over that many epochs; either way training stops after
    ``patience`` epochs without improvement with the best weights restored. Without
    validation data (a final fit on train + val for a known number of epochs) the learning
    rate follows a cosine decay over ``fixed_epochs`` and every epoch runs. ``append``
    continues an existing ``history.csv`` (a second phase of the same run). ``per_step_schedule``: the
    optimizer carries its own curve (a recipe's one-cycle), so there is no per-epoch schedule and no
    early stopping: every epoch runs, validated when there is validation data.
    """
    callbacks = [keras.callbacks.TerminateOnNaN()]
    cosine_epochs = fixed_epochs or schedule_epochs
    if per_step_schedule:  # the optimizer's own curve: nothing per epoch
        pass
    elif cosine_epochs:
        callbacks.append(cosine_schedule(cosine_epochs, first_epoch))
    else:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, factor=PLATEAU_FACTOR, patience=max(1, patience // 2), min_lr=1e-5
            )
        )
    if fixed_epochs is None and not per_step_schedule:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True))
    if run_dir is not None:
        callbacks += [
            keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "logs")),
            keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=append),
        ]
    return callbacks


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the model's weights are garbage."""


def check_finite(history: Mapping[str, Sequence[Any]], what: str = "Training", model=None) -> None:
    """Raises ``TrainingDiverged`` if any recorded loss is NaN or infinite, or any weight of ``model``.

    ``TerminateOnNaN`` stops ``fit`` at the first non-finite batch loss; the epoch's logged
    loss is then non-finite too, so the history tells. A loss can stay finite (1e27) while weights
    overflow, so the weights are checked as well.
    """
    for key in [key for key in history if "loss" in key]:
        for epoch, value in enumerate(history.get(key) or [], start=1):
            if value is not None and not math.isfinite(float(value)):
                raise TrainingDiverged(
                    f"{what} diverged: {key} became {value} in epoch {epoch}, so the model's weights are not "
                    "usable and nothing was saved. Lower the learning rate (--hp learning_rate=..., "
                    "--fine-tune-lr-scale) or turn on batch norm, and run again."
                )
    found = non_finite_weights(model) if model is not None else []
    if found:
        raise TrainingDiverged(
            f"{what} diverged: the model holds {describe_non_finite(found)} although the loss stayed finite, so "
            "it predicts garbage and nothing was saved. Lower the learning rate (--hp learning_rate=..., "
            "--fine-tune-lr-scale) and run again."
        )


def check_finite_outputs(outputs, what: str = "test") -> None:
    """Raises ``TrainingDiverged`` if any of a model's outputs (logits) on the ``what`` split is not finite."""
    import numpy as np

    values = np.asarray(outputs, dtype=np.float64)
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        rows = int(np.count_nonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1)))
        raise TrainingDiverged(
            f"The trained model's outputs on {rows} of {len(values)} {what} examples are not finite (NaN or "
            "infinite): training diverged, so nothing was saved. Lower the learning rate and run again."
        )
