"""Faults planted on purpose (issue 15): no data loss, no silent garbage, every bad input answered.

Each test plants one fault a user or the machine can cause and checks that tfcourse refuses it
with exit status 2 and a message naming the problem, or survives it without losing finished work.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import make_images, write_idx
from tfcourse import cli, train, tune
from tfcourse.jobs import search
from tfcourse.tuning import search_state

TINY_TUNE = [
    "--dataset",
    "digits",
    "--model",
    "mlp",
    "--verbose",
    "0",
    "--seed",
    "5",
    "--tuner",
    "random",
    "--epochs",
    "1",
    "--space",
    "units=32",
    "--space",
    "hidden_layers=1",
]


def exit_code(main, argv):
    """The exit status of a CLI ``main`` (argparse exits through SystemExit)."""
    try:
        return main(list(argv))
    except SystemExit as stop:
        return stop.code


# ----------------------------------------------------------------------------- tune --overwrite


@pytest.mark.parametrize("name", ["..", ".", "ABSOLUTE", "a/b", ""])
def test_project_name_must_be_one_plain_folder_name(tmp_path, monkeypatch, capsys, name):
    # Everything the old code would delete lies inside tmp_path: the test must not harm the machine
    # when run against a broken tfcourse (an absolute name outside it once emptied /tmp).
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    root = tmp_path / "work" / "tuning"
    (root / "other-search").mkdir(parents=True)
    (root / "other-search" / "keep.txt").write_text("a sibling search's file")
    (tmp_path / "work" / "keep.txt").write_text("a file beside the tuning root")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("a folder named by an absolute --project-name")
    name = str(victim) if name == "ABSOLUTE" else name
    code = exit_code(
        tune.main, TINY_TUNE + ["--max-trials", "1", "--directory", str(root), "--project-name", name, "--overwrite"]
    )
    assert code == 2
    assert "one plain folder name" in capsys.readouterr().err
    assert (root / "other-search" / "keep.txt").read_text() == "a sibling search's file"
    assert (tmp_path / "work" / "keep.txt").exists() and (victim / "keep.txt").exists()


def test_overwrite_refuses_a_folder_that_holds_no_tfcourse_search(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    project = tmp_path / "tuning" / "photos"
    project.mkdir(parents=True)
    (project / "holiday.jpg").write_bytes(b"not a search")
    code = exit_code(tune.main, TINY_TUNE + ["--max-trials", "1", "--project-name", "photos", "--overwrite"])
    assert code == 2
    assert "no tfcourse search.json" in capsys.readouterr().err
    assert (project / "holiday.jpg").read_bytes() == b"not a search"


@pytest.mark.slow
def test_overwrite_replaces_a_tfcourse_search_and_epochs_are_part_of_its_identity(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = TINY_TUNE + ["--max-trials", "1", "--project-name", "p"]
    assert exit_code(tune.main, args) == 0
    # resuming with other epochs per trial would mix two budgets in one search
    assert exit_code(tune.main, args + ["--epochs", "2"]) == 2
    assert "epochs: 1 there, 2 now" in capsys.readouterr().err
    assert exit_code(tune.main, args + ["--epochs", "2", "--overwrite"]) == 0
    record = json.loads((tmp_path / "tuning" / "p" / "search.json").read_text())
    assert record["epochs"] == 2


# ----------------------------------------------------------------------------- corrupt KerasTuner state


@pytest.mark.slow
def test_corrupt_trial_and_oracle_files_are_named_and_summary_reports_the_rest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = TINY_TUNE + ["--max-trials", "3", "--project-name", "p", "--space", "learning_rate=[0.001,0.002,0.003]"]
    assert exit_code(tune.main, args) == 0
    project = tmp_path / "tuning" / "p"
    trial_dirs = sorted(path for path in project.iterdir() if path.name.startswith("trial_"))
    assert len(trial_dirs) == 3
    # what a kill during KerasTuner's in-place write leaves: a file cut short, or an empty one
    (trial_dirs[2] / "trial.json").write_text((trial_dirs[2] / "trial.json").read_text()[:40])
    capsys.readouterr()

    assert exit_code(tune.main, args + ["--max-trials", "4"]) == 2
    err = capsys.readouterr().err
    assert os.path.join("tuning", "p", trial_dirs[2].name, "trial.json") in err and "not valid JSON" in err
    assert f"rm -r {os.path.join('tuning', 'p', trial_dirs[2].name)}" in err

    # the summary reports the two readable trials and names the third
    assert exit_code(tune.main, ["--summary", str(project)]) == 0
    rows = json.loads((project / "trials.json").read_text())
    assert [row["trial_id"] for row in rows] == [trial_dirs[0].name[6:], trial_dirs[1].name[6:]]
    summary = (project / "search.md").read_text()
    assert "Left out, unreadable" in summary and str(trial_dirs[2] / "trial.json") in summary

    # the fix the message gives works: that trial is trained again and the search goes on
    saved_summary = (project / "search.md").read_text()
    shutil.rmtree(trial_dirs[2])
    assert exit_code(tune.main, args + ["--max-trials", "4"]) == 0
    rows = json.loads((project / "trials.json").read_text())
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    assert saved_summary != (project / "search.md").read_text()

    (project / "oracle.json").write_text("")
    assert exit_code(tune.main, ["--summary", str(project)]) == 0
    assert "oracle.json: the KerasTuner oracle file is empty" in (project / "search.md").read_text()
    assert exit_code(tune.main, args) == 2
    assert "oracle.json" in capsys.readouterr().err


@pytest.mark.slow
def test_tfcourse_writes_kerastuner_state_atomically(tmp_path, monkeypatch):
    """KerasTuner's own in-place writer (utils.save_json) is never used for oracle, trial or tuner state."""
    from keras_tuner.src import utils as kt_utils

    monkeypatch.chdir(tmp_path)
    in_place = []
    real_save_json = kt_utils.save_json

    def watching_save_json(path, obj):
        name = os.path.basename(path)
        if name in ("oracle.json", "trial.json") or name.startswith("tuner"):  # what a resume reads back
            in_place.append(name)
        return real_save_json(path, obj)

    monkeypatch.setattr(kt_utils, "save_json", watching_save_json)
    assert exit_code(tune.main, TINY_TUNE + ["--max-trials", "2", "--project-name", "p"]) == 0
    assert in_place == []
    project = tmp_path / "tuning" / "p"
    assert len(list(project.glob("trial_*/trial.json"))) == 2 and (project / "oracle.json").exists()
    assert search_state.unreadable_state(str(project)) == []


