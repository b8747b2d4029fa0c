"""``python -m tfcourse.train`` end to end on tiny real data, and every way it refuses bad input."""

import glob
import json
import os
import re
import subprocess
import sys

import keras
import pytest

from tfcourse import data, train
from tfcourse.config import DataConfig
from tfcourse.evaluation import evaluate
from tfcourse.training import fit
from tfcourse.tuning import hparams


def run_cli(*argv):
    return train.main(list(argv))


def leftovers(folder):
    return [name for name in os.listdir(folder) if "partial" in name or name.startswith(".tmp")]


def test_end_to_end_on_digits(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        run_cli(
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "8",
            "--seed",
            "3",
            "--hp",
            "units=128",
            "--output-dir",
            str(run_dir),
            "--verbose",
            "0",
        )
        == 0
    )
    files = set(os.listdir(run_dir))
    assert {
        "config.json",
        "history.json",
        "history.csv",
        "metrics.json",
        "model.keras",
        "logs",
        "cost.json",
        "cost.md",
        "report.txt",
        "predictions.npz",
        "report.html",
        "report.md",
        "figures",
    } <= files
    assert not leftovers(tmp_path)

    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["seed"] == 3 and config["hyperparameters"]["units"] == 128
    assert config["hyperparameters"]["optimizer"] == "adam"
    assert config["data"]["split_sizes"] == {"train": 1437, "val": 180, "test": 180}

    history = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert len(history["loss"]) == metrics["epochs_trained"] <= 8
    assert history["loss"][-1] < history["loss"][0]
    assert metrics["test_accuracy"] > 0.85  # it really learnt
    assert set(metrics["per_class_accuracy"]) == set(data.DIGIT_CLASSES)
    # the cost report of the run's model: 64*128 + 128*128 + 128*10 multiply-adds, its parameters
    cost = json.loads((run_dir / "cost.json").read_text())
    assert metrics["macs_per_image"] == cost["macs"] == 64 * 128 + 128 * 128 + 128 * 10
    assert metrics["parameters"] == cost["total_params"] and metrics["training_flops_per_image"] == 6 * cost["macs"]
    assert len(metrics["epoch_train_seconds"]) == metrics["epochs_trained"]
    assert metrics["achieved_training_gflops"] == pytest.approx(
        metrics["train_images_per_second"] * 6 * cost["macs"] / 1e9, rel=0.01
    )
    assert "| dense_0 | Dense | 128 |" in (run_dir / "cost.md").read_text()

    # the saved model reproduces the reported test accuracy on the same split
    model = keras.models.load_model(run_dir / "model.keras")
    dataset = data.load_dataset("digits")
    splits = data.make_splits(dataset, seed=3)
    pipes = data.make_pipelines(dataset, splits, DataConfig(dataset="digits"), seed=3)
    again = evaluate.evaluate_model(
        fit.compile_model(model, hparams.make_hyperparameters("mlp", {}, (8, 8, 1), 10)), pipes.test, pipes.class_names
    )
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert any(name.startswith("events") for root, _, names in os.walk(run_dir / "logs") for name in names)


