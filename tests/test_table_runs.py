"""A feed-forward network on a table end to end: Seattle's rain tomorrow as a run folder, its report in a
browser, the raw-row export served in a fresh process, class weights, the time split, tune and export on
tables, bad settings and a failure while writing."""

import dataclasses
import json
import os

import numpy as np
import pytest

from tfcourse.config import TableConfig, TableDataConfig
from tfcourse.data import table_data, table_features
from tfcourse.jobs import table_run
from tfcourse.pages import browser
from tfcourse.serving import table_export


def table_config(**settings):
    """A ``TableConfig`` from flat settings: the table's own go to its ``TableDataConfig``."""
    fields = {f.name for f in dataclasses.fields(TableDataConfig)}
    data = {k: v for k, v in settings.items() if k in fields}
    return TableConfig(data=TableDataConfig(**data), **{k: v for k, v in settings.items() if k not in fields})


@pytest.fixture(scope="module")
def seattle_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    return table_run.train_table(
        TableConfig(output_dir=str(root / "seattle"), export=True, export_dir=str(root / "saved_models"))
    )


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
    raw = {name: values[:, None] for name, values in table_features.model_inputs(run.dataset, rows).items()}
    raw["precipitation"][0, 0] = np.nan  # a missing value
    raw["weather"][1, 0] = "hail"  # a category training never saw
    batches = tf.data.Dataset.from_tensor_slices(raw).batch(5)
    expected = np.asarray(run.model.predict(batches, verbose=0))
    loaded = table_run.load_run_model(run.run_dir)
    np.testing.assert_allclose(np.asarray(loaded.predict(batches, verbose=0)), expected, rtol=1e-6)
    assert np.isfinite(expected).all()


# A model server's view: only TensorFlow, the SavedModel and a dict of raw values per column.
SERVE_RAW_ROWS = """
import json, sys, numpy as np, tensorflow as tf
export_dir, rows_path = sys.argv[1:3]
rows = json.load(open(rows_path))
columns = {name: [row[name] for row in rows] for name in rows[0]}
feed = {name: tf.constant(values, tf.string if isinstance(values[0], str) else tf.float32) for name, values in columns.items()}
outputs = tf.saved_model.load(export_dir).signatures["serving_default"](**feed)
print(json.dumps({"probabilities": outputs["probabilities"].numpy().tolist(),
                  "classes": [c.decode() for c in outputs["classes"].numpy()]}))
"""


@pytest.mark.slow
def test_the_export_serves_raw_rows_in_a_fresh_process_as_the_keras_model(seattle_run, tmp_path):
    """Rows as a client would send them (a JSON list of dicts, NaN for a missing number, a weather never
    seen in training) give the Keras model's probabilities, and classes at the threshold stored with it."""
    import subprocess
    import sys

    import tensorflow as tf

    run = seattle_run
    assert json.load(open(os.path.join(run.run_dir, "export.json")))["export_dir"] == os.path.abspath(run.export_dir)
    info = json.load(open(os.path.join(run.export_dir, "assets.extra", "tfcourse.json")))
    assert info["threshold"] == run.metrics["threshold"] and info["inputs"]["weather"] == "categorical"
    rows = [
        {"precipitation": 0.0, "temp_max": 12.2, "temp_min": 5.0, "weather": "sun", "wind": 3.1},
        {"precipitation": float("nan"), "temp_max": 8.9, "temp_min": 2.8, "weather": "rain", "wind": 4.7},
        {"precipitation": 10.9, "temp_max": 10.6, "temp_min": 2.8, "weather": "hail", "wind": 4.5},  # unseen
        {"precipitation": 30.0, "temp_max": 6.0, "temp_min": 1.0, "weather": "", "wind": float("nan")},
    ]
    (tmp_path / "rows.json").write_text(json.dumps(rows))  # Python writes NaN as TF Serving's JSON reads it
    done = subprocess.run(
        [sys.executable, "-c", SERVE_RAW_ROWS, run.export_dir, str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])

    columns = {name: [row[name] for row in rows] for name in rows[0]}
    feed = {n: np.array(v, dtype=np.float32 if n != "weather" else str)[:, None] for n, v in columns.items()}
    logits = run.model.predict(tf.data.Dataset.from_tensor_slices(feed).batch(4), verbose=0)[:, 0]
    positive = 1 / (1 + np.exp(-logits.astype(np.float64)))
    np.testing.assert_allclose(np.array(served["probabilities"])[:, 1], positive, atol=1e-5)
    assert served["classes"] == ["Yes" if p >= run.metrics["threshold"] else "No" for p in positive]
    assert len(set(served["classes"])) == 2  # the rows were chosen to get both answers

    # TF Serving's warm-up requests (its own protos): raw test rows, one per request, through the signature
    from tfcourse.serving import tf_serving

    signature = tf.saved_model.load(run.export_dir).signatures["serving_default"]
    requests = tf_serving.read_warmup(os.path.join(run.export_dir, tf_serving.WARMUP_FILE))
    assert len(requests) == tf_serving.WARMUP_REQUESTS
    for _, signature_name, inputs in requests:
        assert signature_name == "serving_default" and sorted(inputs) == sorted(info["inputs"])
        assert signature(**{column: tf.constant(values) for column, values in inputs.items()})["classes"].shape == (1,)
    body = json.load(open(os.path.join(run.export_dir, tf_serving.REQUEST_FILE)))
    assert sorted(body["instances"][0]) == sorted(info["inputs"])  # row format: {column: value} per row


@pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)
def test_the_run_report_shows_the_curves_and_per_class_numbers_in_a_browser(seattle_run):
    run, metrics = seattle_run, seattle_run.metrics
    figures = sorted(os.listdir(os.path.join(run.run_dir, "figures")))
    assert figures == ["confusion_matrix.png", "history.png", "probability_by_class.png", "roc_pr.png"]
    page = open(os.path.join(run.run_dir, "report.html"), encoding="utf-8").read()
    assert f"<td>ROC-AUC</td><td>{metrics['roc_auc']:.4f}</td>" in page
    yes = metrics["classification_report"]["Yes"]
    assert (
        f"<td>Yes</td><td>{yes['precision']:.4f}</td><td>{yes['recall']:.4f}</td><td>{yes['f1-score']:.4f}</td>" in page
    )
    with np.load(os.path.join(run.run_dir, "predictions.npz")) as saved:
        labels, probabilities = saved["labels"], saved["probabilities"]
    assert labels.tolist() == run.dataset.y[run.splits.test].tolist()
    predicted = (probabilities[:, 1] >= metrics["threshold"]).astype(int)
    (tn, fp), (fn, tp) = metrics["confusion_matrix"]
    assert [tn, fp, fn, tp] == [
        int(np.sum((labels == t) & (predicted == p))) for t, p in ((0, 0), (0, 1), (1, 0), (1, 1))
    ]
    result = browser.check_page(os.path.join(run.run_dir, "report.html"))
    assert result["ok"] and result["images"] == result["images_loaded"] == 4, result["problems"]


def test_the_export_check_catches_a_model_that_disagrees(seattle_run, tmp_path):

    probe = table_run.probe_rows(seattle_run.dataset, seattle_run.splits.test[:8])
    assert np.isnan(probe["precipitation"]).sum() == 1 and (probe["weather"] == table_run.UNSEEN_CATEGORY).sum() == 1
    names = seattle_run.dataset.class_names
    assert (
        table_export.verify_table_export(
            seattle_run.model, seattle_run.export_dir, probe, names, seattle_run.metrics["threshold"]
        )
        < 1e-5
    )
    with pytest.raises(RuntimeError, match="disagrees with the trained model"):
        table_export.verify_table_export(
            seattle_run.model, seattle_run.export_dir, probe, names, 0.999
        )  # other classes


@pytest.mark.slow
def test_the_time_split_trains_on_the_past(tmp_path):
    run = table_run.train_table(table_config(split="time", epochs=3, output_dir=str(tmp_path / "time")))
    times = run.dataset.times
    assert times[run.splits.train].max() < times[run.splits.val].min() < times[run.splits.test].min()
    assert json.load(open(os.path.join(run.run_dir, "config.json")))["config"]["data"]["split"] == "time"


def test_balanced_class_weights():
    weights = table_features.class_weights
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
        table_run.train_table(table_config(output_dir=str(tmp_path / "run"), **change))
    assert os.listdir(tmp_path) == []


def test_an_existing_folder_is_refused_and_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    (tmp_path / "taken").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        table_run.train_table(TableConfig(output_dir=str(tmp_path / "taken")))

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(table_features, "raw_row_model", full_disk)
    with pytest.raises(OSError):
        table_run.train_table(TableConfig(epochs=1, output_dir=str(tmp_path / "run")))
    assert sorted(os.listdir(tmp_path)) == ["taken"]