def test_project_name_check_accepts_plain_names():
    for name in ("cnn-digits-random", "my search", "run.2"):
        search.check_project_name(name)


# ----------------------------------------------------------------------------- diverged training


TINY_TRAIN = ["--dataset", "digits", "--model", "mlp", "--epochs", "1", "--verbose", "0", "--no-report"]


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "x"])
def test_numeric_flags_must_be_finite_and_positive(tmp_path, capsys, value):
    code = exit_code(train.main, TINY_TRAIN + ["--fine-tune-lr-scale", value, "--output-dir", str(tmp_path / "r")])
    assert code == 2
    assert "--fine-tune-lr-scale" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_diverged_model_is_neither_saved_nor_exported(tmp_path, capsys, cnn_run):
    """Fine-tuning at 1e30 times the learning rate turns the loss to NaN: training stops at once,
    nothing is saved and nothing is exported (before, the model was exported and "verified")."""
    code = exit_code(
        train.main,
        [
            "--dataset",
            "digits",
            "--base",
            cnn_run[0],
            "--verbose",
            "0",
            "--no-report",
            "--epochs",
            "1",
            "--fine-tune-epochs",
            "2",
            "--freeze-base",
            "--fine-tune-at",
            "0",
            "--fine-tune-lr-scale",
            "1e30",
            "--hp",
            "head_units=64",
            "--output-dir",
            str(tmp_path / "run"),
            "--export",
            "--export-dir",
            str(tmp_path / "exports"),
        ],
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "diverged" in err and "learning rate" in err
    assert not (tmp_path / "run").exists()
    assert [name for name in os.listdir(tmp_path) if name not in ("exports",)] == []
    assert not (tmp_path / "exports").exists() or not any(
        name.isdigit() for name in os.listdir(tmp_path / "exports" / "transfer")
    )


def test_check_finite_names_the_loss_and_epoch():
    from tfcourse.training import fit

    fit.check_finite({"loss": [0.5, 0.4], "val_loss": [0.6, 0.5], "accuracy": [float("nan")]})
    with pytest.raises(fit.TrainingDiverged, match="val_loss became nan in epoch 2"):
        fit.check_finite({"loss": [0.5, 0.4], "val_loss": [0.6, float("nan")]})
    with pytest.raises(fit.TrainingDiverged, match="loss became inf in epoch 1"):
        fit.check_finite({"loss": [float("inf")]})


def test_check_finite_checks_the_weights_too():
    """A loss can stay finite while weights overflow: the weights decide."""
    import keras

    from tfcourse.training import fit

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs))
    fit.check_finite({"loss": [0.5]}, model=model)
    kernel = model.get_layer("head").kernel
    kernel.assign(np.where(np.eye(3, 2) > 0, np.inf, kernel.numpy()))
    with pytest.raises(fit.TrainingDiverged, match=r"holds 2 non-finite weights .* in 1 variable\(s\): head/kernel"):
        fit.check_finite({"loss": [1.8e27]}, "Fine-tuning", model)
    with pytest.raises(fit.TrainingDiverged, match="outputs on 1 of 2 test examples are not finite"):
        fit.check_finite_outputs(np.array([[0.0, 1.0], [np.nan, 2.0]]))