def test_official_split_on_idx_folder_with_export(tmp_path, idx_folder):
    run_dir, export_root = tmp_path / "run", tmp_path / "exports"
    assert (
        run_cli(
            "--dataset",
            str(idx_folder),
            "--split",
            "official",
            "--model",
            "cnn",
            "--epochs",
            "2",
            "--batch-size",
            "32",
            "--augment",
            "--output-dir",
            str(run_dir),
            "--export",
            "--no-report",
            "--export-dir",
            str(export_root),
            "--verbose",
            "0",
        )
        == 0
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["split_sizes"] == {"train": 180, "val": 20, "test": 50}
    assert json.loads((run_dir / "export.json").read_text())["export_dir"] == str(export_root / "cnn" / "1")
    assert (export_root / "cnn" / "1" / "saved_model.pb").is_file()


def test_cosine_learning_rate_schedule_is_followed_and_recorded(tmp_path):
    run_dir = tmp_path / "run"
    assert (
        run_cli(
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "4",
            "--patience",
            "10",
            "--lr-schedule",
            "cosine",
            "--hp",
            "learning_rate=0.002",
            "--output-dir",
            str(run_dir),
            "--no-report",
            "--verbose",
            "0",
        )
        == 0
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["lr_schedule"] == "cosine"
    history = json.loads((run_dir / "history.json").read_text())
    # 0.002 * (1 + cos(pi * epoch / 4)) / 2 per epoch; no plateau cuts
    assert history["learning_rate"] == pytest.approx([0.002, 0.0017071, 0.001, 0.00029289], rel=1e-4)
    assert json.loads((run_dir / "metrics.json").read_text())["test_accuracy"] > 0.8


@pytest.mark.parametrize("cli", ["train", "tune", "export", "numpy_mlp", "eda"])
def test_help_and_readme_document_every_flag(capsys, cli):
    """Every option the parser has (read off the parser, not a hand-kept list) is described in --help,
    as a whole flag (``--export`` must not pass for ``--export-dir``), and named in the README."""
    import re

    from tfcourse import eda as eda_cli
    from tfcourse import export as export_cli
    from tfcourse import numpy_mlp, tune

    module = {"train": train, "tune": tune, "export": export_cli, "numpy_mlp": numpy_mlp, "eda": eda_cli}[cli]
    parser = module.build_parser()
    flags = sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    )
    assert len(flags) >= (30 if cli == "train" else 3)
    for action in parser._actions:
        if action.option_strings and action.option_strings[0] != "-h":
            assert action.help and action.help.strip(), action.option_strings
    with pytest.raises(SystemExit) as done:
        module.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    readme = open(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")).read()
    docs = readme + "".join(
        open(path).read()
        for path in glob.glob(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "*.md"))
    )
    for flag in flags:
        whole = re.compile(rf"(?<![\w-]){re.escape(flag)}(?![\w-])")
        assert whole.search(text), f"{flag} missing from --help"
        assert whole.search(docs), f"{flag} missing from the README and docs/"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--model", "resnet9000"], "invalid choice: 'resnet9000'"),
        (["--epochs", "0"], "must be a positive integer"),
        (["--split", "random"], "invalid choice: 'random'"),
        (["--frobnicate"], "unrecognized arguments"),
        (["--hp", "dropout"], "expected KEY=VALUE"),
        (["--val-fraction", "1.5"], "must be a fraction"),
        (["--classes", "a-b"], "expected labels like 0-4"),
        (["--lr-schedule", "linear"], "invalid choice: 'linear'"),
        (["--precision", "half"], "invalid choice: 'half'"),
        (["--recipe", "turbo"], "invalid choice: 'turbo'"),
        (["--tta", "rotate"], "invalid choice: 'rotate'"),
        (["--peak-lr", "0"], "must be a positive number"),
    ],
)
def test_invalid_flags_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        run_cli(*argv)
    assert done.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "digits", "--hp", "dropout=0.9"], "must be in [0.0, 0.5]"),
        (["--dataset", "digits", "--hp", "filterz=64"], "has no hyperparameter 'filterz'"),
        (["--dataset", "digits", "--split", "official"], "no official test set"),
        (
            ["--dataset", "digits", "--model", "cnn", "--hp", "conv_blocks=5"],
            "conv_blocks=5 for model 'cnn' must be in [1, 3]",
        ),
        (["--dataset", "/no/such/folder"], "Dataset folder /no/such/folder does not exist"),
        (["--dataset", "fashon_mnist"], "Unknown dataset 'fashon_mnist'"),
        (["--dataset", "digits", "--classes", "3"], "at least two different labels"),
        (["--dataset", "digits", "--classes", "8-10"], "--classes [10] are not labels of digits"),
        (["--dataset", "digits", "--tta", "flip"], "a mirrored digits image is not of the same class"),
        (["--dataset", "digits", "--recipe", "fast", "--hp", "learning_rate=0.01"], "brings its own optimizer"),
        (["--dataset", "digits", "--peak-lr", "0.1"], "--peak-lr sets the peak of a one-cycle recipe"),
        (["--dataset", "digits", "--recipe", "fast", "--lr-schedule", "cosine"], "drop --lr-schedule"),
        (["--dataset", "digits", "--recipe", "fast", "--patience", "2"], "drop --patience"),
        (["--dataset", "seattle_weather", "--recipe", "fast"], "--recipe does not apply to a table"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(argv, message, tmp_path, capsys):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        run_cli(*argv, "--output-dir", str(run_dir), "--verbose", "0")
    assert done.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_existing_run_folder_is_refused(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit) as done:
        run_cli("--dataset", "digits", "--output-dir", str(tmp_path / "run"))
    assert done.value.code == 2 and "exists already" in capsys.readouterr().err


def test_interrupted_training_leaves_no_run_folder(tmp_path, monkeypatch):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    real = fit.standard_callbacks
    monkeypatch.setattr(fit, "standard_callbacks", lambda *a, **k: real(*a, **k) + [Interrupt()])
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: exit status 130, as a shell reports it
        run_cli("--dataset", "digits", "--model", "mlp", "--output-dir", str(tmp_path / "run"), "--verbose", "0")
    assert stop.value.code == 130
    assert os.listdir(tmp_path) == []


def test_list_hp_prints_the_space(capsys):
    assert run_cli("--model", "cnn", "--list-hp") == 0
    out = capsys.readouterr().out
    assert "conv_blocks" in out and "learning_rate" in out and "'sampling': 'log'" in out


def test_list_hp_declares_the_space_for_the_dataset_named(image_folder, capsys):
    assert run_cli("--model", "cnn", "--dataset", "digits", "--list-hp") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# cnn for 8x8x1 inputs and 10 classes (digits)" and out[1].startswith("conv_blocks")
    assert run_cli("--model", "mlp", "--dataset", str(image_folder), "--list-hp") == 0
    assert capsys.readouterr().out.startswith(f"# mlp for 12x10x3 inputs and 3 classes ({image_folder})")
    # the declared space follows the images: only the patch sizes that divide 12x10 (not 28x28x1's 4, 7, 14)
    assert run_cli("--model", "attention", "--dataset", str(image_folder), "--list-hp") == 0
    patch = [line for line in capsys.readouterr().out.splitlines() if line.startswith("patch_size")]
    assert len(patch) == 1 and "'values': [2]" in patch[0] and "'default': 2" in patch[0]


@pytest.mark.slow
def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "tfcourse.train", "--model", "nope"], capture_output=True, text=True)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_same_seed_same_run(tmp_path):
    def run(name, seed):
        run_cli(
            "--dataset",
            "digits",
            "--model",
            "mlp",
            "--epochs",
            "2",
            "--seed",
            str(seed),
            "--deterministic",
            "--no-report",
            "--output-dir",
            str(tmp_path / name),
            "--verbose",
            "0",
        )
        return json.loads((tmp_path / name / "history.json").read_text())["loss"]

    first = run("a", 1)
    assert run("b", 1) == first
    assert run("c", 2) != first