def test_the_positive_class_is_label_1_even_when_it_sorts_first(tmp_path):
    """``--positive-class`` puts the named class on the sigmoid's side (label 1) whatever its spelling."""
    rows = ["x,label"] + [f"{i},{'a_rain' if i % 3 == 0 else 'b_dry'}" for i in range(60)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    config = TableDataConfig(dataset=f"csv:{tmp_path / 't.csv'}", target="label", positive_class="a_rain")
    dataset, _ = table_data.load_split_table(config, seed=0)
    assert dataset.class_names == ("b_dry", "a_rain") and dataset.y[:3].tolist() == [1, 0, 0]
    assert isinstance(dataset, table_data.TabularDataset)


# ----------------------------------------------------------------------------- python -m tfcourse.train on a table


def test_table_and_image_defaults_are_one_set():
    from tfcourse.config import DataConfig, TrainConfig

    table, train = TableConfig(), TrainConfig()
    assert (table.epochs, table.patience, table.seed) == (train.epochs, train.patience, train.seed)
    assert table.data.batch_size == DataConfig().batch_size and table.export_dir == train.export_dir
    assert (table.data.val_fraction, table.data.test_fraction) == (train.data.val_fraction, train.data.test_fraction)


def humid_csv(path, rows=300):
    """A small weather table: rain follows humidity (10% missing), a wind direction, dated days."""
    lines = ["day,humidity,wind_dir,rain"]
    rng = np.random.default_rng(0)
    for i in range(rows):
        humidity = rng.uniform(10, 100)
        rain = "Yes" if humidity + rng.normal(0, 15) > 70 else "No"
        cell = "NA" if i % 10 == 0 else f"{humidity:.1f}"
        lines.append(f"2020-{1 + i // 28:02d}-{1 + i % 28:02d},{cell},{'NESW'[i % 4]},{rain}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_train_cli_on_a_csv(tmp_path, capsys):
    from tfcourse import train

    humid_csv(tmp_path / "w.csv")
    out = tmp_path / "run"
    argv = ["--dataset", f"csv:{tmp_path / 'w.csv'}", "--target", "rain", "--output-dir", str(out), "--verbose", "0"]
    assert train.main(argv + ["--split", "time", "--time-column", "day", "--class-weight", "balanced"]) == 0
    printed = capsys.readouterr().out
    assert f"\n{out}: test ROC-AUC " in printed
    record = json.load(open(out / "config.json"))
    assert record["data"]["columns"] == {"humidity": "numeric", "wind_dir": "categorical"}  # the day dates rows
    assert record["config"]["data"]["split"] == "time" and record["data"]["class_weight"] is not None
    assert json.load(open(out / "metrics.json"))["roc_auc"] > 0.7  # humidity tells


def test_input_keys_keep_valid_names_and_make_the_others_predictable():
    keys = table_data.input_keys(["wind speed", "temp(C)", "speed km/h", "a<b", "wind_speed", "ok.name-2", "(("])
    assert keys == {
        "wind speed": "wind_speed_2",  # "wind_speed" is a column's own name, so it keeps it
        "temp(C)": "temp_C",
        "speed km/h": "speed_km_h",
        "a<b": "a_b",
        "wind_speed": "wind_speed",
        "ok.name-2": "ok.name-2",
        "((": "column",
    }


@pytest.mark.slow
def test_columns_with_spaces_brackets_and_slashes_train_report_export_and_serve(tmp_path, capsys):
    """Ordinary CSV headers (``wind speed``, ``temp(C)``, ``speed km/h``) once broke Keras' layer names: they
    train, the report shows them as written, and the export serves raw rows by the keys its README lists."""
    import subprocess
    import sys

    import tensorflow as tf

    from tfcourse import train

    rng = np.random.default_rng(1)
    lines = ["wind speed,temp(C),speed km/h,sky<cover>,rain"]
    for _ in range(300):
        wind, temp, speed = rng.uniform(0, 10), rng.uniform(-5, 30), rng.uniform(0, 50)
        lines.append(
            f"{wind:.2f},{temp:.1f},{speed:.1f},{rng.choice(['clear', 'cloudy'])},{'Yes' if wind > 5 else 'No'}"
        )
    (tmp_path / "w.csv").write_text("\n".join(lines) + "\n")
    out, exports = tmp_path / "run", tmp_path / "exports"
    argv = ["--dataset", f"csv:{tmp_path / 'w.csv'}", "--target", "rain", "--output-dir", str(out), "--verbose", "0"]
    assert train.main(argv + ["--export", "--export-dir", str(exports), "--epochs", "20"]) == 0, capsys.readouterr()
    record = json.load(open(out / "config.json"))
    assert list(record["data"]["columns"]) == ["wind speed", "temp(C)", "speed km/h", "sky<cover>"]
    assert record["data"]["input_keys"]["speed km/h"] == "speed_km_h"
    assert json.load(open(out / "metrics.json"))["roc_auc"] > 0.9  # wind speed tells
    report = (out / "report.md").read_text()
    assert "| wind speed | numeric |" in report and "| temp(C) | numeric |" in report

    (version,) = os.listdir(exports / "tabular_mlp")
    export_dir = exports / "tabular_mlp" / version
    readme = (export_dir / "assets.extra" / "README").read_text()
    for key, name in (("wind_speed", "wind speed"), ("temp_C", "temp(C)"), ("speed_km_h", "speed km/h")):
        assert f"  {key:24s} column {name!r}" in readme
    body = json.load(open(export_dir / "assets.extra" / "request.json"))
    assert sorted(body["instances"][0]) == ["sky_cover", "speed_km_h", "temp_C", "wind_speed"]
    rows = [
        {"wind_speed": 9.0, "temp_C": 10.0, "speed_km_h": 20.0, "sky_cover": "clear"},
        {"wind_speed": 1.0, "temp_C": 10.0, "speed_km_h": 20.0, "sky_cover": "clear"},
    ]
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    done = subprocess.run(
        [sys.executable, "-c", SERVE_RAW_ROWS, str(export_dir), str(tmp_path / "rows.json")],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["classes"] == ["Yes", "No"]

    # model.keras by the same keys; a column it does not know is left alone, not read as another column
    model = table_run.load_run_model(str(out))
    row = {key: tf.constant([[value]]) for key, value in rows[0].items()}
    alone = model(row).numpy()
    np.testing.assert_allclose(model(dict(row, weather_code=tf.constant([[99.0]]))).numpy(), alone)
    assert not np.allclose(model(dict(row, wind_speed=tf.constant([[99.0]]))).numpy(), alone)


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
    run = table_run.train_table(config)
    assert run.model.output_shape == (None, 3)
    assert set(run.metrics["classification_report"]) >= {"low", "mid", "high", "macro avg"}
    assert run.metrics["test_accuracy"] > 0.6  # x alone decides the class; chance is a third
    assert "macro F1" in table_run.summary(run)
    assert sorted(os.listdir(os.path.join(run.run_dir, "figures"))) == ["confusion_matrix.png", "history.png"]
    assert "<td>mid</td>" in open(os.path.join(run.run_dir, "report.html"), encoding="utf-8").read()

    # exported afterwards by python -m tfcourse.export: argmax of a softmax, checked in a fresh process
    from tfcourse import export as export_cli

    assert export_cli.main([run.run_dir, "--export-dir", str(tmp_path / "sm")]) == 0
    export_dir = json.load(open(os.path.join(run.run_dir, "export.json")))["export_dir"]
    info = json.load(open(os.path.join(export_dir, "assets.extra", "tfcourse.json")))
    assert info["threshold"] is None and info["class_names"] == ["high", "low", "mid"]
    served = table_export.serve_table_in_fresh_process(export_dir, {"x": np.array([0.1, 0.5, 0.9, np.nan], np.float32)})
    assert list(served["classes"][:3]) == ["low", "mid", "high"]


# ----------------------------------------------------------------------------- python -m tfcourse.tune on a table


@pytest.mark.slow
def test_tune_on_a_table_searches_tabular_mlp_and_retrains_for_raw_rows(tmp_path, monkeypatch):
    import csv

    from tfcourse import tune
    from tfcourse.jobs import search

    monkeypatch.chdir(tmp_path)
    humid_csv(tmp_path / "w.csv")
    argv = ["--dataset", "csv:w.csv", "--target", "rain", "--tuner", "random", "--max-trials", "3", "--epochs", "3"]
    argv += ["--space", "hidden_layers=1", "--verbose", "0", "--retrain", "--output-dir", "best", "--export-dir", "sm"]
    assert tune.main(argv) == 0
    (project,) = [p for p in (tmp_path / "tuning").iterdir() if p.name.startswith("tabular_mlp-")]
    record = json.load(open(project / "search.json"))
    assert (
        record["model"] == "tabular_mlp" and record["target"] == "rain" and record["input_shape"] == [2 + 5]
    )  # value+missing, N E S W+unseen
    rows = list(csv.DictReader(open(project / "trials.csv")))
    assert len(rows) == 3 and {row["hp/hidden_layers"] for row in rows} == {"1"}
    tuner = search.load_tuner(str(project))
    oracle = {t.trial_id: t.score for t in tuner.oracle.trials.values()}
    assert {row["trial_id"]: float(row["score"]) for row in rows} == pytest.approx(oracle)

    best = max(oracle, key=oracle.get)
    retrained = json.load(open(tmp_path / "best" / "config.json"))
    assert retrained["tuned_from"]["trial_id"] == best and retrained["config"]["model"] == "tabular_mlp"
    assert retrained["hyperparameters"]["hidden_layers"] == 1
    page = (project / "search.html").read_text(encoding="utf-8")  # links the retrained table run's report
    assert 'href="../../best/report.html"' in page and "was retrained on train and tested once: test accuracy" in page
    export_dir = json.load(open(tmp_path / "best" / "export.json"))["export_dir"]
    assert json.load(open(os.path.join(export_dir, "assets.extra", "tfcourse.json")))["inputs"] == {
        "humidity": "numeric",
        "wind_dir": "categorical",
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "seattle_weather", "--model", "cnn"], "--model does not apply to a table"),
        (["--dataset", "seattle_weather", "--augment", "--classes", "0-1"], "--augment, --classes do not apply"),
        (["--dataset", "digits", "--target", "y"], "--target applies to a table"),
        (["--dataset", "digits", "--model", "tabular_mlp"], "--model tabular_mlp applies to a table"),
        (["--dataset", "csv:nowhere.csv", "--target", "y"], "no such CSV file"),
    ],
)
def test_tune_cli_refuses_the_wrong_kind_with_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    from tfcourse import tune

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        tune.main(argv + ["--verbose", "0"])
    assert done.value.code == 2 and message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_the_weather_like_table_has_weather_aus_shape_and_kinds(tmp_path):
    """The 200,000-row benchmark's generator (here 5,000 rows): 25 columns, ~10% missing feature cells, a
    22% positive target, and the kinds inferred as a weatherAUS user would expect."""
    import sys

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
    import table_scale

    facts = table_scale.write_weather_like_csv(str(tmp_path / "w.csv"), 5000, seed=1)
    assert facts["columns"] == 25 and 0.08 < facts["missing_share"] < 0.12
    assert 0.19 < facts["positive_share"] < 0.25
    dataset = table_data.load_csv(str(tmp_path / "w.csv"), "RainTomorrow", time_column="Date")
    categorical = sorted(name for name, kind in dataset.kinds.items() if kind == "categorical")
    assert categorical == ["Location", "RainToday", "WindDir3pm", "WindDir9am", "WindGustDir"]
    assert len(dataset.kinds) == 23 and "Date" not in dataset.kinds  # a date dates the rows, it is no feature
    assert set(dataset.columns["WindGustDir"]) - {""} == set(table_scale.DIRECTIONS)
    assert dataset.class_names == ("No", "Yes")


