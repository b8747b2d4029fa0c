"""``python -m tfcourse.predict`` on real image files: PNG/JPEG/BMP of mixed sizes and colours made from
the test split, through a run folder, its model.keras and its export; errors; export version order."""

import csv
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from tfcourse import predict
from tfcourse.evaluation import artifacts, evaluate, inference


def _write_pictures(images, folder):
    """Each 8x8 test image as a picture someone could have taken of it: scaled up (integer and odd
    factors), grey or RGB, some dark-on-light (inverted), as PNG, JPEG or BMP. Returns
    ``[(path, inverted)]`` in image order."""
    folder.mkdir()
    written = []
    for i, image in enumerate(images[..., 0]):
        size = (8, 16, 13, 40, 24)[i % 5]
        grey = Image.fromarray(image).resize((size, size), Image.Resampling.LANCZOS if size % 8 else Image.NEAREST)
        inverted = i % 3 == 1
        if inverted:
            grey = Image.fromarray(255 - np.asarray(grey))
        picture = grey.convert("RGB") if i % 2 else grey
        suffix = (".png", ".jpg", ".bmp", ".png")[i % 4]
        path = folder / f"img{i:03d}{suffix}"
        picture.save(path, quality=95) if suffix == ".jpg" else picture.save(path)
        written.append((str(path), inverted))
    return written


