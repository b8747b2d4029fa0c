"""``python -m tfcourse.tune`` end to end on scikit-learn's digits: summaries, retrain, resume, errors, distribution."""

import csv
import glob
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tfcourse import data, tune
from tfcourse.config import DataConfig, TuneConfig
from tfcourse.jobs import search
from tfcourse.tuning import hparams, search_state, tuners

TINY = ["--dataset", "digits", "--model", "mlp", "--verbose", "0", "--seed", "5"]


def run_tune(*argv):
    return tune.main(list(argv))


def trial_files(project):
    """trial id -> parsed trial.json, for every trial KerasTuner has recorded."""
    found = {}
    for path in glob.glob(os.path.join(project, "trial_*", "trial.json")):
        try:
            with open(path) as handle:
                trial = json.load(handle)
        except (OSError, json.JSONDecodeError):
            continue  # being written
        found[trial["trial_id"]] = trial
    return found


def hparams_tags(event_dir):
    """Plugin names of the summaries in a TensorBoard log folder's event files."""
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2

    plugins = set()
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for raw in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(raw.numpy())
            plugins |= {value.metadata.plugin_data.plugin_name for value in event.summary.value}
    return plugins


def test_search_summaries_tensorboard_and_retrain(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert (
        run_tune(
            *TINY,
            "--tuner",
            "random",
            "--max-trials",
            "3",
            "--epochs",
            "3",
            "--space",
            "units=[64,128]",
            "--space",
            "hidden_layers=1",
            "--retrain",
            "--output-dir",
            "best",
            "--export-format",
            "onnx",
        )
        == 0
    )
    out = capsys.readouterr().out
    project = tmp_path / "tuning" / "mlp-digits-random"
    # the search's last screen is tfcourse's own short table and the page's path, not KerasTuner's
    # results_summary (a "Trial N summary" block of ~17 lines per trial)
    assert "Results summary" not in out
    assert not re.search(r"^Trial \d+ summary", out, re.M) and "Hyperparameters:" not in out
    table = out.split("Top 3 of 3 trials by val_accuracy (maximised, validation split):\n")[1].splitlines()
    ranked = sorted(json.loads((project / "trials.json").read_text()), key=lambda row: -row["score"])
    for rank, (line, row) in enumerate(zip(table[:3], ranked), start=1):
        assert line.startswith(f"{rank:3d}. trial {row['trial_id']}  {row['score']:.4f}  "), line
        assert f"units={row['hp/units']}" in line and "tuner/" not in line
    page = os.path.join("tuning", "mlp-digits-random", "search.html")
    assert table[3] == f"tfcourse: search page {page} (search.md, trials.csv and figures beside it)"
    for name in (
        "trials.csv",
        "trials.json",
        "search.md",
        "search.json",
        "search_progress.png",
        "score_vs_hyperparameters.png",
    ):
        assert (project / name).stat().st_size > 0, name

    rows = json.loads((project / "trials.json").read_text())
    assert len(rows) == 3 and all(row["status"] == "COMPLETED" for row in rows)
    assert all(row["hp/units"] in (64, 128) and row["hp/hidden_layers"] == 1 for row in rows)
    assert all(1 <= row["best_epoch"] <= row["epochs_trained"] <= 3 for row in rows)
    with open(project / "trials.csv", newline="") as handle:
        assert [row["trial_id"] for row in csv.DictReader(handle)] == [row["trial_id"] for row in rows]
    record = json.loads((project / "search.json").read_text())
    assert record["direction"] == "max" and record["objective"] == "val_accuracy" and record["tuner"] == "random"

    # each trial logs to TensorBoard with the HParams plugin
    for row in rows:
        assert "hparams" in hparams_tags(project / "logs" / row["trial_id"] / "execution0")

    # the retrained run: best trial, its best epoch count, tested once, exported like tfcourse.train --export
    best = max(rows, key=lambda row: row["score"])
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert config["tuned_from"]["trial_id"] == best["trial_id"]
    assert config["hyperparameters"]["units"] == best["hp/units"]
    assert config["hyperparameters"]["learning_rate"] == pytest.approx(best["hp/learning_rate"])
    assert config["config"]["data"]["batch_size"] == best["hp/batch_size"]
    assert metrics["epochs_trained"] == best["best_epoch"]
    saved = np.load(tmp_path / "best" / "predictions.npz")  # the test accuracy is that of the saved predictions
    assert metrics["test_accuracy"] == pytest.approx((saved["logits"].argmax(axis=1) == saved["labels"]).mean())
    assert metrics["test_accuracy"] > 0.5  # it learnt: ten classes, chance is 0.1
    export_dir = json.loads((tmp_path / "best" / "export.json").read_text())["export_dir"]
    assert os.path.isfile(os.path.join(export_dir, "saved_model.pb"))
    assert "export verified in a fresh process" in out
    assert os.path.isfile(os.path.join(export_dir, "model.onnx")) and "model.onnx" in out  # --export-format onnx
    # the search page, rewritten after the retrain, links the retrained run's report
    page = (project / "search.html").read_text(encoding="utf-8")
    assert 'href="../../best/report.html"' in page and (tmp_path / "best" / "report.html").is_file()
    assert f"trial {best['trial_id']} was retrained on train and tested once" in page


def test_summary_of_an_existing_search(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_tune(*TINY, "--tuner", "bayesian", "--max-trials", "2", "--epochs", "1") == 0
    project = tmp_path / "tuning" / "mlp-digits-bayesian"
    for name in ("search.md", "trials.csv", "search_progress.png"):
        (project / name).unlink()
    capsys.readouterr()
    assert run_tune("--summary", str(project)) == 0
    out = capsys.readouterr().out
    assert "Top 2 of 2 trials by val_accuracy" in out and f"tfcourse: search page {project / 'search.html'}" in out
    assert (project / "search.md").exists() and (project / "trials.csv").exists()
    assert (project / "search_progress.png").exists()


def test_retrain_on_train_and_val(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        run_tune(  # one trial is enough: what is checked is the retrained model
            *TINY,
            "--tuner",
            "random",
            "--max-trials",
            "1",
            "--epochs",
            "1",
            "--retrain",
            "--retrain-on",
            "train+val",
            "--retrain-epochs",
            "4",
            "--output-dir",
            "best",
        )
        == 0
    )
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    history = json.loads((tmp_path / "best" / "history.json").read_text())
    assert config["data"]["fitted_on"] == "train+val"
    assert "val_loss" not in history and len(history["loss"]) == 4  # no validation, every epoch runs
    rates = history["learning_rate"]
    assert rates[0] == pytest.approx(config["hyperparameters"]["learning_rate"], rel=1e-5)
    assert all(later < earlier for earlier, later in zip(rates, rates[1:]))  # cosine decay


def test_cosine_schedule_in_every_trial_and_the_retrained_model(tmp_path, monkeypatch, capsys, recwarn):
    monkeypatch.chdir(tmp_path)
    assert (
        run_tune(
            *TINY,
            "--tuner",
            "hyperband",
            "--max-epochs",
            "3",
            "--factor",
            "3",
            "--patience",
            "10",
            "--lr-schedule",
            "cosine",
            "--retrain",
            "--retrain-epochs",
            "3",
            "--output-dir",
            "best",
        )
        == 0
    )
    project = tmp_path / "tuning" / "mlp-digits-hyperband"
    resumed = 0
    for path in sorted(project.glob("trial_*/trial.json")):
        trial = json.loads(path.read_text())
        values = trial["hyperparameters"]["values"]
        rate, first, last = values["learning_rate"], values["tuner/initial_epoch"], values["tuner/epochs"]
        # KerasTuner keeps the metrics of the trial's best epoch: its learning rate must lie on this
        # trial's own cosine curve (over max_epochs 3, epochs counted across Hyperband's rounds),
        # at an epoch this trial trained.
        ((recorded,),) = [obs["value"] for obs in trial["metrics"]["metrics"]["learning_rate"]["observations"]]
        curve = [rate * 0.5 * (1 + math.cos(math.pi * epoch / 3)) for epoch in range(first, last)]
        assert any(recorded == pytest.approx(point, rel=1e-5) for point in curve), (path, recorded, curve)
        resumed += first > 0
    assert resumed >= 1  # a trial went on from an earlier round's checkpoint
    # and got its optimizer state back with its weights (built at compile time: fit.compile_model)
    assert not [w for w in recwarn if "Skipping variable loading for optimizer" in str(w.message)]
    assert json.loads((project / "search.json").read_text())["lr_schedule"] == "cosine"
    page = (project / "search.md").read_text()
    assert "| budget | Hyperband rounds up to 3 epochs, factor 3 |" in page
    assert "| early stopping | after 10 epochs without val_loss improvement |" in page
    assert "| learning rate schedule | cosine |" in page
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    rates = json.loads((tmp_path / "best" / "history.json").read_text())["learning_rate"]
    assert config["config"]["lr_schedule"] == "cosine"
    assert rates == pytest.approx(
        [config["hyperparameters"]["learning_rate"] * 0.5 * (1 + math.cos(math.pi * e / 3)) for e in range(len(rates))],
        rel=1e-5,
    )
    # resuming the search with the other schedule would mix two searches
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_tune(*TINY, "--tuner", "hyperband", "--max-epochs", "3", "--factor", "3")
    assert exit_info.value.code == 2
    assert "lr_schedule: 'cosine' there, 'plateau' now" in capsys.readouterr().err


def test_batch_size_is_a_hyperparameter():
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=0)
    pipelines = data.make_pipelines(dataset, splits, DataConfig(batch_size=128), seed=0)
    hypermodel = tuners.make_hypermodel(
        "mlp",
        pipelines.input_shape,
        pipelines.num_classes,
        steps_per_execution=1,
        make_train=pipelines.make_train,
        batch_size=pipelines.batch_size,
    )

    class CountBatches(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_end(self, batch, logs=None):
            CountBatches.batches += 1

    for size in (32, 256):
        hp = hparams.make_search_space("mlp", {"batch_size": size}, (8, 8, 1), 10, batch_size=128)
        model = hypermodel.build(hp)
        CountBatches.batches = 0
        hypermodel.fit(hp, model, pipelines.train, epochs=1, verbose=0, callbacks=[CountBatches()])
        assert CountBatches.batches == math.ceil(len(splits.train) / size)


def test_search_space_overrides():
    hp = hparams.make_search_space(
        "cnn",
        {
            "conv_blocks": {"min": 2, "max": 3},
            "filters": [64, 128],
            "batch_norm": True,
            "learning_rate": {"min": 3e-4, "max": 3e-3},
        },
        (28, 28, 1),
        10,
        128,
    )
    entries = {entry["name"]: entry for entry in hparams.describe_space(hp)}
    assert (entries["conv_blocks"]["min_value"], entries["conv_blocks"]["max_value"]) == (2, 3)
    assert entries["filters"]["values"] == [64, 128]
    assert entries["batch_norm"]["type"] == "Fixed"
    assert entries["learning_rate"]["sampling"] == "log"  # kept from the builder's declaration
    errors = [
        ({"filterz": 64}, "has no hyperparameter 'filterz'"),
        ({"filters": [64, 1024]}, r"filters=1024 .* must be in \[32, 256\]"),
        ({"pooling": {"min": 1, "max": 2}}, "needs a numeric hyperparameter"),
        ({"dropout": {"min": 0.4, "max": 0.1}}, "min <= max"),
        ({"optimizer": ["adam", "adagrad"]}, "must be one of"),
    ]
    for overrides, message in errors:
        with pytest.raises(ValueError, match=message):
            hparams.make_search_space("cnn", overrides, (28, 28, 1), 10, 128)
    assert hparams.parse_space_value("1e-4..1e-2") == {"min": 1e-4, "max": 1e-2}
    assert hparams.parse_space_value("[1, 2]") == [1, 2]
    assert hparams.parse_space_value("gelu") == "gelu"


def test_show_space_and_space_file(tmp_path, capsys):
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps({"units": [64, 96], "dropout": {"min": 0.1, "max": 0.2}}))
    assert run_tune("--model", "mlp", "--show-space", "--space", str(space_file), "--space", "activation=tanh") == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "'values': [64, 96]" in lines["units"]
    assert "'min_value': 0.1" in lines["dropout"] and "'max_value': 0.2" in lines["dropout"]
    assert "Fixed" in lines["activation"] and "tanh" in lines["activation"]
    assert "batch_size" in lines and "learning_rate" in lines
    assert out.splitlines()[0] == "# mlp for 28x28x1 inputs and 10 classes (fashion_mnist)"
    assert run_tune("--model", "cnn", "--dataset", "digits", "--show-space") == 0
    assert capsys.readouterr().out.startswith("# cnn for 8x8x1 inputs and 10 classes (digits)\n")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tuner", "grid"], "invalid choice: 'grid'"),
        (["--max-trials", "0"], "must be a positive integer"),
        (["--space", "units"], "expected KEY=VALUE"),
        (["--space", "units=[64,"], "not a JSON list"),
        (["--space", "units=4096"], "must be in [32, 1024]"),
        (["--space", "missing.json"], "missing.json: search-space file not found"),
        (["--factor", "1"], "factor must be at least 2"),
        (["--role", "worker"], "needs --oracle HOST:PORT"),
        (["--role", "worker", "--oracle", "nohost"], "expected HOST:PORT"),
        (["--role", "worker", "--oracle", "127.0.0.1:1", "--tuner-id", "chief2"], "must not contain 'chief'"),
        (["--summary", "nowhere"], "holds no KerasTuner trials"),
        (["--export-format", "onnx"], "add --retrain"),
        (["--retrain", "--export-format", "saved_model"], "unknown export format saved_model"),
    ],
)
def test_bad_input_exits_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_tune(*TINY, *argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "tuning" / "mlp-digits-hyperband")