def test_balanced_class_weights_reach_the_training_batches_and_the_loss(tmp_path):
    """Each training row carries its class's weight (validation rows none), and training with them moves a
    rare class's predicted probability up: with balanced weights the two classes weigh the same in the loss."""
    rng = np.random.default_rng(2)
    lines = ["x,y"] + [f"{v:.3f},{'rare' if v + rng.normal(0, 1.5) > 2.2 else 'common'}" for v in rng.normal(size=600)]
    (tmp_path / "rare.csv").write_text("\n".join(lines) + "\n")
    data = TableDataConfig(dataset=f"csv:{tmp_path / 'rare.csv'}", target="y", positive_class="rare")
    dataset, splits = table_data.load_split_table(data, 0)
    pipelines = table_features.make_pipelines(dataset, splits, 64, 0, "balanced")
    _, labels, weights = next(iter(pipelines.train))
    expected = table_features.class_weights(dataset.y[splits.train], 2)
    assert weights.numpy().tolist() == pytest.approx([expected[int(c)] for c in labels.numpy()])
    assert len(next(iter(pipelines.val))) == 2  # (features, labels): validation is not weighted

    mean_rare = {}
    for weight in (None, "balanced"):
        out = tmp_path / f"run-{weight}"
        run = table_run.train_table(
            TableConfig(
                epochs=8, report=False, output_dir=str(out), data=dataclasses.replace(data, class_weight=weight)
            )
        )
        assert (json.load(open(out / "config.json"))["data"]["class_weight"] is None) == (weight is None)
        with np.load(out / "predictions.npz") as saved:
            mean_rare[weight] = float(saved["probabilities"][:, 1].mean())
        assert run.metrics["positive_share"] < 0.2
    assert mean_rare["balanced"] > mean_rare[None] + 0.15
