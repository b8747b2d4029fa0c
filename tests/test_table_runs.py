"""A feed-forward network on a table as a run folder (issue 19, in progress): Seattle's rain tomorrow end
to end, the raw-row model saved and reloaded, class weights, the time split, bad settings and a failure
while writing."""

import dataclasses
import json
import os

import numpy as np
import pytest

from tfcourse import table_runs, tabular, tabular_features
from tfcourse.config import TableConfig, TableDataConfig


def table_config(**settings):
    """A ``TableConfig`` from flat settings: the table's own go to its ``TableDataConfig``."""
    fields = {f.name for f in dataclasses.fields(TableDataConfig)}
    data = {k: v for k, v in settings.items() if k in fields}
    return TableConfig(data=TableDataConfig(**data), **{k: v for k, v in settings.items() if k not in fields})


@pytest.fixture(scope="module")
def seattle_run(tmp_path_factory):
    return table_runs.train_table(TableConfig(output_dir=str(tmp_path_factory.mktemp("tables") / "seattle")))


@pytest.mark.slow
def test_seattle_rain_tomorrow_beats_the_majority_and_serves_raw_rows(seattle_run, tmp_path):
    import tensorflow as tf

    run = seattle_run
    assert {"config.json", "history.json", "metrics.json", "model.keras", "predictions.npz"} <= set(
        os.listdir(run.run_dir)
    )
    metrics = json.load(open(os.path.join(run.run_dir, "metrics.json")))
    assert metrics["roc_auc"] > 0.75  # chance is 0.5
    assert metrics["accuracy"] > metrics["majority_baseline_accuracy"] + 0.05
    choice = metrics["threshold_choice"]
    assert 0 < metrics["threshold"] == choice["threshold"] < 1 and choice["value"] >= choice["value_at_0.5"]
    report = metrics["classification_report"]["Yes"]
    assert report["support"] == int(np.sum(run.dataset.y[run.splits.test] == 1))
    record = json.load(open(os.path.join(run.run_dir, "config.json")))
    assert record["data"]["columns"]["weather"] == "categorical" and record["data"]["split_sizes"]["test"] == 146

    rows = run.splits.test[:5]
    raw = {name: values[:, None] for name, values in tabular_features.model_inputs(run.dataset, rows).items()}
    raw["precipitation"][0, 0] = np.nan  # a missing value
    raw["weather"][1, 0] = "hail"  # a category training never saw
    batches = tf.data.Dataset.from_tensor_slices(raw).batch(5)
    expected = np.asarray(run.model.predict(batches, verbose=0))
    loaded = table_runs.load_run_model(run.run_dir)
    np.testing.assert_allclose(np.asarray(loaded.predict(batches, verbose=0)), expected, rtol=1e-6)
    assert np.isfinite(expected).all()


@pytest.mark.slow
def test_the_time_split_trains_on_the_past(tmp_path):
    run = table_runs.train_table(table_config(split="time", epochs=3, output_dir=str(tmp_path / "time")))
    times = run.dataset.times
    assert times[run.splits.train].max() < times[run.splits.val].min() < times[run.splits.test].min()
    assert json.load(open(os.path.join(run.run_dir, "config.json")))["config"]["data"]["split"] == "time"


