"""Tables: reading a CSV, inferring column kinds, missing values, the target,
bad files refused with the fix, Seattle's "rain tomorrow" without a column of tomorrow, and splits
(stratified; by time, the past for training and the future for testing)."""

import numpy as np
import pytest

from tfcourse.data import table_data


def write(tmp_path, text, name="table.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return str(path)


WEATHER = """Date,Location,MinTemp,Rainfall,WindGustDir,Humidity3pm,Code,RainTomorrow
2010-01-01,Albury,13.4,0.6,W,22,1,No
2010-01-02,Albury,NA,0,WNW,25,2,No
2010-01-03,Sydney,12.9,,WSW,,1,Yes
2010-01-04,Sydney,9.2,1.2,NA,16,3,
2010-01-05,Perth,17.5,0,E,33,2,Yes
2010-01-06,Perth,14.6,0.2,,23,1,No
"""


def test_kinds_missing_values_and_the_target(tmp_path):
    dataset = table_data.load_csv(write(tmp_path, WEATHER), "RainTomorrow", time_column="Date")
    assert dataset.kinds == {
        "Location": "categorical",
        "MinTemp": "numeric",
        "Rainfall": "numeric",
        "WindGustDir": "categorical",
        "Humidity3pm": "numeric",
        "Code": "numeric",
    }  # the date is no feature; it dates the rows
    assert dataset.dropped_rows == 1  # the row without a target
    assert dataset.class_names == ("No", "Yes") and dataset.y.tolist() == [0, 0, 1, 1, 0]
    np.testing.assert_array_equal(dataset.columns["MinTemp"], [13.4, np.nan, 12.9, 17.5, 14.6])
    np.testing.assert_array_equal(dataset.columns["Humidity3pm"], [22, 25, np.nan, 33, 23])
    assert dataset.columns["WindGustDir"].tolist() == ["W", "WNW", "WSW", "E", ""]
    assert str(dataset.times[0])[:10] == "2010-01-01" and len(dataset.times) == 5
    assert table_data.describe(dataset)[1] == "MinTemp: numeric, 1 missing"


def test_overrides_features_drop_and_the_positive_class(tmp_path):
    path = write(tmp_path, WEATHER)
    dataset = table_data.load_csv(
        path, "RainTomorrow", categorical=["Code"], drop=["Date", "Location"], positive_class="No"
    )
    assert dataset.kinds["Code"] == "categorical" and dataset.columns["Code"].tolist() == ["1", "2", "1", "2", "1"]
    assert "Location" not in dataset.columns and dataset.class_names == ("Yes", "No")
    assert dataset.y.tolist() == [1, 1, 0, 0, 1]
    chosen = table_data.load_csv(path, "RainTomorrow", features=["Humidity3pm"])
    assert list(chosen.columns) == ["Humidity3pm"]  # the course's one-feature network


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(target="Rain"), "--target: no column named 'Rain'; the columns are Date, Location"),
        (dict(target="Location"), None),  # three classes: fine
        (dict(target="RainTomorrow", numeric=["Location"]), "--numeric Location: line 2 holds 'Albury', not a number"),
        (dict(target="RainTomorrow", features=["RainTomorrow"]), "names the target"),
        (dict(target="RainTomorrow", categorical=["Code"], numeric=["Code"]), "both --categorical and --numeric"),
        (dict(target="RainTomorrow", positive_class="Maybe"), "--positive-class 'Maybe' is not a value"),
        (dict(target="Location", positive_class="Perth"), "--positive-class is for a two-class target"),
        (dict(target="RainTomorrow", drop=["Nope"]), "--drop: no column named 'Nope'"),
        (dict(target="RainTomorrow", features=["Date"]), "no feature column left"),
        (
            dict(target="RainTomorrow", time_column="Location"),
            "--time-column Location: line 2 holds 'Albury', not a date",
        ),
        (dict(target="RainTomorrow", numeric=["WindGustDir"]), "line 2 holds 'W'"),
    ],
)
def test_bad_columns_are_named(tmp_path, kwargs, message):
    path = write(tmp_path, WEATHER)
    if message is None:
        assert table_data.load_csv(path, **kwargs).num_classes == 3
        return
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        table_data.load_csv(path, **kwargs)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "is empty"),
        ("a,b,target\n", "has a header but no rows"),
        ("a,b,target\n1,2,x\n3,4,y,5\n", "wrong number of fields"),
        ("a,b,target\n1,caf\xe9,x\n2,b,y\n".encode("latin-1"), r"is not UTF-8 text \(byte 0xe9 on line 2\)"),
        ("a,a,target\n1,2,x\n3,4,y\n", r"repeated column names \(a\)"),
        ("a,target\n1,x\n2,x\n3,\n", r"one class only \(x\) after dropping 1 rows"),
    ],
)
def test_bad_files_are_refused_with_the_fix(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        table_data.load_csv(write(tmp_path, content), "target")


def test_a_missing_file_and_an_unknown_table():
    with pytest.raises(ValueError, match="no such CSV file"):
        table_data.load_table("csv:no/such.csv", target="y")
    with pytest.raises(ValueError, match="needs --target COLUMN"):
        table_data.load_table("csv:any.csv")
    with pytest.raises(ValueError, match="Unknown table 'weather'; use one of seattle_weather or csv:PATH"):
        table_data.load_table("weather")


def test_kind_inference_on_its_own():
    assert table_data.infer_kind(np.array(["1", "2.5", "-3e2", "NA", ""])) == "numeric"
    assert table_data.infer_kind(np.array(["2012/01/01", "2012-1-2", "?"])) == "date"
    assert table_data.infer_kind(np.array(["N", "NE", "1"])) == "categorical"
    assert table_data.infer_kind(np.array(["", "NA"])) == "categorical"  # nothing to go on
    assert table_data.infer_kind(np.array(["12", "2012-01-01"])) == "categorical"


# ----------------------------------------------------------------------------- Seattle: rain tomorrow


def test_seattle_rain_tomorrow_uses_only_today():
    """The features are exactly today's five columns, row t of the raw CSV for row t; the target is
    row t+1's precipitation > 0, and nothing else of any day moves it."""
    raw = table_data.read_csv(table_data.seattle_weather_path())
    dataset = table_data.load_seattle_weather()
    assert dataset.num_rows == len(raw) - 1 == 1460 and dataset.class_names == ("No", "Yes")
    assert set(dataset.columns) == {"precipitation", "temp_max", "temp_min", "wind", "weather"}
    for column, values in dataset.columns.items():
        today = raw[column].to_numpy()[:-1]
        expected = today.astype(np.float64) if dataset.kinds[column] == "numeric" else today
        np.testing.assert_array_equal(values, expected)
    tomorrow_rain = raw["precipitation"].astype(float).to_numpy()[1:] > 0
    np.testing.assert_array_equal(dataset.y == 1, tomorrow_rain)
    assert 0.3 < dataset.y.mean() < 0.5

    changed = raw.copy()
    for column in ("temp_max", "temp_min", "wind"):
        changed[column] = (changed[column].astype(float) + 7).astype(str)
    changed["weather"] = "snow"
    built, rebuilt = table_data.rain_tomorrow(raw), table_data.rain_tomorrow(changed)
    assert (built["rain_tomorrow"] == rebuilt["rain_tomorrow"]).all()  # the target reads tomorrow's rain only


# ----------------------------------------------------------------------------- splits


def test_time_split_trains_on_the_past_and_tests_on_the_future(tmp_path):
    rows = ["day,x,y"] + [f"2020-01-{1 + i // 3:02d},{i},{'ab'[i % 2]}" for i in range(60)]  # 3 rows a day
    dataset = table_data.load_csv(write(tmp_path, "\n".join(rows) + "\n"), "y", time_column="day")
    splits = table_data.make_splits(dataset, "time", val_fraction=0.15, test_fraction=0.2)
    times = dataset.times
    assert times[splits.train].max() < times[splits.val].min() <= times[splits.val].max() < times[splits.test].min()
    assert sorted(np.concatenate([splits.train, splits.val, splits.test]).tolist()) == list(range(60))
    assert splits.sizes() == {"train": 39, "val": 9, "test": 12}  # whole days: 13 / 3 / 4
    stratified = table_data.make_splits(dataset, seed=3)
    assert {k: v for k, v in stratified.sizes().items()} == {"train": 48, "val": 6, "test": 6}
    assert dataset.y[stratified.test].mean() == 0.5  # the classes' shares kept
    with pytest.raises(ValueError, match="--split time needs --time-column"):
        table_data.make_splits(table_data.load_csv(write(tmp_path, "\n".join(rows) + "\n", "b.csv"), "y"), "time")


# ----------------------------------------------------------------------------- preprocessing inside the model


def test_imputed_normalization_standardises_imputes_and_flags():
    import keras

    from tfcourse.models.layers import ImputedNormalization

    layer = ImputedNormalization()
    values = np.array([1.0, 3.0, np.nan, 5.0, np.nan])
    layer.adapt(values)
    assert layer.mean == pytest.approx(np.nanmean(values)) and layer.variance == pytest.approx(np.nanvar(values))
    out = np.asarray(layer(np.array([[5.0], [np.nan]], np.float32)))
    np.testing.assert_allclose(out, [[(5 - 3) / np.sqrt(8 / 3), 0.0], [0.0, 1.0]], rtol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    np.testing.assert_array_equal(np.asarray(again(np.array([[5.0], [np.nan]], np.float32))), out)
    with pytest.raises(ValueError, match="adapt"):
        ImputedNormalization()(np.zeros((1, 1), np.float32))


def test_the_model_takes_raw_rows_adapted_on_training_rows_only(tmp_path):
    """FeatureSpace statistics come from the training rows alone; a raw row with a missing number and a
    category training never saw is encoded as [0, missing=1] and the out-of-vocabulary slot; the saved
    .keras model gives the same predictions."""
    import keras
    import tensorflow as tf

    from tfcourse.data import table_features

    rows = ["x,colour,y"] + [f"{i % 7},{'red' if i % 2 else 'blue'},{'ab'[i % 2]}" for i in range(40)]
    rows += ["1000,green,a", "1000,green,b"]  # only ever in validation (below): must not shape the statistics
    dataset = table_data.load_csv(write(tmp_path, "\n".join(rows) + "\n"), "y")
    train, val = np.arange(40), np.array([40, 41])
    space = table_features.make_feature_space(dataset, train)
    impute = space.preprocessors["x"]
    assert impute.mean == pytest.approx(dataset.columns["x"][train].mean())
    assert table_features.encoded_size(space) == 2 + 3  # x and its flag; blue, red and one unseen slot
    raw = {"x": np.array([[np.nan], [3.0]], np.float32), "colour": np.array([["purple"], ["red"]])}
    encoded = np.asarray(space({k: tf.constant(v) for k, v in raw.items()}))
    # FeatureSpace concatenates in name order: colour's three slots (the unseen one first), then x and its flag
    assert encoded[0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    x_scaled = (3.0 - impute.mean) / np.sqrt(impute.variance)
    assert encoded[1, 0] == 0.0 and encoded[1, :3].sum() == 1.0 and encoded[1, 3:] == pytest.approx([x_scaled, 0.0])

    inputs = keras.Input((5,))
    model = table_features.raw_row_model(space, keras.Model(inputs, keras.layers.Dense(1)(inputs)))
    batches = tf.data.Dataset.from_tensor_slices(raw).batch(2)
    before = np.asarray(model.predict(batches, verbose=0))
    assert np.isfinite(before).all()
    model.save(tmp_path / "raw.keras")
    after = np.asarray(keras.models.load_model(tmp_path / "raw.keras").predict(batches, verbose=0))
    np.testing.assert_array_equal(before, after)
    assert dataset.columns["x"][val].tolist() == [1000.0, 1000.0]  # present in the table, absent from the mean


# ----------------------------------------------------------------------------- the network


def test_tabular_mlp_heads_parameters_and_the_course_network():
    import keras
    import keras_tuner

    from tfcourse.models import tabular_mlp

    binary = tabular_mlp.build(keras_tuner.HyperParameters(), (14,), 2)
    assert binary.output_shape == (None, 1)  # one log-odds for a two-class target
    assert binary.count_params() == (14 * 64 + 64) + (64 * 64 + 64) + (64 + 1)
    assert tabular_mlp.build(keras_tuner.HyperParameters(), (14,), 5).output_shape == (None, 5)

    hp = keras_tuner.HyperParameters()
    hp.Fixed("hidden_layers", 1)
    hp.Fixed("units", 2)
    hp.Fixed("activation", "softplus")
    hp.Fixed("dropout", 0.0)
    course = tabular_mlp.build(hp, (2,), 2)  # Humidity3pm and its missing flag -> 2 softplus -> 1 logit
    assert course.count_params() == (2 * 2 + 2) + (2 + 1)
    assert [layer.name for layer in course.layers] == ["features", "dense_0", "softplus_0", "logits"]
    weights = [np.array([[0.5, -1.0], [0.0, 0.0]]), np.array([0.1, 0.2]), np.array([[2.0], [-1.0]]), np.array([0.3])]
    course.set_weights(weights)
    x = np.array([[1.5, 0.0]], np.float32)
    hidden = np.log1p(np.exp(x @ weights[0] + weights[1]))  # softplus, by hand
    np.testing.assert_allclose(np.asarray(course(x)), hidden @ weights[2] + weights[3], rtol=1e-6)
    with pytest.raises(ValueError, match=r"takes the encoded feature vector \(features,\), got \(8, 8, 1\)"):
        tabular_mlp.build(keras_tuner.HyperParameters(), (8, 8, 1), 2)
    assert isinstance(course, keras.Model)


# ----------------------------------------------------------------------------- threshold and binary metrics


def _f1_by_hand(labels, predicted):
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_the_threshold_maximises_f1_on_validation():
    from tfcourse.evaluation import evaluate

    rng = np.random.default_rng(11)
    labels = (rng.random(300) < 0.2).astype(int)  # a rare positive class whose scores run low
    probabilities = np.clip(0.25 * labels + rng.normal(0.2, 0.1, 300), 0, 1)
    chosen = evaluate.choose_threshold(labels, probabilities, "f1")
    # every rule "positive when p >= t" is one of these: t at each distinct probability, or above them all
    grid = np.concatenate([np.unique(probabilities), np.unique(np.round(probabilities, 2)), [1.1]])
    best = max(_f1_by_hand(labels, (probabilities >= t).astype(int)) for t in grid)
    assert chosen["value"] == pytest.approx(best)
    assert _f1_by_hand(labels, (probabilities >= chosen["threshold"]).astype(int)) == pytest.approx(best)
    assert chosen["threshold"] < 0.5 and chosen["value"] > chosen["value_at_0.5"]
    accuracy = evaluate.choose_threshold(labels, probabilities, "accuracy")
    assert accuracy["value"] == pytest.approx(max(np.mean((probabilities >= t) == labels) for t in grid))
    from sklearn.metrics import balanced_accuracy_score

    ties = np.round(probabilities, 2)  # many rows share a probability: a threshold moves them together
    for metric, score in (("balanced_accuracy", balanced_accuracy_score), ("f1", _f1_by_hand)):
        chosen = evaluate.choose_threshold(labels, ties, metric)
        assert chosen["value"] == pytest.approx(max(score(labels, (ties >= t).astype(int)) for t in grid))
        assert score(labels, (ties >= chosen["threshold"]).astype(int)) == pytest.approx(chosen["value"])
        assert chosen["value_at_0.5"] == pytest.approx(score(labels, (ties >= 0.5).astype(int)))
    with pytest.raises(ValueError, match="Unknown threshold metric 'auc'"):
        evaluate.choose_threshold(labels, probabilities, "auc")
    with pytest.raises(ValueError, match="needs both classes"):
        evaluate.choose_threshold(np.zeros(5), np.linspace(0, 1, 5))


def test_binary_metrics_against_their_definitions():
    from tfcourse.evaluation import evaluate

    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    probabilities = np.array([0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.7, 0.4])
    result = evaluate.binary_metrics(labels, probabilities, 0.5, ["No", "Yes"])
    positives, negatives = probabilities[labels == 1], probabilities[labels == 0]
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]  # AUC: P(positive ranked above)
    assert result["roc_auc"] == pytest.approx(np.mean(pairs))
    predicted = (probabilities >= 0.5).astype(int)  # rows 3, 5, 6: two true positives, one false
    assert result["confusion_matrix"] == [[3, 1], [2, 2]]
    assert result["classification_report"]["Yes"]["precision"] == pytest.approx(2 / 3)
    assert result["classification_report"]["Yes"]["recall"] == pytest.approx(2 / 4)
    assert result["classification_report"]["Yes"]["f1-score"] == pytest.approx(_f1_by_hand(labels, predicted))
    assert result["accuracy"] == pytest.approx(5 / 8) and result["positive_class"] == "Yes"
    perfect = evaluate.binary_metrics(labels, labels * 0.9 + 0.05, 0.5, ["No", "Yes"])
    assert perfect["roc_auc"] == 1.0 and perfect["pr_auc"] == 1.0
    assert evaluate.sigmoid(np.array([-1000.0, 0.0, 2.0, 1000.0])) == pytest.approx(
        [0.0, 0.5, 1 / (1 + np.exp(-2)), 1.0]
    )


def test_a_column_named_like_a_pandas_renaming_is_not_a_repeat(tmp_path):
    dataset = table_data.load_csv(write(tmp_path, "a,a.1,target\n1,2,x\n3,4,y\n"), "target")
    assert list(dataset.columns) == ["a", "a.1"]


def _numbers_with(stray, rows=400):
    lines = ["a,b,y"] + [f"{i % 37 / 3:.2f},{'xyz'[i % 3]},{'pn'[i % 2]}" for i in range(rows)]
    for line, cell in stray.items():
        lines[line - 1] = f'"{cell}",x,p'
    return "\n".join(lines) + "\n"


def test_a_numeric_column_with_stray_cells_is_named_not_made_categorical(tmp_path):
    """Two stray cells in 400 numbers once made the column a category per value (288 inputs) unsaid."""
    path = write(tmp_path, _numbers_with({18: "12;5", 91: "abc"}))
    with pytest.raises(ValueError, match=r"column 'a' is numbers but for 2 of 400 cells \(line 18: '12;5', line 91"):
        table_data.load_csv(path, "y")
    assert table_data.load_csv(path, "y", categorical=["a"]).kinds["a"] == "categorical"  # the user's word
    assert table_data.load_csv(write(tmp_path, _numbers_with({18: ""})), "y").kinds["a"] == "numeric"  # empty: missing
    # a column of words with a few numbers among them stays categorical
    words = "a,y\n" + "".join(f"{'7' if i % 3 == 0 else 'word' + str(i % 4)},{'pn'[i % 2]}\n" for i in range(40))
    assert table_data.load_csv(write(tmp_path, words, "words.csv"), "y").kinds["a"] == "categorical"


def test_a_numeric_target_with_many_values_is_not_made_a_classifier(tmp_path):
    many = "a,y\n" + "".join(f"{i % 7},{i * 1.5}\n" for i in range(500))
    with pytest.raises(ValueError, match="--target y holds numbers with 500 distinct values: .*--categorical y"):
        table_data.load_csv(write(tmp_path, many), "y")
    assert table_data.load_csv(write(tmp_path, many), "y", categorical=["y"]).num_classes == 500
    few = "a,y\n" + "".join(f"{i % 7},{i % 10}\n" for i in range(500))  # digit labels 0-9: classes
    assert table_data.load_csv(write(tmp_path, few, "few.csv"), "y").num_classes == 10


def test_a_huge_cell_is_refused_before_it_costs_memory(tmp_path):
    """A 50 MB cell asked NumPy for 78 GiB (rows x longest cell as a fixed-width string array)."""
    text = "a,b,y\n" + "".join(f"{i},x,{'pn'[i % 2]}\n" for i in range(50)) + f'1,"{"z" * 5_000_000}",p\n'
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=r"column 'b' on line 52 holds a cell of 5,000,000 characters.*--drop b"):
        table_data.load_csv(path, "y")
    assert list(table_data.load_csv(path, "y", drop=["b"]).columns) == ["a"]