def test_a_directory_holding_another_search_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_tune(*TINY, "--tuner", "random", "--max-trials", "1", "--epochs", "1", "--project-name", "p") == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_tune(*TINY, "--tuner", "bayesian", "--max-trials", "1", "--epochs", "1", "--project-name", "p")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds a different search (tuner: 'random' there, 'bayesian' now)" in err and "--overwrite" in err
    # --overwrite replaces it
    assert (
        run_tune(
            *TINY, "--tuner", "bayesian", "--max-trials", "1", "--epochs", "1", "--project-name", "p", "--overwrite"
        )
        == 0
    )
    assert json.loads((tmp_path / "tuning" / "p" / "search.json").read_text())["tuner"] == "bayesian"
    # a folder with something else in it
    other = tmp_path / "tuning" / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit):
        run_tune(*TINY, "--project-name", "other")
    assert "holds no tfcourse search.json" in capsys.readouterr().err


def test_time_budget_stops_new_trials(tmp_path):
    config = TuneConfig(
        model="mlp",
        tuner="random",
        max_trials=50,
        epochs=1,
        max_minutes=0.02,
        directory=str(tmp_path),
        data=DataConfig(dataset="digits"),
    )
    result = search.run_search(config, verbose=0)
    assert not result.finished
    assert 1 <= len(result.tuner.oracle.trials) < 50


