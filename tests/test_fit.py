import keras
import numpy as np
import pytest

from tfcourse import data
from tfcourse.config import DataConfig
from tfcourse.evaluation import evaluate
from tfcourse.models import build_model
from tfcourse.training import fit
from tfcourse.tuning import hparams


def test_evaluate_model_agrees_with_keras_and_counts_per_class():
    keras.utils.set_random_seed(0)
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    pipes = data.make_pipelines(dataset, splits, DataConfig(batch_size=64), seed=0)
    hp = hparams.make_hyperparameters("mlp", {}, (8, 8, 1), 10)
    model = fit.compile_model(build_model("mlp", hp, (8, 8, 1), 10), hp)
    model.fit(pipes.train, epochs=2, shuffle=False, verbose=0)
    ours = evaluate.evaluate_model(model, pipes.test, pipes.class_names)
    keras_numbers = model.evaluate(pipes.test, verbose=0, return_dict=True)
    assert ours["test_loss"] == pytest.approx(keras_numbers["loss"], rel=1e-4)
    assert ours["test_accuracy"] == pytest.approx(keras_numbers["accuracy"], abs=1e-6)
    assert ours["test_examples"] == len(splits.test)

    _, y = dataset.pooled()
    predictions = np.argmax(model.predict(pipes.test, verbose=0), axis=1)
    for label, name in enumerate(pipes.class_names):
        mask = y[splits.test] == label
        assert ours["per_class_accuracy"][name] == pytest.approx((predictions[mask] == label).mean())


def test_callbacks_decay_then_stop(tmp_path):
    callbacks = fit.standard_callbacks(str(tmp_path), patience=4)
    kinds = [type(callback).__name__ for callback in callbacks]
    assert kinds == ["TerminateOnNaN", "ReduceLROnPlateau", "EarlyStopping", "TensorBoard", "CSVLogger"]
    cut, stop = callbacks[1], callbacks[2]
    assert cut.patience == 2 and cut.factor == pytest.approx(0.3) and cut.monitor == "val_loss"
    assert stop.patience == 4 and stop.restore_best_weights
    assert [type(c).__name__ for c in fit.standard_callbacks(None, patience=1)] == [
        "TerminateOnNaN",
        "ReduceLROnPlateau",
        "EarlyStopping",
    ]


def test_cosine_schedule_replaces_the_plateau_cut_but_keeps_early_stopping():
    callbacks = fit.standard_callbacks(None, patience=6, schedule_epochs=10)
    assert [type(c).__name__ for c in callbacks] == ["TerminateOnNaN", "CosineDecay", "EarlyStopping"]
    assert callbacks[2].patience == 6 and callbacks[2].restore_best_weights
    schedule = callbacks[1].schedule
    rates = [schedule(epoch, 1e-3) for epoch in range(10)]
    assert rates[0] == pytest.approx(1e-3) and rates[5] == pytest.approx(5e-4)
    assert all(a > b for a, b in zip(rates, rates[1:])) and rates[-1] < 3e-5


def test_cosine_schedule_copies_decay_their_own_rate():
    # KerasTuner deep-copies a search's callbacks for every trial; each copy must start from its
    # own trial's learning rate, not from the first trial's.
    import copy

    first = fit.cosine_schedule(10)
    second = copy.deepcopy(first)
    assert first.schedule(0, 1e-3) == pytest.approx(1e-3)
    assert second.schedule(0, 1e-2) == pytest.approx(1e-2)
    assert second.schedule(5, 0.5) == pytest.approx(5e-3) and first.schedule(5, 0.5) == pytest.approx(5e-4)
    first.on_train_begin()  # a new fit reads its starting rate afresh
    assert first.schedule(5, 4e-3) == pytest.approx(2e-3)


@pytest.mark.parametrize("recipe", ["hp", "fast"])
def test_the_first_training_step_is_traced_once_and_trains_as_keras_would(recipe):
    """compile_model builds the optimizer's variables, so Keras does not create them inside the first
    traced step (a tf.function that creates variables is traced twice). Same weights as Keras' own way."""
    x = np.random.default_rng(0).random((96, 8, 8, 1), dtype=np.float32)
    y = np.arange(96) % 10
    weights, traces = {}, {}
    for build_optimizer in (True, False):
        keras.utils.set_random_seed(1)
        hp = hparams.make_hyperparameters("cnn", {"batch_norm": True}, (8, 8, 1), 10)
        model = build_model("cnn", hp, (8, 8, 1), 10)
        optimizer = fit.recipe_optimizer(fit.get_recipe("fast"), 6) if recipe == "fast" else None
        fit.compile_model(model, hp, optimizer=optimizer, build_optimizer=build_optimizer)
        count = []
        step = model.train_step
        model.train_step = lambda batch, step=step, count=count: count.append(1) or step(batch)  # once per trace
        model.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0)
        weights[build_optimizer], traces[build_optimizer] = model.get_weights(), len(count)
    assert traces == {True: 1, False: 2}
    for ours, keras_own in zip(weights[True], weights[False], strict=True):
        np.testing.assert_allclose(ours, keras_own, rtol=1e-5, atol=1e-6)
