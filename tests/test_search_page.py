"""A real cross-validated search on digits and what it leaves: the search page (checked against trials.csv
and KerasTuner's own oracle, and in headless Chromium), the folds' scores, the checkpoints kept, the live
progress lines; and spaces that fit the input for every registered image model."""

import contextlib
import csv
import glob
import html.parser
import io
import os
import pathlib
import re
import shutil
import statistics

import keras
import numpy as np
import pytest

from tests.conftest import built_once
from tfcourse import data, tune
from tfcourse.config import DataConfig, parse_keep_checkpoints
from tfcourse.jobs import search
from tfcourse.models import build_model, list_models
from tfcourse.pages import browser, search_page, search_plots
from tfcourse.tuning import search_state, tuners

needs_chromium = pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)
TRIALS = 4


def _cv_search(root):
    argv = ["--dataset", "digits", "--model", "cnn", "--tuner", "random", "--max-trials", str(TRIALS)]
    argv += ["--epochs", "2", "--cv", "3", "--keep-checkpoints", "top-2", "--seed", "3", "--verbose", "0"]
    argv += ["--space", "filters=32", "--space", "convs_per_block=1", "--train-limit", "600", "--directory", str(root)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert tune.main(argv) == 0, err.getvalue()
    return [str(root / "cnn-digits-random"), out.getvalue() + err.getvalue()]


@pytest.fixture(scope="session")
def cv_search(tmp_path_factory):
    """``tune --cv 3 --keep-checkpoints top-2`` of the cnn on digits (run once, read by every test):
    (project folder, console output)."""
    project, output = built_once(tmp_path_factory, "cv_search", _cv_search)
    return pathlib.Path(project), output


class Tables(html.parser.HTMLParser):
    """The cell texts of every ``<table>`` of a page: a list of tables, each a list of rows."""

    def __init__(self):
        super().__init__()
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self.cell)
            self.cell = None

    def handle_data(self, text):
        if self.cell is not None:
            self.cell += text


def page_trial_table(project):
    parser = Tables()
    parser.feed((project / search_page.SEARCH_HTML).read_text(encoding="utf-8"))
    (trial_table,) = [t for t in parser.tables if t and t[0][:2] == ["rank", "trial"]]
    header, *rows = trial_table
    return [dict(zip(header, row)) for row in rows]


def test_the_page_trial_table_equals_trials_csv_and_the_oracle(cv_search):
    project, _ = cv_search
    with open(project / "trials.csv", newline="") as handle:
        csv_rows = {row["trial_id"]: row for row in csv.DictReader(handle)}
    oracle = search.load_tuner(str(project)).oracle
    page = page_trial_table(project)

    assert [row["trial"] for row in page] == sorted(oracle.trials, key=lambda t: -oracle.trials[t].score)
    assert set(csv_rows) == set(oracle.trials) and len(page) == TRIALS
    for row in page:
        trial, from_csv = oracle.trials[row["trial"]], csv_rows[row["trial"]]
        assert row["status"] == from_csv["status"] == trial.status == "COMPLETED"
        assert row["score"] == f"{float(from_csv['score']):.4f}" == f"{trial.score:.4f}"
        assert float(from_csv["score"]) == pytest.approx(trial.score, abs=1e-12)
        for name, value in trial.hyperparameters.values.items():
            expected = f"{value:.4g}" if isinstance(value, float) else str(value)
            assert row[name] == expected, name
            assert from_csv[f"hp/{name}"] == str(value), name