def test_a_trial_that_would_overrun_the_budget_stops_at_an_epoch_boundary_and_says_so(tmp_path):
    """400 epochs of the digits mlp take far longer than a 6-second budget: the first trial stops at an
    epoch boundary before the deadline, keeps the score of its epochs so far, and trials.csv and the search
    page mark it as stopped by the budget; no second trial starts."""
    config = TuneConfig(
        model="mlp",
        tuner="random",
        max_trials=5,
        epochs=400,
        patience=400,
        max_minutes=0.1,
        directory=str(tmp_path),
        data=DataConfig(dataset="digits"),
    )
    started = time.time()
    result = search.run_search(config, verbose=0)
    assert not result.finished and time.time() - started < 60
    project = result.tuner.project_dir
    with open(os.path.join(project, "trials.csv"), newline="") as handle:
        rows = list(csv.DictReader(handle))
    stopped = [row for row in rows if row["stopped_by_budget"] == "True"]
    assert stopped and all(row["score"] and 0 < int(row["epochs_trained"]) < 400 for row in stopped), rows
    trial = json.loads(open(os.path.join(project, f"trial_{stopped[0]['trial_id']}", "trial.json")).read())
    assert trial["status"] == "COMPLETED" and trial["score"] == pytest.approx(float(stopped[0]["score"]))
    page = open(os.path.join(project, "search.md"), encoding="utf-8").read()
    assert "COMPLETED, stopped by the time budget" in page and "stopped early by the time budget" in page


