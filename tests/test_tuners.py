"""Real KerasTuner searches on tiny real data (scikit-learn digits), 1-2 epochs per trial."""

import csv
import json
import math
import os

import keras_tuner
import pytest

from tfcourse import data
from tfcourse.config import DataConfig
from tfcourse.pages import search_page
from tfcourse.training import fit
from tfcourse.tuning import search_state, tuners


@pytest.fixture(scope="module")
def digits_pipelines():
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    return data.make_pipelines(dataset, splits, DataConfig(batch_size=64), seed=0)


@pytest.fixture(scope="module")
def few_digits_pipelines():
    """256 training and 64 validation digits: enough for a trial of a zoo model to run (ResNet50's epoch on
    all 1,437 training digits at 32x32 costs more than building it)."""
    import dataclasses

    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    few = dataclasses.replace(splits, train=splits.train[:256], val=splits.val[:64])
    return data.make_pipelines(dataset, few, DataConfig(batch_size=64), seed=0)


def search(kind, pipelines, tmp_path, hyperparameters=None, max_trials=2, model="mlp", seed=1):
    hypermodel = tuners.make_hypermodel(model, pipelines.input_shape, pipelines.num_classes)
    tuner = tuners.make_tuner(
        kind,
        hypermodel,
        max_trials=max_trials,
        max_epochs=2,
        factor=2,
        directory=str(tmp_path),
        project_name=kind,
        hyperparameters=hyperparameters,
        seed=seed,
    )
    tuners.run_search(tuner, pipelines, epochs=1, verbose=0)
    return tuner