def test_predict_on_pictures_of_mixed_sizes_and_colours_agrees_with_the_model(cnn_run, tmp_path, capsys):
    run_dir, export_dir = cnn_run
    run = artifacts.load(run_dir)
    test = run.test_data()
    images = test.images[:120]
    expected = evaluate.probabilities(
        run.keras_model(), run.model_inputs(images), run.record["config"].get("tta", "none")
    ).numpy()
    pictures = _write_pictures(images, tmp_path / "pictures")
    with open(pictures[0][0], "rb") as handle:  # a file that is no image is listed and skipped
        (tmp_path / "pictures" / "notes.png").write_bytes(b"not an image" + handle.read()[:3])

    for model_path in (run_dir, os.path.join(run_dir, "model.keras"), os.path.dirname(export_dir)):
        out = tmp_path / f"{os.path.basename(model_path)}.csv"
        grid = tmp_path / f"{os.path.basename(model_path)}.png"
        capsys.readouterr()
        code = predict.main([model_path, str(tmp_path / "pictures"), "--output", str(out), "--grid", str(grid)])
        assert code == 0
        printed = capsys.readouterr()
        assert "skipped" in printed.err and "notes.png" in printed.err
        with open(out, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [row["file"] for row in rows] == [path for path, _ in pictures]  # sorted, the bad file left out
        assert [row["inverted"] == "True" for row in rows] == [inverted for _, inverted in pictures]
        agree = np.mean([row["class1"] == run.class_names[i] for row, i in zip(rows, expected.argmax(axis=1))])
        assert agree >= 0.95, (model_path, agree)
        probabilities = np.array([[float(row[f"p_{name}"]) for name in run.class_names] for row in rows])
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
        assert rows[0]["class1"] in printed.out and "top 3" in printed.out
        with Image.open(grid) as drawn:
            assert drawn.size[0] > 400 and drawn.size[1] > 400

    # --invert no: the dark-on-light pictures are seen as they are, and mostly misread
    rows, _, _ = inference.predict_files(inference.open_model(run_dir), [str(tmp_path / "pictures")], invert="no")
    dark_on_light = [i for i, (_, inverted) in enumerate(pictures) if inverted]
    misread = np.mean([rows[i]["top"][0][0] != run.class_names[expected[i].argmax()] for i in dark_on_light])
    assert misread > 0.5


def test_json_output_and_a_single_file(cnn_run, tmp_path):
    run_dir, _ = cnn_run
    run = artifacts.load(run_dir)
    Image.fromarray(run.test_data().images[0, ..., 0]).resize((32, 32)).save(tmp_path / "one.png")
    out = tmp_path / "p.json"
    assert predict.main([run_dir, str(tmp_path / "one.png"), "--top-k", "2", "--output", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["file"] == str(tmp_path / "one.png") and len(row["top"]) == 2
    assert row["top"][0]["probability"] >= row["top"][1]["probability"]
    assert set(row["probabilities"]) == set(run.class_names)


def test_the_latest_export_version_is_the_highest_number(cnn_run, tmp_path):
    _, export_dir = cnn_run
    model_dir = tmp_path / "saved_models" / "cnn"
    for version in ("2", "9", "10"):
        shutil.copytree(export_dir, model_dir / version)
    (model_dir / "11").mkdir()  # a version folder without saved_model.pb (a copy under way) is not a version
    predictor = inference.open_model(str(model_dir))
    assert predictor.source == str(model_dir / "10") and predictor.kind == "export"
    assert inference.open_model(str(model_dir / "9")).source == str(model_dir / "9")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "empty", "holds no model"),
        (lambda tmp: tmp / "missing", "is neither a folder nor a .keras file"),
        (lambda tmp: tmp / "root", "holds several exported models"),
    ],
)
def test_a_path_that_is_not_a_model_exits_2(make, message, cnn_run, tmp_path, capsys):
    _, export_dir = cnn_run
    (tmp_path / "empty").mkdir()
    shutil.copytree(os.path.dirname(export_dir), tmp_path / "root" / "cnn")
    shutil.copytree(os.path.dirname(export_dir), tmp_path / "root" / "vgg")
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(make(tmp_path)), str(tmp_path / "x.png")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_no_readable_image_exits_2_and_writes_nothing(cnn_run, tmp_path, capsys):
    run_dir, _ = cnn_run
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "empty").mkdir()
    for path, output, message in (
        ("broken.png", "p.csv", "none of the 1 file(s) given could be read"),
        ("empty", "p.csv", "no image files found"),
        ("broken.png", "p.txt", "name a .csv or .json file"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            predict.main([run_dir, str(tmp_path / path), "--output", str(tmp_path / output)])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "p.txt").exists()


def test_a_table_model_is_refused(tmp_path):
    with pytest.raises(ValueError, match="model for tables"):
        inference._check_images((12,), "a table run")
    # an export of a table model (export_table_model's metadata: named inputs) is refused before loading
    version = tmp_path / "weather" / "1"
    (version / "assets.extra").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    (version / "assets.extra" / "tfcourse.json").write_text(
        json.dumps({"class_names": ["no", "yes"], "inputs": {"temp_max": "number"}})
    )
    with pytest.raises(ValueError, match="export of a model for tables"):
        inference.open_model(str(tmp_path / "weather"))
    # a table run folder (config.json lists its columns) and its model.keras: named as a table run
    run = tmp_path / "weather-run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"columns": {"temp_max": "numeric"}}}))
    (run / "model.keras").write_bytes(b"")
    for given in (run, run / "model.keras"):
        with pytest.raises(ValueError, match="is a run on a table"):
            inference.open_model(str(given))


def test_should_invert_follows_the_border_and_the_data():
    light = np.full((10, 10), 240, np.uint8)
    light[3:7, 3:7] = 20
    dark = 255 - light
    assert inference.should_invert(light, "auto", dark_background=True)
    assert not inference.should_invert(dark, "auto", dark_background=True)
    assert not inference.should_invert(light, "auto", dark_background=None)  # not known: left as it is
    assert inference.should_invert(dark, "yes", None) and not inference.should_invert(light, "no", True)


def test_novelty_flags_test_images_at_about_the_calibrated_rate_and_noise_far_more(cnn_run, tmp_path):
    """The distance-to-training-images score, calibrated on the validation split at its 99th percentile: the
    run's own test images (never used to calibrate) are flagged at about 1%, uniform noise nearly always."""
    from tfcourse.evaluation import inference, novelty

    run_dir, _ = cnn_run
    predictor = inference.open_model(run_dir)
    score, calibration = predictor.novelty()
    assert calibration["quantile"] == novelty.QUANTILE and calibration["score"] == inference.NEAREST
    test = artifacts.load(run_dir).test_data()
    flagged = novelty.flag(score(test.images), calibration)
    assert flagged.mean() <= 0.05, flagged.mean()  # promised ~1%: digits' test split is 360 images
    noise = np.random.default_rng(0).integers(0, 256, (50,) + test.images.shape[1:], dtype=np.uint8)
    assert novelty.flag(score(noise), calibration).mean() >= 0.9
    assert novelty.auroc(score(test.images), score(noise)) > 0.95


def test_the_sample_photos_of_the_issue_are_flagged_as_unlike_the_training_data(cnn_run):
    """matplotlib's grace_hopper.jpg and scikit-image's rocket.jpg, through predict's own path, on the digits
    cnn: both above the threshold (the Fashion-MNIST runs: benchmarks/results/novelty.md)."""
    import matplotlib
    import skimage

    from tfcourse.evaluation import inference

    run_dir, _ = cnn_run
    photos = [
        os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"),
        os.path.join(os.path.dirname(skimage.__file__), "data", "rocket.jpg"),
    ]
    predictor = inference.open_model(run_dir)
    rows, skipped, _ = inference.predict_files(predictor, photos)
    assert not skipped and [row["novelty"]["unlike_training_data"] for row in rows] == [True, True], rows
    assert all(row["novelty"]["score"] == inference.NEAREST for row in rows)


def test_the_novelty_layers_are_each_resolutions_first_and_the_penultimate():
    import keras

    from tfcourse.evaluation import novelty

    image = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_8")(image)
    x = keras.layers.MaxPooling2D(name="pool_4")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_4")(x)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="strided_2")(x)
    x = keras.layers.ReLU(name="relu_2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="features")(x)
    model = keras.Model(image, keras.layers.Dense(3, name="logits")(x))
    assert novelty.feature_layers(model) == ["pool_4", "strided_2", novelty.PENULTIMATE]
    features = novelty.feature_model(model, novelty.feature_layers(model))
    outputs = features(np.ones((2, 8, 8, 1), np.float32))
    assert [tuple(out.shape) for out in outputs] == [(2, 4), (2, 4), (2, 4)]  # spatial ones averaged
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    pooled = keras.Model(image, model.get_layer("pool_4").output)(x).numpy().mean(axis=(1, 2))
    assert np.allclose(features(x)[0], pooled, atol=1e-6)


def test_novelty_fields_in_the_json_and_the_table(cnn_run, tmp_path, capsys):
    run_dir, _ = cnn_run
    noise = np.random.default_rng(1).integers(0, 256, (8, 8), dtype=np.uint8)  # the model's own size: no smoothing
    Image.fromarray(noise).save(tmp_path / "noise.png")
    out = tmp_path / "p.json"
    assert predict.main([run_dir, str(tmp_path / "noise.png"), "--output", str(out)]) == 0
    (row,) = json.loads(out.read_text())
    assert row["novelty"]["unlike_training_data"] is True and row["novelty"]["value"] > row["novelty"]["threshold"]
    printed = capsys.readouterr().out
    assert "unlike the training data?" in printed and "YES (" in printed
    assert "the 99% quantile of" in printed and "validation images" in printed


def test_the_nearest_neighbour_score_by_hand():
    from tfcourse.evaluation import novelty

    bank = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    score = novelty.NearestTraining(lambda x: [x], bank, k=1)
    # normalised: (1,0), (0,1), (0.707, 0.707); the query (2, 0) -> (1, 0) is on the first entry
    assert score(np.array([[2.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-6)
    # (-1, 0): nearest is (0,1) or (0.707,0.707)? distances sqrt(2)=1.414 and sqrt(1.707^2+0.5)=1.848
    assert score(np.array([[-1.0, 0.0]]))[0] == pytest.approx(np.sqrt(2), rel=1e-6)
    # two layers, each in units of its own 50th-percentile distance over the scale images; the largest wins.
    # Layer 1 sees x, layer 2 sees x with its coordinates swapped. Scale images (0, 2): 0 at both layers;
    # (-1, 0): sqrt(2) at layer 1, and at layer 2 ((0, -1): sqrt(2) from (1, 0)); medians sqrt(2) / 2
    both = novelty.NearestTraining(
        lambda x: [x, x[:, ::-1]], bank, np.array([[0.0, 2.0], [-1.0, 0.0]]), k=1, quantile=0.5
    )
    assert both.scales == pytest.approx([np.sqrt(2) / 2] * 2)
    # (0.2, -1) -> (0.196, -0.981); layer 1: nearest (1, 0) at sqrt(2 - 2 * 0.196) = 1.2680; layer 2 sees
    # (-0.981, 0.196): nearest (0, 1) at the same 1.2680. The score: 1.2680 / (sqrt(2) / 2) = 1.7932
    query = np.array([[0.2, -1.0]])
    assert both.per_layer(query)[0] == pytest.approx([1.2680, 1.2680], abs=1e-4)
    assert both(query)[0] == pytest.approx(1.7932, abs=1e-4)
    lopsided = novelty.NearestTraining(
        lambda x: [x, 2 * x], bank, np.array([[0.0, 2.0], [-1.0, 0.0]]), k=1, quantile=0.5
    )
    lopsided.scales = np.array([1.0, 0.5])  # layer 2's unit is half layer 1's: its distance counts double
    assert lopsided(query)[0] == pytest.approx(2 * 1.2680, abs=1e-4)
    calibration = novelty.calibrate(np.arange(101.0), "s", quantile=0.99)
    assert calibration["threshold"] == pytest.approx(99.0)
    assert list(novelty.flag([98.0, 99.5], calibration)) == [False, True]