def test_the_search_leaves_the_budget_the_retrain_will_need(tmp_path):
    """With a retrain to follow, the search ends once what is left of the budget would not cover it: the
    best trial's seconds per epoch times the retrain's epochs, plus the fixed overhead. A retrain of 10,000
    epochs cannot fit in 30 s, so no trial starts after the first (without the reserve, a dozen would)."""
    config = TuneConfig(
        model="mlp",
        tuner="random",
        max_trials=50,
        epochs=2,
        max_minutes=0.5,
        directory=str(tmp_path),
        data=DataConfig(dataset="digits"),
    )
    result = search.run_search(config, verbose=0, retrain=(10_000, "train"))
    assert not result.finished and len(result.tuner.oracle.trials) == 1
    (cost,) = result.tuner.trial_costs().values()
    needed = result.tuner.reserve()
    assert needed == pytest.approx(cost["seconds_per_epoch"] * 10_000 + search.RETRAIN_OVERHEAD_SECONDS)
    # on train + val the epochs are longer by the share of validation images (180 on 1,437)
    both = search.retrain_reserve(result.tuner, 10, "train+val", {"train": 1437, "val": 180})()
    assert both == pytest.approx(cost["seconds_per_epoch"] * 10 * 1617 / 1437 + search.RETRAIN_OVERHEAD_SECONDS)


