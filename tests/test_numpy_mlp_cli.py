"""``python -m tfcourse.numpy_mlp`` end to end on scikit-learn's digits: the folder, the numbers
(recomputed from the checkpoint files), resuming, refusing, a kill, bad input, the zero-init
finding and the page in headless Chromium."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfcourse import numpy_mlp
from tfcourse.numpy_nn import NumpyMLP
from tfcourse.numpy_nn import experiment as numpy_experiment
from tfcourse.pages import browser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--dataset", "digits", "--epochs", "4", "--checkpoint-every", "2", "--hidden", "32,16", "--weight-init", "he"]
QUICK += ["--activations", "relu,tanh", "--quiet"]


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("numpy_mlp") / "digits"
    assert numpy_mlp.main(QUICK + ["--output-dir", str(out)]) == 0
    return out


def test_the_experiment_writes_its_folder_and_every_number_comes_from_the_checkpoints(experiment):
    out = experiment
    for activation in ("relu", "tanh"):
        for implementation in ("numpy", "sklearn"):
            assert sorted(os.listdir(out / activation / implementation)) == [
                f"{e}_{activation}_{kind}.npz" for e in (2, 4) for kind in ("biases", "weights")
            ]
        assert (out / f"curves_{activation}.png").stat().st_size > 10_000
    results = json.loads((out / "results.json").read_text())
    rows = results["rows"]
    assert len(rows) == 8  # 2 implementations x 2 activations x 2 checkpoints
    config = numpy_mlp.config_from_args(numpy_mlp.build_parser().parse_args(QUICK))
    arrays = numpy_experiment.load_arrays(config)
    folder = {"NumpyMLP": "numpy", "MLPClassifier": "sklearn"}
    for row in rows:
        # the reported test accuracy is the checkpoint file's, reloaded here; MLPClassifier's weights
        # go through NumpyMLP's forward pass and must give MLPClassifier's own score
        weights = (
            out / row["activation"] / folder[row["implementation"]] / f"{row['epoch']}_{row['activation']}_weights.npz"
        )
        assert NumpyMLP.load(str(weights)).score(arrays.x_test, arrays.y_test) == pytest.approx(row["test_accuracy"])
        assert row["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    best = results["best"]
    assert best["val_accuracy"] == max(row["val_accuracy"] for row in rows)
    report = (out / "report.md").read_text()
    assert f"Best model, chosen on the validation split: {best['implementation']} with {best['activation']}" in report
    assert "NumpyMLP" in report and "MLPClassifier" in report
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert sorted(linked) == ["curves_relu.png", "curves_tanh.png"]
    page = (out / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    # the histories: one value per epoch, the SGD time of each
    result = json.loads((out / "relu" / "result.json").read_text())
    assert all(len(v) == 4 for v in result["numpy"]["history"].values())
    assert all(len(v) == 4 for v in result["sklearn"]["history"].values())
    assert result["numpy"]["distinct_units"] == [32, 16]


def test_a_rerun_resumes_other_settings_are_refused_and_overwrite_replaces(experiment, capsys, tmp_path):
    out = experiment
    stamps = {a: (out / a / "result.json").stat().st_mtime_ns for a in ("relu", "tanh")}
    assert numpy_mlp.main(QUICK + ["--output-dir", str(out)]) == 0
    assert {a: (out / a / "result.json").stat().st_mtime_ns for a in stamps} == stamps  # nothing retrained
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        numpy_mlp.main(QUICK + ["--output-dir", str(out), "--learning-rate", "0.05"])
    assert done.value.code == 2
    assert "holds an experiment with other settings (differs in: learning_rate)" in capsys.readouterr().err
    assert {a: (out / a / "result.json").stat().st_mtime_ns for a in stamps} == stamps
    # --overwrite replaces it (a copy, so the module's fixture stays as it was)
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    argv = QUICK + ["--output-dir", str(copy), "--learning-rate", "0.05", "--activations", "tanh", "--no-sklearn"]
    assert numpy_mlp.main(argv + ["--overwrite"]) == 0
    assert sorted(p for p in os.listdir(copy) if not p.startswith(".")) == [
        "curves_tanh.png", "experiment.json", "report.html", "report.md", "results.json", "tanh",
    ]  # fmt: skip
    assert json.loads((copy / "experiment.json").read_text())["config"]["learning_rate"] == 0.05


@pytest.mark.slow
def test_kill_9_keeps_finished_activations_and_the_rerun_completes(tmp_path):
    out = tmp_path / "killed"
    argv = QUICK[:] + ["--output-dir", str(out)]
    argv[argv.index("--epochs") + 1] = "60"
    argv[argv.index("--checkpoint-every") + 1] = "30"
    argv[argv.index("relu,tanh")] = "relu,tanh,sigmoid"
    process = subprocess.Popen([sys.executable, "-m", "tfcourse.numpy_mlp", *argv], cwd=ROOT)
    try:
        deadline = time.time() + 240
        while not (out / "relu" / "result.json").exists() and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert (out / "relu" / "result.json").exists(), "relu never finished"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = sorted(p for p in os.listdir(out) if (out / p / "result.json").exists())
    assert "relu" in finished and not (out / "report.html").exists()  # nothing that looks complete
    stamp = (out / "relu" / "result.json").stat().st_mtime_ns
    assert numpy_mlp.main(argv) == 0
    assert (out / "relu" / "result.json").stat().st_mtime_ns == stamp  # kept, not retrained
    assert not [p for p in os.listdir(out) if ".partial-" in p]  # the killed activation's folder was swept
    assert not [p for p in os.listdir(out) if p.endswith(".lock")]  # and its claim's lock file
    assert len(json.loads((out / "results.json").read_text())["rows"]) == 12


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--checkpoint-every", "10"], "--checkpoint-every 10 is more than --epochs 4"),
        (["--activations", "softplus"], "expected a comma-separated list of relu, sigmoid, tanh, linear"),
        (["--hidden", "32,0"], "hidden-layer widths must be positive"),
        (["--momentum", "1.5"], "must be in [0, 1)"),
        (["--weight-init", "xavier"], "invalid choice: 'xavier'"),
        (["--dataset", "/no/such/folder"], "/no/such/folder"),
        (["--classes", "3"], "--classes"),
        (["--sklearn-init", "numpy", "--momentum", "0.9"], "holds for plain SGD without batch norm only"),
    ],
)
def test_bad_input_exits_2_with_the_fix_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        numpy_mlp.main(QUICK + ["--output-dir", str(out)] + extra)
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def test_a_folder_that_is_not_an_experiment_is_left_alone(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit) as done:
        numpy_mlp.main(QUICK + ["--output-dir", str(out), "--overwrite"])
    assert done.value.code == 2
    assert "is not a numpy_mlp experiment folder" in capsys.readouterr().err
    assert os.listdir(out) == ["notes.txt"]


def test_zero_initialisation_is_reported_as_unable_to_break_symmetry(tmp_path):
    out = tmp_path / "zero"
    argv = QUICK + ["--output-dir", str(out), "--weight-init", "zero", "--activations", "sigmoid", "--no-sklearn"]
    assert numpy_mlp.main(argv) == 0
    report = (out / "report.md").read_text()
    assert "NumpyMLP sigmoid with weight_init=zero did not break symmetry" in report
    assert "layer 1: 1 distinct of 32; layer 2: 1 distinct of 16" in report
    result = json.loads((out / "sigmoid" / "result.json").read_text())
    assert "cannot break symmetry" in result["numpy"]["symmetry_warning"]
    assert np.isfinite(result["numpy"]["history"]["loss"]).all()  # it trained, and the run shows what that gave


@pytest.mark.skipif(
    browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium)",
)
def test_the_report_renders_in_headless_chromium(experiment):
    result = browser.check_page(str(experiment / "report.html"))
    assert result["ok"], result["problems"]
    assert result["images"] == result["images_loaded"] == 2


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "linear"])
def test_from_the_same_start_numpympl_and_mlpclassifier_take_the_same_steps(tmp_path, activation):
    """--sklearn-init numpy with one full-batch step per epoch (so the shuffles cannot differ): the two
    independent implementations of backpropagation and SGD must write the same weights."""
    out = tmp_path / "same"
    argv = ["--dataset", "digits", "--epochs", "3", "--checkpoint-every", "1", "--hidden", "24,12", "--quiet"]
    argv += ["--batch-size", "1437", "--activations", activation, "--sklearn-init", "numpy", "--weight-init", "glorot"]
    assert numpy_mlp.main(argv + ["--output-dir", str(out)]) == 0
    for epoch in (1, 2, 3):
        ours = NumpyMLP.load(str(out / activation / "numpy" / f"{epoch}_{activation}_weights.npz"))
        theirs = NumpyMLP.load(str(out / activation / "sklearn" / f"{epoch}_{activation}_weights.npz"))
        for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    start = NumpyMLP.load(str(out / activation / "numpy" / f"1_{activation}_weights.npz"))
    assert not np.allclose(start.coefs_[0], ours.coefs_[0], atol=1e-5)  # they did move, three steps of it


def test_a_diverging_activation_is_reported_not_hidden(tmp_path):
    out = tmp_path / "diverged"
    argv = QUICK + ["--output-dir", str(out), "--activations", "linear,tanh", "--learning-rate", "40"]
    argv += ["--sklearn-learning-rate", "0.05", "--normalization", "standardize"]
    assert numpy_mlp.main(argv) == 0  # one activation diverging does not sink the others
    results = json.loads((out / "results.json").read_text())
    diverged = [row for row in results["rows"] if row.get("diverged")]
    assert [row["implementation"] for row in diverged] == ["NumpyMLP"]
    assert "NumpyMLP linear: Training diverged at epoch" in " ".join(results["findings"])
    assert "did not break symmetry" not in " ".join(results["findings"])  # NaN weights are not "identical units"
    report = (out / "report.md").read_text()
    assert "| NumpyMLP | linear | diverged | - | - |" in report


def test_the_summary_without_timings_has_no_seconds_anywhere(experiment):
    config = numpy_mlp.config_from_args(numpy_mlp.build_parser().parse_args(QUICK))
    results = {a: json.loads((experiment / a / "result.json").read_text()) for a in ("relu", "tanh")}
    table, findings = numpy_experiment.summary(config, results, 10, timing=False)
    assert table.splitlines()[0] == "| implementation | activation | epoch | test accuracy | validation accuracy |"
    assert len(table.splitlines()) == 2 + 8 and not any(" s per epoch" in line for line in findings)
    timed, with_speed = numpy_experiment.summary(config, results, 10)
    assert "s/epoch (median)" in timed and any(" s per epoch" in line for line in with_speed)


def test_mini_batch_epochs_match_mlpclassifier_step_for_step_and_it_reshuffles_every_epoch():
    """The experiment's MLPClassifier (``sklearn_model``) from NumpyMLP's start, and NumpyMLP fed the very
    shuffles MLPClassifier draws (a copy of its generator, read through the private ``_random_state``):
    three epochs of 45 mini-batches end at the same weights. If MLPClassifier drew the same shuffle every
    epoch (an integer random_state is turned into a new generator on each partial_fit), it would not."""
    import copy

    from sklearn.utils import shuffle

    argv = ["--dataset", "digits", "--hidden", "24,12", "--weight-init", "glorot", "--sklearn-init", "numpy"]
    config = numpy_mlp.config_from_args(
        numpy_mlp.build_parser().parse_args(argv + ["--epochs", "3", "--checkpoint-every", "3"])
    )
    arrays = numpy_experiment.load_arrays(config)
    theirs = numpy_experiment.sklearn_model(config, "relu", arrays)
    generator = copy.deepcopy(theirs._random_state)

    class SameShuffles(NumpyMLP):
        def _epoch_order(self, n):
            return shuffle(np.arange(n), random_state=generator)

    ours = numpy_experiment.numpy_model(config, "relu", arrays, None)
    ours = SameShuffles(**ours.get_params()).fit(arrays.x_train, arrays.y_train)
    for _ in range(3):
        theirs.partial_fit(arrays.x_train, arrays.y_train)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
