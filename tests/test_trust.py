"""Faults planted on purpose (issue 15): no data loss, no silent garbage, every bad input answered.

Each test plants one fault a user or the machine can cause and checks that tfcourse refuses it
with exit status 2 and a message naming the problem, or survives it without losing finished work.
"""

import json
import os

import pytest

from tfcourse import search, tune, tuners

TINY_TUNE = ["--dataset", "digits", "--model", "mlp", "--verbose", "0", "--seed", "5", "--tuner", "random",
             "--epochs", "1", "--space", "units=32", "--space", "hidden_layers=1"]


def exit_code(main, argv):
    """The exit status of a CLI ``main`` (argparse exits through SystemExit)."""
    try:
        return main(list(argv))
    except SystemExit as stop:
        return stop.code


# ----------------------------------------------------------------------------- tune --overwrite


@pytest.mark.parametrize("name", ["..", ".", "/tmp", "a/b", ""])
def test_project_name_must_be_one_plain_folder_name(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "tuning"
    (root / "other-search").mkdir(parents=True)
    (root / "other-search" / "keep.txt").write_text("a sibling search's file")
    (tmp_path / "keep.txt").write_text("a file beside the tuning root")
    code = exit_code(tune.main, TINY_TUNE + ["--max-trials", "1", "--directory", "tuning", "--project-name", name,
                                             "--overwrite"])
    assert code == 2
    assert "one plain folder name" in capsys.readouterr().err
    assert (root / "other-search" / "keep.txt").read_text() == "a sibling search's file"
    assert (tmp_path / "keep.txt").exists()


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
    summary = (project / "summary.md").read_text()
    assert "Left out, unreadable" in summary and str(trial_dirs[2] / "trial.json") in summary

    # the fix the message gives works: that trial is trained again and the search goes on
    saved_summary = (project / "summary.md").read_text()
    import shutil

    shutil.rmtree(trial_dirs[2])
    assert exit_code(tune.main, args + ["--max-trials", "4"]) == 0
    rows = json.loads((project / "trials.json").read_text())
    assert len(rows) == 4 and all(row["status"] == "COMPLETED" for row in rows)
    assert saved_summary != (project / "summary.md").read_text()

    (project / "oracle.json").write_text("")
    assert exit_code(tune.main, ["--summary", str(project)]) == 0
    assert "oracle.json: the KerasTuner oracle file is empty" in (project / "summary.md").read_text()
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
    assert tuners.unreadable_state(str(project)) == []


def test_project_name_check_accepts_plain_names():
    for name in ("cnn-digits-random", "my search", "run.2"):
        search.check_project_name(name)


# ----------------------------------------------------------------------------- diverged training

from tfcourse import train  # noqa: E402

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
    code = exit_code(train.main, ["--dataset", "digits", "--base", cnn_run[0], "--verbose", "0", "--no-report",
                                  "--epochs", "1", "--fine-tune-epochs", "2", "--freeze-base",
                                  "--fine-tune-at", "0", "--fine-tune-lr-scale", "1e30",
                                  "--hp", "head_units=32",
                                  "--output-dir", str(tmp_path / "run"), "--export", "--export-dir",
                                  str(tmp_path / "exports")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "diverged" in err and "learning rate" in err
    assert not (tmp_path / "run").exists()
    assert [name for name in os.listdir(tmp_path) if name not in ("exports",)] == []
    assert not (tmp_path / "exports").exists() or not any(
        name.isdigit() for name in os.listdir(tmp_path / "exports" / "transfer"))


def test_check_finite_names_the_loss_and_epoch():
    from tfcourse import fit

    fit.check_finite({"loss": [0.5, 0.4], "val_loss": [0.6, 0.5], "accuracy": [float("nan")]})
    with pytest.raises(fit.TrainingDiverged, match="val_loss became nan in epoch 2"):
        fit.check_finite({"loss": [0.5, 0.4], "val_loss": [0.6, float("nan")]})
    with pytest.raises(fit.TrainingDiverged, match="loss became inf in epoch 1"):
        fit.check_finite({"loss": [float("inf")]})