def _spawn(args, cwd, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "tfcourse.tune", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_search_resumes_without_redoing_completed_trials(tmp_path):
    # --keep-checkpoints none: no trial's weights are kept, and a resume needs none of them
    args = [*TINY, "--tuner", "random", "--max-trials", "5", "--epochs", "4", "--patience", "10"]
    args += ["--keep-checkpoints", "none"]
    project = tmp_path / "tuning" / "mlp-digits-random"
    process = _spawn(args, tmp_path)
    deadline = time.time() + 240
    while time.time() < deadline:
        done = {k: v for k, v in trial_files(project).items() if v["status"] == "COMPLETED"}
        if len(done) >= 2 or process.poll() is not None:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stdout.read()
    before = {k: v for k, v in trial_files(project).items() if v["status"] == "COMPLETED"}
    assert 2 <= len(before) < 5
    stats_before = {k: (project / f"trial_{k}" / search_state.TRIAL_STATS_FILE).read_text() for k in before}

    process = _spawn(args, tmp_path)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    resumed_with = int(re.search(r"\((\d+) trials there already\)", output).group(1))
    assert resumed_with >= len(before)  # the killed search's trials were reloaded
    after = trial_files(project)
    assert len(after) == 5
    assert all(trial["status"] == "COMPLETED" for trial in after.values())
    for trial_id, trial in before.items():  # kept as they were, not trained again
        assert after[trial_id]["score"] == trial["score"]
        assert after[trial_id]["hyperparameters"] == trial["hyperparameters"]
        assert (project / f"trial_{trial_id}" / search_state.TRIAL_STATS_FILE).read_text() == stats_before[trial_id]
    rows = json.loads((project / "trials.json").read_text())
    assert len(rows) == 5
    assert not glob.glob(str(project / "**" / "*.h5"), recursive=True) and not any(row["checkpoint"] for row in rows)
    assert "best-epoch weights of 0 of 5 trials (--keep-checkpoints none)" in (project / "search.md").read_text()


MEMORY_PROBE = """
import gc, json, sys
from tfcourse import data, machine
from tfcourse.config import DataConfig
from tfcourse.training import fit
from tfcourse.tuning import hparams, tuners
machine.freeze_imported_objects()  # as python -m tfcourse.tune does
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20
dataset = data.load_dataset("digits")
splits = data.make_splits(dataset, seed=0)
pipelines = data.make_pipelines(dataset, splits, DataConfig(batch_size=128), seed=0)
hypermodel = tuners.make_hypermodel("cnn", pipelines.input_shape, pipelines.num_classes)
# Every size is fixed, so all trials build models of one footprint: a trial that happens to draw
# 256 filters would raise the allocator's high-water mark once, a step that is not a leak.
fixed = {"conv_blocks": 1, "filters": 32, "convs_per_block": 1, "kernel_size": 3, "head": "flatten",
         "dense_layers": 1, "dense_units": 64, "batch_size": 128}
space = hparams.make_search_space("cnn", fixed, (8, 8, 1), 10, 128)
tuner = tuners.make_tuner("random", hypermodel, max_trials=10, directory=sys.argv[1], project_name="rss",
                          hyperparameters=space, seed=0)
readings = []
for total in (10, 20):
    tuner.oracle.max_trials = total
    tuners.run_search(tuner, pipelines, epochs=1, verbose=0)
    gc.collect()
    readings.append(rss_mb())
print(json.dumps({"trials": len(tuner.oracle.trials), "rss_mb": readings}))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")
def test_memory_stays_bounded_over_many_trials(tmp_path):
    # A clean process: pytest's own log and warning capture would keep objects alive.
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(tmp_path)], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    readings = probe["rss_mb"]
    assert probe["trials"] == 20
    # The first 10 trials warm TensorFlow up; after that 10 more trials must add little. Measured for 20
    # such trials (same-size models, the rest of the space random): +4..7 MB with
    # tuners.releasing_graph_gradients, +123 MB without it (every trial then keeps its whole training
    # graph: ~6 MB a trial, ~60 MB for these 10). With sizes drawn at random too, single runs stepped by up to
    # +146 MB.
    assert readings[-1] - readings[0] < 30, readings


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_distributed_chief_and_two_workers(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    args = [
        *TINY,
        "--tuner",
        "random",
        "--max-trials",
        "6",
        "--epochs",
        "3",
        "--patience",
        "10",
        "--directory",
        str(tmp_path),
        "--project-name",
        "shared",
    ]
    chief = _spawn([*args, "--role", "chief", "--oracle", address], tmp_path)
    workers = [
        _spawn([*args, "--role", "worker", "--oracle", address, "--tuner-id", f"worker{i}"], tmp_path) for i in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], [output[-1500:] for output in outputs]
    chief_output = chief.communicate(timeout=120)[0]
    assert chief.returncode == 0, chief_output
    rows = json.loads((tmp_path / "shared" / "trials.json").read_text())
    assert len(rows) == 6 and all(row["status"] == "COMPLETED" for row in rows)
    assert {row["tuner_id"] for row in rows} == {"worker0", "worker1"}  # the trials were spread over both
    assert "Top 5 of 6 trials" in chief_output and (tmp_path / "shared" / "search.md").exists()
    assert all("Top " not in output for output in outputs)  # workers only train
    # live progress on the chief: one line per trial as it ends, whichever worker trained it
    ended = re.findall(r"^tfcourse: trial (\d+) completed: val_accuracy [\d.]+ \| best ", chief_output, re.M)
    assert sorted(ended) == sorted(row["trial_id"] for row in rows), chief_output


def test_mirrored_strategy(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_tune(*TINY, "--tuner", "random", "--max-trials", "1", "--epochs", "1", "--distribution", "mirrored") == 0
    out = capsys.readouterr().out
    assert "MirroredStrategy over 1 device(s)" in out
    assert (
        json.loads((tmp_path / "tuning" / "mlp-digits-random" / "trials.json").read_text())[0]["status"] == "COMPLETED"
    )


@pytest.mark.parametrize("command", ["train", "tune", "predict", "numpy_mlp", "eda", "export", "cost"])
def test_help_states_each_default_once(command):
    """``--help`` once printed "(default: None)" after defaults each flag's help states by hand."""
    import importlib

    module = importlib.import_module(f"tfcourse.{command}")
    text = " ".join(module.build_parser().format_help().split())
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: ())" not in text
    if command == "tune":
        assert "default cnn; for a table tabular_mlp)" in text
        assert "default cnn; for a table tabular_mlp) (default" not in text
        assert "(default: 5)" in text or "(default: 10)" in text  # a default the help leaves out is still shown