def test_balanced_class_weights():
    weights = tabular_features.class_weights
    assert weights(np.array([0, 0, 0, 1]), 2) == {0: pytest.approx(4 / 6), 1: pytest.approx(2.0)}
    assert weights(np.array([0, 2, 2, 2, 2, 2]), 3) == {0: 2.0, 2: pytest.approx(0.4)}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(class_weight="auto"), "--class-weight 'auto': use balanced"),
        (dict(threshold_metric="auc"), "--threshold-metric 'auc'"),
        (dict(epochs=0), "epochs must be a positive integer"),
        (dict(dataset="csv:no/such.csv", target="y"), "no such CSV file"),
        (dict(target="weather"), "seattle_weather has a fixed task"),
        (dict(categorical=("wind",), positive_class="No"), "leave out --categorical, --positive-class"),
        (dict(hp={"unit": 2}), "Model 'tabular_mlp' has no hyperparameter 'unit'; it has: activation, batch_norm"),
        (dict(hp={"units": 5000}), "Hyperparameter units=5000 for model 'tabular_mlp' must be"),
    ],
)
def test_bad_settings_write_nothing(change, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        table_runs.train_table(table_config(output_dir=str(tmp_path / "run"), **change))
    assert os.listdir(tmp_path) == []


def test_an_existing_folder_is_refused_and_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        table_runs.train_table(TableConfig(output_dir=str(tmp_path / "taken")))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tabular_features, "raw_row_model", full_disk)
    with pytest.raises(OSError):
        table_runs.train_table(TableConfig(epochs=1, output_dir=str(tmp_path / "run")))
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_the_positive_class_is_label_1_even_when_it_sorts_first(tmp_path):
    """``--positive-class`` puts the named class on the sigmoid's side (label 1) whatever its spelling."""
    rows = ["x,label"] + [f"{i},{'a_rain' if i % 3 == 0 else 'b_dry'}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    config = TableDataConfig(dataset=f"csv:{tmp_path / 't.csv'}", target="label", positive_class="a_rain")
    dataset, _ = table_runs.load(config, seed=0)
    assert dataset.class_names == ("b_dry", "a_rain") and dataset.y[:3].tolist() == [1, 0, 0]
    assert isinstance(dataset, tabular.TabularDataset)


# ----------------------------------------------------------------------------- python -m tfcourse.train on a table


def test_table_and_image_defaults_are_one_set():
    from tfcourse.config import DataConfig, TrainConfig

    table, train = TableConfig(), TrainConfig()
    assert (table.epochs, table.patience, table.seed) == (train.epochs, train.patience, train.seed)
    assert table.data.batch_size == DataConfig().batch_size and table.export_dir == train.export_dir
    assert (table.data.val_fraction, table.data.test_fraction) == (train.data.val_fraction, train.data.test_fraction)


@pytest.mark.slow
def test_train_cli_on_a_csv(tmp_path, capsys):
    from tfcourse import train

    rows = ["day,humidity,wind_dir,rain"]
    rng = np.random.default_rng(0)
    for i in range(300):
        humidity = rng.uniform(10, 100)
        rain = "Yes" if humidity + rng.normal(0, 15) > 70 else "No"
        cell = "NA" if i % 10 == 0 else f"{humidity:.1f}"
        rows.append(f"2020-{1 + i // 28:02d}-{1 + i % 28:02d},{cell},{'NESW'[i % 4]},{rain}")
    (tmp_path / "w.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    argv = ["--dataset", f"csv:{tmp_path / 'w.csv'}", "--target", "rain", "--output-dir", str(out), "--verbose", "0"]
    assert train.main(argv + ["--split", "time", "--time-column", "day", "--class-weight", "balanced"]) == 0
    printed = capsys.readouterr().out
    assert f"\n{out}: test ROC-AUC " in printed
    record = json.load(open(out / "config.json"))
    assert record["data"]["columns"] == {"humidity": "numeric", "wind_dir": "categorical"}  # the day dates rows
    assert record["config"]["data"]["split"] == "time" and record["data"]["class_weight"] is not None
    assert json.load(open(out / "metrics.json"))["roc_auc"] > 0.7  # humidity tells


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "seattle_weather", "--augment"], "--augment does not apply to a table"),
        (["--dataset", "seattle_weather", "--model", "cnn", "--classes", "0-1"], "--model, --classes do not apply"),
        (["--dataset", "digits", "--model", "tabular_mlp"], "--model tabular_mlp applies to a table"),
        (["--dataset", "seattle_weather", "--split", "official"], "a table has no official test set"),
        (["--dataset", "digits", "--target", "y"], "--target applies to a table"),
        (["--dataset", "digits", "--split", "time"], "--split time applies to a table"),
        (["--dataset", "csv:CSV", "--target", "nope"], "--target: no column named 'nope'"),
        (["--dataset", "csv:CSV"], "needs --target COLUMN"),
        (["--dataset", "csv:CSV", "--target", "b", "--features", ","], "expected column names"),
        (["--dataset", "csv:EMPTY", "--target", "b"], "is empty"),
    ],
)
def test_train_cli_refuses_with_exit_2_and_writes_nothing(argv, message, tmp_path, capsys):
    from tfcourse import train

    (tmp_path / "t.csv").write_text("a,b\n1,x\n2,y\n3,x\n")
    (tmp_path / "e.csv").write_text("")
    argv = [a.replace("CSV", str(tmp_path / "t.csv")).replace("EMPTY", str(tmp_path / "e.csv")) for a in argv]
    with pytest.raises(SystemExit) as done:
        train.main(argv + ["--output-dir", str(tmp_path / "run")])
    assert done.value.code == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["e.csv", "t.csv"]


def test_a_three_class_target_gets_a_softmax_and_its_report(tmp_path):
    rng = np.random.default_rng(4)
    rows = ["x,kind"] + [f"{v:.2f},{'low' if v < 0.33 else 'mid' if v < 0.66 else 'high'}" for v in rng.random(240)]
    (tmp_path / "k.csv").write_text("\n".join(rows) + "\n")
    config = table_config(dataset=f"csv:{tmp_path / 'k.csv'}", target="kind", epochs=40, output_dir=str(tmp_path / "r"))
    run = table_runs.train_table(config)
    assert run.model.output_shape == (None, 3)
    assert set(run.metrics["classification_report"]) >= {"low", "mid", "high", "macro avg"}
    assert run.metrics["test_accuracy"] > 0.6  # x alone decides the class; chance is a third
    assert "macro F1" in table_runs.summary(run)