@pytest.mark.parametrize("kind", tuners.TUNER_KINDS)
def test_each_tuner_runs_and_summaries_parse(kind, digits_pipelines, tmp_path):
    tuner = search(kind, digits_pipelines, tmp_path)
    trials = tuner.oracle.trials
    assert len(trials) >= 2
    paths = search_page.write_trial_files(str(tmp_path / kind))
    paths.update(search_page.write_search_page(str(tmp_path / kind)))
    with open(paths["trials.csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["trial_id"] for row in rows] == sorted(trials, key=lambda t: (len(t), t))
    parsed = json.loads(open(paths["trials.json"]).read())
    for row in parsed:
        assert row["status"] == "COMPLETED" and row["score"] > 0.3  # learnt something: chance is 0.1
        assert row["wall_seconds"] > 0 and row["epochs_trained"] >= 1
        assert {"hp/units", "hp/learning_rate", "hp/optimizer"} <= set(row)
        assert row["score"] == pytest.approx(trials[row["trial_id"]].score)
    best = max(parsed, key=lambda row: row["score"])
    summary = open(paths["search.md"]).read()  # the search's one summary
    assert f"| 1 | {best['trial_id']} | COMPLETED | {best['score']:.4f} |" in summary
    assert "## Search space" in summary and "| learning_rate | Float |" in summary
    assert not os.path.exists(tmp_path / kind / "summary.md")


def test_failing_trials_are_recorded_and_the_search_goes_on(digits_pipelines, tmp_path):
    hp = keras_tuner.HyperParameters()
    hp.Choice("conv_blocks", [1, 4])  # 4 blocks cannot fit an 8x8 input: those trials fail
    # seed 2 draws 4 blocks for trials 0, 2, 4 and 5 and 1 block for trials 1 and 3
    tuner = search("random", digits_pipelines, tmp_path, hyperparameters=hp, max_trials=6, model="cnn", seed=2)
    rows = search_state.trial_rows(str(tmp_path / "random"))
    failed = [row for row in rows if row["status"] == "FAILED"]
    completed = [row for row in rows if row["status"] == "COMPLETED"]
    assert failed and completed
    assert all(row["hp/conv_blocks"] == 4 for row in failed)
    assert all("use at most 3 blocks" in row["message"] for row in failed)
    assert all(row["hp/conv_blocks"] == 1 for row in completed)
    assert "| FAILED |" in open(search_page.write_search_page(str(tmp_path / "random"))["search.md"]).read()
    assert tuner.get_best_hyperparameters()[0]["conv_blocks"] == 1


def test_summary_of_a_folder_without_trials_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="holds no KerasTuner trials"):
        search_state.trial_rows(str(tmp_path))


def test_unknown_tuner_kind():
    with pytest.raises(ValueError, match="Unknown tuner 'grid'; use one of random, hyperband, bayesian"):
        tuners.make_tuner("grid", None)


@pytest.mark.parametrize(
    "model, space",
    [
        ("vgg", {"blocks": [1, 2], "filters": [16, 32]}),  # 8x8 digits: at most 3 pooling blocks
        ("resnet_small", {"width": [8, 16], "blocks_per_stage": [1, 2]}),
        ("resnet50", {"image_size": [32]}),
        ("attention", {"patch_size": [2, 4], "depth": [1], "embed_dim": [32]}),
    ],
)
def test_zoo_models_are_tunable(model, space, few_digits_pipelines, tmp_path):
    """The zoo's builders serve KerasTuner unchanged: their own hp calls are the search space."""
    hp = keras_tuner.HyperParameters()
    for name, values in space.items():
        hp.Choice(name, values)
    combinations = math.prod(len(values) for values in space.values())  # resnet50: one trial (~40 s) is enough
    tuner = search(
        "random", few_digits_pipelines, tmp_path, hyperparameters=hp, max_trials=min(2, combinations), model=model
    )
    rows = search_state.trial_rows(str(tmp_path / "random"))
    assert rows and all(row["status"] == "COMPLETED" for row in rows)
    for name, values in space.items():
        assert all(row[f"hp/{name}"] in values for row in rows)
    declared = {entry.name for entry in tuner.oracle.hyperparameters.space}
    assert {"learning_rate", "optimizer"} | set(space) <= declared


@pytest.mark.parametrize("best_epochs", [[1, 2], [2, 3], [0, 3, 3], [4]])
def test_best_epoch_of_several_executions_is_kerastuners_own(best_epochs):
    """KerasTuner rounds the executions' mean best epoch down; tfcourse's best epoch (what --retrain
    trains for) must be the same epoch, 1-based."""
    import keras
    import keras_tuner as kt
    from keras_tuner.src.engine import tuner_utils

    histories = []
    for best in best_epochs:
        history = keras.callbacks.History()
        history.history = {
            "val_accuracy": [0.5 + 0.1 * epoch if epoch <= best else 0.4 for epoch in range(6)],
            "loss": [1.0] * 6,
        }
        histories.append(history)
    objective = kt.Objective("val_accuracy", "max")
    expected = tuner_utils.get_best_step(histories, objective) + 1
    assert search_state.best_epoch([h.history for h in histories], "val_accuracy", "max") == expected
    assert (
        search_state.best_epoch([h.history for h in histories], "val_accuracy", "max", initial_epoch=4) == expected + 4
    )


def test_a_trial_whose_loss_turns_nan_is_recorded_failed(tmp_path):
    """A diverging trial must not be scored (a NaN score would rank as anything); it is FAILED with
    the reason, and TerminateOnNaN stopped it in its first epoch."""
    import numpy as np
    import tensorflow as tf

    images = np.random.default_rng(0).random((64, 8, 8, 1), dtype=np.float32)
    images[5, 3, 3, 0] = np.inf  # one poisoned pixel: the loss becomes NaN at its batch
    labels = np.arange(64) % 10
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    hypermodel = tuners.make_hypermodel("mlp", (8, 8, 1), 10)
    tuner = tuners.make_tuner("random", hypermodel, max_trials=1, directory=str(tmp_path), project_name="nan")
    tuner.search(train, validation_data=train, epochs=3, verbose=0, callbacks=fit.standard_callbacks(None, 3))
    (trial,) = tuner.oracle.trials.values()
    assert trial.status == "FAILED" and trial.score is None
    assert "diverged" in trial.message and "became nan in epoch 1" in trial.message
    rows = search_state.trial_rows(str(tmp_path / "nan"))
    assert rows[0]["status"] == "FAILED" and "diverged" in rows[0]["message"]


def test_oracle_json_never_lists_an_ended_trial_as_ongoing(digits_pipelines, tmp_path):
    """KerasTuner's end_trial saves oracle.json while the ended trial is still in ongoing_trials; the file
    tfcourse writes must not say so (a kill right after it would make a resume train the trial again)."""
    hypermodel = tuners.make_hypermodel("mlp", digits_pipelines.input_shape, digits_pipelines.num_classes)
    tuner = tuners.make_tuner("random", hypermodel, max_trials=2, directory=str(tmp_path), project_name="p", seed=1)
    seen = []
    end_trial = tuner.oracle.end_trial

    def end_and_read(trial):
        end_trial(trial)
        seen.append(json.loads((tmp_path / "p" / "oracle.json").read_text())["ongoing_trials"])

    tuner.oracle.end_trial = end_and_read
    tuners.run_search(tuner, digits_pipelines, epochs=1, verbose=0)
    assert seen == [{}, {}]


def test_a_resumed_search_does_not_train_a_finished_trial_again(digits_pipelines, tmp_path):
    """A project whose oracle.json lists a COMPLETED trial as ongoing (what KerasTuner's own save leaves
    between the end of a trial and the start of the next): the resume trains only new trials."""
    search("random", digits_pipelines, tmp_path, max_trials=2)
    project = tmp_path / "random"
    state = json.loads((project / "oracle.json").read_text())
    state["ongoing_trials"] = {"tuner0": "1"}
    (project / "oracle.json").write_text(json.dumps(state))
    stats = (project / "trial_1" / search_state.TRIAL_STATS_FILE).read_text()
    tuner = search("random", digits_pipelines, tmp_path, max_trials=3)
    assert (project / "trial_1" / search_state.TRIAL_STATS_FILE).read_text() == stats  # not trained again
    assert sorted(tuner.oracle.trials) == ["0", "1", "2"]
    assert all(trial.status == "COMPLETED" for trial in tuner.oracle.trials.values())


def test_a_trial_on_a_short_epoch_runs_one_step_per_graph_call(few_digits_pipelines):
    """A trial's graphs are traced afresh; on an epoch of few steps the multi-step loop costs more tracing
    than it saves, so such a trial runs one step per call (a long epoch keeps ``steps_per_execution``)."""
    hypermodel = tuners.make_hypermodel("mlp", (8, 8, 1), 10, steps_per_execution=2)
    long_epoch = few_digits_pipelines.train.unbatch().batch(8)  # 256 images: 32 steps >= 4 calls of 2
    for pipeline, expected in ((few_digits_pipelines.train, 1), (long_epoch, 2)):  # 4 steps: < 4 calls of 2
        hp = keras_tuner.HyperParameters()
        model = hypermodel.build(hp)
        assert model.steps_per_execution == 2
        hypermodel.fit(hp, model, pipeline, validation_data=few_digits_pipelines.val, epochs=1, verbose=0)
        assert model.steps_per_execution == expected