def test_cv_folds_are_recorded_and_their_mean_is_what_the_oracle_ranked_by(cv_search):
    project, output = cv_search
    oracle = search.load_tuner(str(project)).oracle
    with open(project / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        folds = [float(row[f"cv/fold{i}"]) for i in (1, 2, 3)]
        assert float(row["cv/mean"]) == pytest.approx(statistics.mean(folds), abs=1e-12)
        assert float(row["cv/std"]) == pytest.approx(statistics.pstdev(folds), abs=1e-12)
        assert oracle.trials[row["trial_id"]].score == pytest.approx(statistics.mean(folds), abs=1e-9)
        # three trained models per trial, each logged to TensorBoard in its own folder
        assert len(glob.glob(str(project / "logs" / row["trial_id"] / "execution*"))) == 3
    assert "3-fold stratified cross-validation on the 600 training examples" in output
    assert "3-fold stratified cross-validation on the training split" in (project / "search.md").read_text()


def test_cv_folds_are_stratified_seeded_and_never_touch_validation_or_test():
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    _, labels = dataset.pooled()
    folds = data.cv_folds(dataset, splits, DataConfig(batch_size=64), seed=7, folds=3)
    held = [np.concatenate([y.numpy() for _, y in fold.val]) for fold in folds]
    assert sum(len(h) for h in held) == len(splits.train)
    assert sorted(fold.sizes["val"] for fold in folds) == sorted(len(h) for h in held)
    for fold in folds:
        assert fold.sizes["train"] + fold.sizes["val"] == len(splits.train) and fold.sizes["test"] == 0
    # stratified: every class in every held-out fold within one example of a third of its training count
    counts = np.bincount(labels[splits.train], minlength=10)
    for fold_labels in held:
        assert np.all(np.abs(np.bincount(fold_labels, minlength=10) - counts / 3) <= 1)
    again = data.cv_folds(dataset, splits, DataConfig(batch_size=64), seed=7, folds=3)
    assert all(np.array_equal(a, np.concatenate([y.numpy() for _, y in fold.val])) for a, fold in zip(held, again))
    with pytest.raises(ValueError, match="use at most --cv"):
        data.cv_folds(dataset, splits, DataConfig(), seed=0, folds=10_000)


def test_top_2_keeps_the_two_best_trials_weights_only(cv_search):
    project, _ = cv_search
    oracle = search.load_tuner(str(project)).oracle
    best = {trial.trial_id for trial in oracle.get_best_trials(2)}
    kept = {os.path.basename(os.path.dirname(p))[len("trial_") :] for p in glob.glob(str(project / "*" / "*.h5"))}
    assert kept == best
    summary = (project / "search.md").read_text()
    assert re.search(rf"Search folder: [\d.]+ MB on disk, best-epoch weights of 2 of {TRIALS} trials", summary)


def test_one_progress_line_per_trial(cv_search):
    project, output = cv_search
    lines = re.findall(r"^tfcourse: trial (\d+) completed: val_accuracy ([\d.]+) \| best ([\d.]+).*", output, re.M)
    assert [trial for trial, _, _ in lines] == sorted(search.load_tuner(str(project)).oracle.trials)
    best_so_far = [float(best) for _, _, best in lines]
    assert best_so_far == sorted(best_so_far) and best_so_far[-1] == max(float(score) for _, score, _ in lines)
    assert re.search(rf"{TRIALS}/{TRIALS} trials, ~0:00:00 left", output)
    assert "Traceback" not in output and "Search: Running Trial" not in output  # KerasTuner's display replaced


def test_the_page_holds_every_figure_and_the_importance_estimate(cv_search):
    project, _ = cv_search
    markdown = (project / search_page.SEARCH_MD).read_text(encoding="utf-8")
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    expected = {
        search_page.TIMELINE,
        "search_progress.png",
        search_page.PARALLEL,
        "score_vs_hyperparameters.png",
        search_page.IMPORTANCE,
        search_page.CURVES,
    }
    assert set(linked) == expected and all((project / name).stat().st_size > 0 for name in linked)
    page = (project / search_page.SEARCH_HTML).read_text(encoding="utf-8")
    assert page.count('src="data:image/png;base64,') == len(expected)
    assert f"fitted to the {TRIALS} completed trials" in markdown and "rough estimate" in markdown


def test_a_log_sampled_hyperparameter_gets_a_log_axis(cv_search, tmp_path, monkeypatch):
    """The learning rate is sampled on a log scale (1e-4..1e-2): its parallel-coordinates axis is a log axis
    even where the trials' values span less than the factor 20 that makes any other range logarithmic."""
    project, _ = cv_search
    assert "hp/learning_rate" in search_state.log_sampled(str(project))  # read from KerasTuner's oracle
    assert "hp/dropout" not in search_state.log_sampled(str(project))
    rows = [{"hp/learning_rate": lr, "score": score} for lr, score in ((2e-4, 0.8), (6.32e-4, 0.9), (2e-3, 0.85))]
    matrix, labels, _ = search_plots.parallel_axes(rows, ["hp/learning_rate"], "val_accuracy", ["hp/learning_rate"])
    assert matrix[:, 0] == pytest.approx([0.0, 0.5, 1.0], abs=1e-3) and labels[0][0] == "learning_rate (log)"
    matrix, labels, _ = search_plots.parallel_axes(rows, ["hp/learning_rate"], "val_accuracy")  # a plain range of 10x
    assert matrix[1, 0] == pytest.approx(0.2405, abs=1e-3) and labels[0][0] == "learning_rate"
    # the search page passes the oracle's log-sampled names to the figure
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    seen = {}
    drawer = search_plots.plot_parallel_coordinates
    monkeypatch.setattr(
        search_plots, "plot_parallel_coordinates", lambda *a, **k: seen.update(k) or drawer(*a, **k), raising=True
    )
    search_page.write_search_page(str(copy))
    assert "hp/learning_rate" in seen["log_sampled"]


@needs_chromium
def test_the_page_renders_in_headless_chromium(cv_search):
    project, _ = cv_search
    result = browser.check_page(str(project / search_page.SEARCH_HTML))
    assert result["ok"], result["problems"]
    assert result["images"] == result["images_loaded"] == 6


def test_importance_finds_the_hyperparameter_that_moves_the_score():
    rng = np.random.default_rng(0)
    rows = [
        {"status": "COMPLETED", "hp/lr": lr, "hp/noise": noise, "hp/head": head, "score": 1 - lr + 0.01 * noise}
        for lr, noise, head in zip(rng.uniform(0, 1, 20), rng.uniform(0, 1, 20), rng.choice(["gap", "flatten"], 20))
    ]
    shares = search_page.importance(rows, ["hp/lr", "hp/noise", "hp/head"])
    assert max(shares, key=shares.get) == "hp/lr" and shares["hp/lr"] > 0.8
    assert sum(shares.values()) == pytest.approx(1.0)
    assert search_page.importance(rows[:3], ["hp/lr"]) is None  # too few trials to say anything


@pytest.mark.parametrize("text, kept", [("all", None), ("best", 1), ("top-3", 3), ("none", 0)])
def test_keep_checkpoints_values(text, kept):
    assert parse_keep_checkpoints(text) == kept


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--keep-checkpoints", "top-0"], "use all, best, top-K"),
        (["--cv", "3", "--tuner", "hyperband"], "use --tuner random or --tuner bayesian with --cv"),
        (["--cv", "1"], "--cv needs at least 2 folds"),
        (["--cv", "3", "--dataset", "seattle_weather", "--model", "tabular_mlp"], "--cv is for image datasets"),
    ],
)
def test_bad_cv_and_checkpoint_flags_exit_2(argv, message, tmp_path, capsys):
    base = ["--dataset", "digits", "--model", "mlp", "--tuner", "random", "--directory", str(tmp_path)]
    with pytest.raises(SystemExit) as done:
        tune.main(base + argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- spaces that fit the data


SHAPES = {"digits": (8, 8, 1), "fashion_mnist": (28, 28, 1)}
# resnet50 resizes any input to its image_size inside the model: past that layer both shapes build the same
# network, so it is built (ten times, ~1 s each) for one of them
FITS = [
    (model, shape)
    for shape in SHAPES
    for model in list_models("image")
    if (model, shape) != ("resnet50", "fashion_mnist")
]


@pytest.mark.parametrize("model, shape", [pytest.param(m, SHAPES[s], id=f"{s}-{m}") for m, s in FITS])
def test_no_trial_of_a_default_space_fails_for_size(model, shape, tmp_path, capfd):
    """A real 10-trial KerasTuner random search of each model's default space; each trial builds its model
    with the registry's builder (where a size error happens; compiling adds nothing that depends on size,
    and building ResNet50's optimizer alone takes a second) instead of training it."""
    hypermodel = tuners.make_hypermodel(model, shape, 10)
    space = search.hparams.make_search_space(model, {}, shape, 10, batch_size=64)
    tuner = tuners.make_tuner("random", hypermodel, max_trials=10, directory=str(tmp_path), seed=0)
    tuner.oracle.hyperparameters.merge(space)

    def build_only(trial, *args, **kwargs):
        keras.backend.clear_session()
        build_model(model, trial.hyperparameters, shape, 10)
        return {"val_accuracy": float(np.random.default_rng(int(trial.trial_id)).uniform())}

    tuner.run_trial = build_only
    tuner.search()
    statuses = [trial.status for trial in tuner.oracle.trials.values()]
    assert statuses == ["COMPLETED"] * 10, [t.message for t in tuner.oracle.trials.values() if t.message]
    assert "Traceback" not in "".join(capfd.readouterr())


def test_a_failing_trial_prints_one_line_and_keeps_its_traceback(tmp_path, capfd):
    """A trial failing for another reason than size: one console line naming it, its traceback in its folder."""
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    pipelines = data.make_pipelines(dataset, splits, DataConfig(batch_size=64), seed=0)
    hypermodel = tuners.make_hypermodel("mlp", pipelines.input_shape, pipelines.num_classes)
    tuner = tuners.make_tuner("random", hypermodel, max_trials=2, directory=str(tmp_path), project_name="p", seed=1)
    real_build = hypermodel.build

    def build(hp):
        if tuner.oracle.trials and len(tuner.oracle.trials) == 1:
            raise RuntimeError("out of cheese")
        return real_build(hp)

    hypermodel.build = build
    tuners.run_search(tuner, pipelines, epochs=1, verbose=0)
    output = "".join(capfd.readouterr())
    failed = [t for t in tuner.oracle.trials.values() if t.status == "FAILED"]
    assert len(failed) == 1 and "Traceback" not in output
    (line,) = [line for line in output.splitlines() if line.startswith(f"tfcourse: trial {failed[0].trial_id} ")]
    where = os.path.join(str(tmp_path), "p", f"trial_{failed[0].trial_id}", search_state.TRACEBACK_FILE)
    assert "failed: RuntimeError: out of cheese" in line and where in line
    assert "Traceback (most recent call last)" in open(where).read()
    # the page lists it after the scored trial, with its message
    search_page.write_search_page(os.path.join(str(tmp_path), "p"))
    rows = page_trial_table(tmp_path / "p")
    assert [row["status"] for row in rows] == ["COMPLETED", "FAILED"]
    assert rows[1]["message"] == "RuntimeError: out of cheese" and rows[1]["rank"] == ""