class _OverflowAtTheEnd:
    """A real Keras callback that, as training ends, overflows one kernel to NaN (the loss logged stays
    finite): the divergence a huge learning rate can cause without a NaN loss."""

    def __new__(cls):
        import keras

        class Overflow(keras.callbacks.Callback):
            def on_train_end(self, logs=None):
                kernel = next(w for w in self.model.trainable_weights if "kernel" in w.path)
                kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

        return Overflow()


@pytest.mark.slow
def test_a_run_whose_weights_diverge_with_a_finite_loss_is_not_published(tmp_path, capsys, monkeypatch):
    from tfcourse.training import fit

    standard = fit.standard_callbacks
    monkeypatch.setattr(fit, "standard_callbacks", lambda *a, **k: standard(*a, **k) + [_OverflowAtTheEnd()])
    code = exit_code(
        train.main,
        TINY_TRAIN + ["--output-dir", str(tmp_path / "run"), "--export", "--export-dir", str(tmp_path / "x")],
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Training diverged: the model holds" in err and "non-finite weights" in err and "nothing was saved" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()
    assert set(os.listdir(tmp_path)) <= {"x"} and not any(
        name.isdigit() for _, _, names in os.walk(tmp_path) for name in names
    )


@pytest.mark.slow
def test_a_saved_model_with_nan_weights_is_refused_everywhere(tmp_path, capsys, cnn_run):
    """A model.keras whose weights are NaN (written before this check existed, or by hand) is refused by
    every command that loads it, instead of printing NaN probabilities with exit status 0."""
    import keras
    from PIL import Image

    from tfcourse import explain as explain_cli
    from tfcourse import export as export_cli
    from tfcourse import predict

    run = tmp_path / "run"
    shutil.copytree(cnn_run[0], run)
    model = keras.models.load_model(run / "model.keras")
    kernel = next(w for w in model.weights if "kernel" in w.path)
    kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))
    model.save(run / "model.keras")
    Image.fromarray(np.full((8, 8), 200, dtype=np.uint8)).save(tmp_path / "seven.png")
    capsys.readouterr()
    for main, argv in (
        (predict.main, [str(run), str(tmp_path / "seven.png"), "--output", str(tmp_path / "p.csv")]),
        (export_cli.main, [str(run), "--export-dir", str(tmp_path / "exports")]),
        (explain_cli.main, [str(run), "--method", "saliency", "--output-dir", str(tmp_path / "explained")]),
    ):
        assert exit_code(main, argv) == 2
        err = capsys.readouterr().err
        assert f"holds {kernel.numpy().size:,} non-finite weights" in err and "diverged" in err, err
        assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["run", "seven.png"]


# ----------------------------------------------------------------------------- class counts from labels