def test_recipe_fast_fills_the_flags_not_given_and_keeps_those_given():
    from tfcourse import train

    parser = train.build_parser()
    fast = train.config_from_args(parser.parse_args(["--recipe", "fast"]))
    assert (fast.epochs, fast.data.batch_size, fast.data.augment, fast.tta) == (16, 256, True, "flip")
    assert fast.precision == "auto" and fast.recipe == "fast"
    digits = train.config_from_args(parser.parse_args(["--recipe", "fast", "--dataset", "digits"]))
    assert digits.tta == "none"  # a mirrored digit is another digit: no flip TTA
    given = train.config_from_args(
        parser.parse_args(["--recipe", "fast", "--epochs", "3", "--batch-size", "64", "--no-augment", "--tta", "none"])
    )
    assert (given.epochs, given.data.batch_size, given.data.augment, given.tta) == (3, 64, False, "none")
    standard = train.config_from_args(parser.parse_args([]))
    assert (standard.epochs, standard.data.batch_size, standard.data.augment, standard.tta) == (30, 128, False, "none")
    # the README's main job: the fast recipe cut to 4 epochs of batch 128, no training augmentation
    quick = train.config_from_args(parser.parse_args(["--recipe", "quick", "--model", "vgg"]))
    assert (quick.epochs, quick.data.batch_size, quick.data.augment, quick.tta) == (4, 128, False, "none")
    assert fit.get_recipe("quick").optimizer == "sgd_nesterov" and fit.get_recipe("quick").label_smoothing == 0.1
    assert train.config_from_args(parser.parse_args(["--recipe", "quick", "--augment"])).data.augment is True


@pytest.mark.slow
def test_the_first_screen_holds_no_tensorflow_start_up_lines(tmp_path):
    """``python -m tfcourse.train --dataset digits --epochs 1`` as a newcomer runs it (no TF_CPP_MIN_LOG_LEVEL):
    its first 10 lines are tfcourse's own, not TensorFlow's C++ start-up log (``I0000 ...``, the absl
    preamble, the CUDA wheel's ``E0000 ... failed call to cuInit``); TFCOURSE_TF_STARTUP_LOG=1 shows them."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TF_CPP")}
    command = [sys.executable, "-m", "tfcourse.train", "--dataset", "digits", "--epochs", "1", "--no-report"]
    done = subprocess.run(
        command + ["--output-dir", str(tmp_path / "run")], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stderr + done.stdout).splitlines()  # stderr first: that is where TensorFlow's lines go
    cpp = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\]|absl::InitializeLog|cuInit|rebuild TensorFlow")
    assert not [line for line in lines if cpp.search(line)], "\n".join(lines[:10])
    assert lines[0] == "tfcourse: loading digits ...", lines[:10]  # the first line a user sees is tfcourse's
    shown = subprocess.run(
        command + ["--output-dir", str(tmp_path / "run2")],
        capture_output=True,
        text=True,
        env=dict(env, TFCOURSE_TF_STARTUP_LOG="1"),
        cwd=tmp_path,
    )
    assert shown.returncode == 0 and cpp.search(shown.stderr), shown.stderr[-2000:]  # hidden, not gone


def test_startup_noise_is_hidden_and_real_errors_are_kept():
    from tfcourse import machine

    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1796672953.356051    4105 port.cc:153] oneDNN custom operations are on.\n",
        "I0000 00:00:1796672953.399520    4105 cpu_feature_guard.cc:227] This TensorFlow binary is optimized\n",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.\n",
        "/x/site-packages/keras/a.py:12: UserWarning: a real Python warning\n",
        "E0000 00:00:1796672958.424481    4105 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n",
        "E0000 00:00:1796672958.424481    4105 op_kernel.cc:1857] OP_REQUIRES failed: a real error\n",
        "F0000 00:00:1796672958.424481    4105 logging.cc:1] Check failed: something fatal\n",
    ]
    assert machine.startup_noise(lines) == [True, True, True, True, False, True, False, False]