def _idx_folder(root, stray_labels):
    root.mkdir()
    x_train, y_train = make_images(20, seed=1)
    x_test, y_test = make_images(5, seed=2)
    y_train = y_train.copy()
    y_train[: len(stray_labels)] = stray_labels
    write_idx(root / "train-images-idx3-ubyte.gz", x_train)
    write_idx(root / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(root / "t10k-images-idx3-ubyte.gz", x_test)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", y_test)
    return root


@pytest.mark.parametrize(
    "stray, expected",
    [([255] * 5, "labels above that gap: 255 (5 examples)"), ([10], "labels 10 (1 example) are far rarer")],
)
def test_stray_idx_labels_are_named_not_turned_into_classes(tmp_path, capsys, stray, expected):
    folder = _idx_folder(tmp_path / "idx", stray)
    code = exit_code(
        train.main,
        [
            "--dataset",
            str(folder),
            "--model",
            "mlp",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--no-report",
            "--output-dir",
            str(tmp_path / "run"),
        ],
    )
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "label file" in err
    assert not (tmp_path / "run").exists()


def test_a_single_class_image_folder_is_refused(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images" / "cat").mkdir(parents=True)
    for i in range(6):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(tmp_path / "images" / "cat" / f"{i}.png")
    code = exit_code(
        train.main,
        [
            "--dataset",
            str(tmp_path / "images"),
            "--model",
            "mlp",
            "--verbose",
            "0",
            "--output-dir",
            str(tmp_path / "run"),
        ],
    )
    err = capsys.readouterr().err
    assert code == 2 and "found 1 class" in err and "at least 2" in err
    assert not (tmp_path / "run").exists()


def test_an_empty_class_folder_is_refused(image_folder, tmp_path, capsys):
    (image_folder / "zebra").mkdir()
    code = exit_code(
        train.main,
        ["--dataset", str(image_folder), "--model", "mlp", "--verbose", "0", "--output-dir", str(tmp_path / "run")],
    )
    err = capsys.readouterr().err
    assert code == 2 and "have no examples (labels 3)" in err


def test_a_decompression_bomb_png_is_refused(image_folder, tmp_path, capsys):
    from PIL import Image

    # 14,000 x 14,000 one-bit pixels: a few kB on disk, 196 million pixels when decoded
    Image.new("1", (14000, 14000)).save(image_folder / "cat" / "bomb.png")
    code = exit_code(
        train.main,
        ["--dataset", str(image_folder), "--model", "mlp", "--verbose", "0", "--output-dir", str(tmp_path / "run")],
    )
    err = capsys.readouterr().err
    assert code == 2 and "bomb.png" in err and "decompression bomb" in err
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- output and export locations


def test_export_dir_that_is_a_file_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "exports").write_text("a file")
    code = exit_code(
        train.main,
        TINY_TRAIN + ["--export", "--export-dir", str(tmp_path / "exports"), "--output-dir", str(tmp_path / "run")],
    )
    err = capsys.readouterr().err
    assert code == 2 and "--export-dir" in err and "is a file" in err
    assert "loading" not in capsys.readouterr().out  # refused before the data was loaded
    assert sorted(os.listdir(tmp_path)) == ["exports"]


@pytest.mark.parametrize("which", ["train", "explain", "report"])
def test_output_dir_under_a_file_is_refused(tmp_path, capsys, which, mlp_run):
    (tmp_path / "file").write_text("a file")
    target = str(tmp_path / "file" / "out")
    if which == "train":
        code = exit_code(train.main, TINY_TRAIN + ["--output-dir", target])
    elif which == "explain":
        from tfcourse import explain as explain_cli

        code = exit_code(explain_cli.main, [mlp_run, "--method", "saliency", "--output-dir", target])
    else:
        from tfcourse import report as report_cli

        code = exit_code(report_cli.main, [mlp_run, "--output-dir", target, "--no-explanations"])
    err = capsys.readouterr().err
    assert code == 2 and "--output-dir" in err and "is a file" in err
    assert sorted(os.listdir(tmp_path)) == ["file"]


@pytest.mark.slow
def test_a_failed_export_keeps_the_run_and_tfcourse_export_finishes_it(tmp_path, capsys, monkeypatch):
    """The disk fills up while the SavedModel is written: exit 2, the run folder complete and untouched,
    no version folder, and the message's command exports it afterwards."""
    import errno

    from keras.src.export.saved_model import BackendSavedModelExportArchive as Archive

    from tfcourse import export as export_cli

    real_write_out = Archive.write_out

    def disk_full(self, filepath, *args, **kwargs):
        real_write_out(self, filepath, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Archive, "write_out", disk_full)
    run, exports = tmp_path / "run", tmp_path / "exports"
    code = exit_code(train.main, TINY_TRAIN + ["--output-dir", str(run), "--export", "--export-dir", str(exports)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err
    assert f"python -m tfcourse.export {run} --export-dir {exports}" in err
    assert {"config.json", "metrics.json", "model.keras", "predictions.npz"} <= set(os.listdir(run))
    assert "export.json" not in os.listdir(run)
    assert os.listdir(exports / "mlp") == []  # no version, no staging folder

    monkeypatch.setattr(Archive, "write_out", real_write_out)
    assert exit_code(export_cli.main, [str(run), "--export-dir", str(exports)]) == 0
    assert os.listdir(exports / "mlp") == ["1"]
    recorded = json.loads((run / "export.json").read_text())
    assert recorded["export_dir"] == str(exports / "mlp" / "1")
    info = json.loads((exports / "mlp" / "1" / "assets.extra" / "tfcourse.json").read_text())
    assert info["test_accuracy"] == json.loads((run / "metrics.json").read_text())["test_accuracy"]
    assert "verified in a fresh process" in capsys.readouterr().out


# ----------------------------------------------------------------------------- damaged run folders


@pytest.fixture
def run_copy(tmp_path, mlp_run):
    copy = tmp_path / "run"
    shutil.copytree(mlp_run, copy)
    return copy


@pytest.mark.parametrize(
    "content, expected",
    [("{}", "lacks data.class_names and data.normalization"), ("{not json", "not valid JSON"), ("", "is empty")],
)
def test_a_damaged_config_json_is_named(run_copy, tmp_path, capsys, content, expected):
    from tfcourse import explain as explain_cli

    (run_copy / "config.json").write_text(content)
    code = exit_code(explain_cli.main, [str(run_copy), "--method", "saliency"])
    err = capsys.readouterr().err
    assert code == 2 and str(run_copy / "config.json") in err and expected in err
    assert not (run_copy / "explain").exists()


def test_a_zero_byte_model_file_is_named(run_copy, capsys):
    from tfcourse import explain as explain_cli
    from tfcourse import export as export_cli

    (run_copy / "model.keras").write_bytes(b"")
    for main, argv in (
        (explain_cli.main, [str(run_copy), "--method", "saliency"]),
        (export_cli.main, [str(run_copy), "--export-dir", str(run_copy.parent / "exports")]),
    ):
        assert exit_code(main, argv) == 2
        err = capsys.readouterr().err
        assert "model.keras is empty (0 bytes" in err
    assert not (run_copy.parent / "exports").exists() or os.listdir(run_copy.parent / "exports") == []


def test_units_must_be_indices(mlp_run, capsys):
    from tfcourse import explain as explain_cli

    assert exit_code(explain_cli.main, [mlp_run, "--method", "activation_max", "--units", "0,x"]) == 2
    assert "'x' is not a filter or class index" in capsys.readouterr().err


# ----------------------------------------------------------------------------- signals and kill -9


def _start_training(tmp_path, name):
    """A digits run long enough to be stopped mid-training, in its own process; returns it once its
    hidden staging folder exists (training has begun)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tfcourse.train",
            "--dataset",
            "digits",
            "--model",
            "cnn",
            "--epochs",
            "500",
            "--patience",
            "500",
            "--verbose",
            "0",
            "--no-report",
            "--output-dir",
            str(tmp_path / name),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    staging = tmp_path / f".{name}.partial-{process.pid}"
    deadline = time.time() + 120
    while not (staging / "logs").exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.2)
    return process, staging


@pytest.mark.slow
def test_sigterm_cleans_up_like_ctrl_c(tmp_path):
    process, staging = _start_training(tmp_path, "run")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert os.listdir(tmp_path) == []


def test_sigterm_that_surfaces_as_another_exception_still_exits_143(capsys):
    # SIGTERM landing inside TensorFlow's C code once came out as "SystemError: bad argument to internal
    # function" and exit 1 with a traceback; the CLI must still say terminated and exit 143.
    import argparse

    with pytest.raises(SystemExit) as stopped:
        with cli.cli_errors(argparse.ArgumentParser(prog="tfcourse-test")):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here
            except KeyboardInterrupt:
                raise SystemError("bad argument to internal function") from None
    assert stopped.value.code == 143
    assert "terminated (SIGTERM)" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_9_leftovers_are_swept_by_the_next_run(tmp_path, capsys):
    process, staging = _start_training(tmp_path, "killed")
    process.kill()
    process.communicate(timeout=60)
    assert staging.exists()  # kill -9 leaves it: nothing can clean up after SIGKILL
    code = exit_code(train.main, TINY_TRAIN + ["--output-dir", str(tmp_path / "next")])
    assert code == 0
    assert f"removed {staging}" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["next"]


# ----------------------------------------------------------------------------- silently ignored or misleading


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--train-limit", "100000"], "--train-limit 100000 is more than the 1437 training examples"),
        (["--image-size", "16", "16"], "--image-size resizes the images of an image folder only"),
        (["--classes", "5-2"], "the range 5-2 is empty; write it low-high, e.g. 2-5"),
        (["--dataset", "tfds:mnistt", "--no-download"], "did you mean tfds:mnist"),
        (["--model", "cnn", "--hp", "filters=33"], "on the declared step grid"),
    ],
)
def test_flags_that_were_silently_ignored_or_misleading(tmp_path, capsys, argv, expected):
    base = [
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--no-report",
        "--output-dir",
        str(tmp_path / "run"),
    ]
    code = exit_code(train.main, base + argv)
    err = capsys.readouterr().err
    assert code == 2 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_a_file_as_dataset_is_named_as_a_file(tmp_path, capsys):
    table = tmp_path / "weather.csv"
    table.write_text("date,rain\n2020-01-01,1\n")
    assert exit_code(train.main, ["--dataset", str(table), "--output-dir", str(tmp_path / "run")]) == 2
    assert f"--dataset {table} is a file" in capsys.readouterr().err


def test_an_image_too_small_for_any_depth_names_the_smallest_size(image_folder, tmp_path, capsys):
    code = exit_code(
        train.main,
        [
            "--dataset",
            str(image_folder),
            "--model",
            "cnn",
            "--image-size",
            "1",
            "1",
            "--verbose",
            "0",
            "--output-dir",
            str(tmp_path / "run"),
        ],
    )
    err = capsys.readouterr().err
    assert code == 2 and "too small for this model" in err and "at least 2x2" in err and "at most 0" not in err


def test_space_values_off_the_declared_step_are_refused(capsys):
    assert exit_code(tune.main, ["--model", "cnn", "--space", "filters=33", "--show-space"]) == 2
    assert "filters=33" in capsys.readouterr().err
    assert (
        exit_code(tune.main, ["--model", "cnn", "--space", "filters=[32,64]", "--space", "dropout=0.3", "--show-space"])
        == 0
    )


@pytest.mark.slow
def test_class_names_are_escaped_in_the_markdown_report_too(image_folder, tmp_path):
    hostile = "<img src=x onerror=alert(1)>"
    os.rename(image_folder / "cat", image_folder / hostile)
    assert (
        exit_code(
            train.main,
            [
                "--dataset",
                str(image_folder),
                "--model",
                "mlp",
                "--epochs",
                "2",
                "--verbose",
                "0",
                "--output-dir",
                str(tmp_path / "run"),
            ],
        )
        == 0
    )
    for page in ("report.md", "report.html"):
        text = (tmp_path / "run" / page).read_text()
        assert hostile not in text, page
        assert "&lt;img src=x onerror=alert(1)&gt;" in text, page


def test_publishing_a_folder_over_an_earlier_one_never_loses_both(tmp_path, monkeypatch):
    """``rundir.publish_folder``: the earlier result is replaced whole; when the rename of the new one
    fails, the earlier one is back under its name and nothing hidden is left beside it."""
    from tfcourse import rundir

    final, partial = tmp_path / "eda", tmp_path / ".eda.partial-1"
    for folder, text in ((final, "old"), (partial, "new")):
        folder.mkdir()
        (folder / "eda.json").write_text(text)
    real_replace = os.replace

    def rename_fails_for_the_new_folder(src, dst):
        if os.path.basename(src) == partial.name:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(rundir.os, "replace", rename_fails_for_the_new_folder)
    with pytest.raises(OSError):
        rundir.publish_folder(str(partial), str(final))
    assert (final / "eda.json").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == [".eda.partial-1", "eda"]

    monkeypatch.setattr(rundir.os, "replace", real_replace)
    rundir.publish_folder(str(partial), str(final))
    assert (final / "eda.json").read_text() == "new" and os.listdir(tmp_path) == ["eda"]
    (tmp_path / ".next.partial-1").mkdir()
    rundir.publish_folder(str(tmp_path / ".next.partial-1"), str(tmp_path / "next"))  # nothing to replace
    assert sorted(os.listdir(tmp_path)) == ["eda", "next"]


# ----------------------------------------------------------------------------- one process per folder


def test_a_search_folder_is_locked_while_a_process_works_in_it(tmp_path, monkeypatch, capsys):
    """A second ``tune`` on a search in progress is refused with the holder's PID (before: it retrained the
    first one's running trials in the same folders); the lock goes with its process, even on kill -9."""
    from tfcourse import rundir

    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from tfcourse import rundir\n"
            "with rundir.folder_lock(sys.argv[1], 'wait'):\n"
            "    print('held', flush=True); time.sleep(120)",
            str(tmp_path / "tuning" / "s"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert exit_code(tune.main, TINY_TUNE + ["--max-trials", "1", "--project-name", "s"]) == 2
        err = capsys.readouterr().err
        assert f"tuning/s is in use by another process (PID {holder.pid}); wait until it has finished" in err
        assert not (tmp_path / "tuning" / "s").exists()  # the refused command wrote nothing
    finally:
        holder.kill()  # kill -9: no finally of its own runs
        holder.wait()
    with rundir.folder_lock(str(tmp_path / "tuning" / "s"), "wait"):
        assert (tmp_path / "tuning" / ".s.lock").read_text().strip() == str(os.getpid())
    assert not (tmp_path / "tuning" / ".s.lock").exists()


def test_a_claimed_run_folder_refuses_a_rival_and_a_late_collision_keeps_both(tmp_path):
    from tfcourse import rundir

    first = rundir.claim_partial(str(tmp_path / "run"))  # flock: a second open file of ours is a rival too
    with pytest.raises(ValueError, match=rf"run is in use by another process \(PID {os.getpid()}\); pass another"):
        rundir.claim_partial(str(tmp_path / "run"))
    rundir.abandon_partial(first)
    assert os.listdir(tmp_path) == []
    staging = rundir.claim_partial(str(tmp_path / "other" / "run"))
    (tmp_path / "other" / "run").mkdir()  # another process published the same name meanwhile
    (tmp_path / "other" / "run" / "theirs.txt").write_text("their finished run")
    with open(os.path.join(staging, "ours.txt"), "w") as handle:
        handle.write("our finished run")
    assert rundir.publish_new_folder(staging, str(tmp_path / "other" / "run")) == str(tmp_path / "other" / "run-2")
    assert (tmp_path / "other" / "run" / "theirs.txt").exists() and (tmp_path / "other" / "run-2" / "ours.txt").exists()
    staging = rundir.claim_partial(str(tmp_path / "new" / "deeper" / "run"))
    rundir.abandon_partial(staging)  # a refused run takes back the folders its claim made
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_two_train_runs_into_one_output_dir_lose_no_finished_work(tmp_path):
    """Started together: the later claim is refused at once with the other's PID, or (if the first had
    published already) told the folder exists; never a traceback, and a run that finished is kept whole."""
    command = [sys.executable, "-m", "tfcourse.train", *TINY_TRAIN, "--epochs", "3", "--output-dir", "run"]
    runs = [subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 2], results
    (refusal,) = [err for code, err in results if code == 2]
    assert "Traceback" not in refusal
    assert re.search(r"run is in use by another process \(PID \d+\)|exists already", refusal), refusal
    assert (tmp_path / "run" / "model.keras").exists() and (tmp_path / "run" / "metrics.json").exists()
    assert sorted(os.listdir(tmp_path)) == ["run"]
