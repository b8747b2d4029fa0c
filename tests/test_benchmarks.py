"""The benchmarks' shared machinery: run reuse only for the very configuration asked for, and the
header every results file opens with."""

import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import _runs  # noqa: E402
import _tables  # noqa: E402

ARGV = ["--model", "mlp", "--dataset", "digits", "--epochs", "1", "--seed", "3", "--no-report"]


@pytest.mark.slow
def test_a_run_is_reused_only_for_the_same_configuration_and_versions(tmp_path, capsys):
    run_dir = str(tmp_path / "mlp")
    assert _runs.train_or_reuse(ARGV, run_dir, "mlp") is False  # trained
    assert _runs.train_or_reuse(ARGV, run_dir, "mlp") is True  # same settings: reused
    for changed, expected in (
        (["--epochs", "2"], "epochs: 1 there, 2 asked"),
        (["--dataset", "fashion_mnist", "--split", "official"], "data.dataset: 'digits' there, 'fashion_mnist' asked"),
        (["--augment"], "data.augment: False there, True asked"),
    ):
        with pytest.raises(SystemExit, match=expected):
            _runs.train_or_reuse(ARGV + changed, run_dir, "mlp")
    config_path = os.path.join(run_dir, "config.json")
    record = json.load(open(config_path))
    del record["config"]["export_formats"]  # a run older than a setting, asked at its default: reused
    json.dump(record, open(config_path, "w"))
    assert _runs.train_or_reuse(ARGV, run_dir, "mlp") is True
    with pytest.raises(SystemExit, match=r"export_formats: None there, \['savedmodel', 'onnx'\] asked"):
        _runs.train_or_reuse(ARGV + ["--export", "--export-format", "onnx"], run_dir, "mlp")
    record["versions"]["tensorflow"] = "2.0.0"
    json.dump(record, open(config_path, "w"))
    with pytest.raises(SystemExit, match="tensorflow 2.0.0 there"):
        _runs.train_or_reuse(ARGV, run_dir, "mlp")


def test_results_header_names_machine_date_and_command(tmp_path):
    out = tmp_path / "table.md"
    _tables.publish("| a |\n|---|\n| 1 |\n", str(out), command=["benchmarks/x.py", "--flag"])
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Machine: ") and f"{os.cpu_count()} cores" in lines[0] and "tensorflow " in lines[0]
    assert lines[1].startswith("Date: 20") and lines[1].rstrip().endswith("UTC.")
    assert lines[2] == "Command: `python benchmarks/x.py --flag`"
    assert lines[-1] == "| 1 |"


def test_numpy_mlp_speed_counts_the_flops_of_an_sgd_step_and_writes_its_table(tmp_path):
    import numpy_mlp_speed

    # 4-3-2: forward 2*(12+6), weight gradients 2*(12+6), the delta of the second layer only 2*6
    assert numpy_mlp_speed.training_flops((4, 3, 2)) == 36 + 36 + 12
    out = tmp_path / "speed.md"
    argv = ["--dataset", "digits", "--rounds", "1", "--epochs-per-round", "2", "--out", str(out)]
    assert numpy_mlp_speed.main(argv) == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("Machine: ") and " threads)" in out.read_text()  # the BLAS and its threads
    rows = [line for line in lines if line.startswith("| default") or line.startswith("| 1 ")]
    assert len(rows) == 2 and all(cell.strip() for row in rows for cell in row.split("|")[1:-1])


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("tfcourse.pages.browser").pages.browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="the EDA benchmark runs the CLI with --check (apt-get install chromium chromium-driver)",
)
def test_eda_benchmark_times_every_section_and_writes_what_it_found(tmp_path):
    import eda_fashion

    from tfcourse.exploration.analysis import SECTIONS

    out = tmp_path / "eda.md"
    assert eda_fashion.main(["--dataset", "digits", "--split", "coursework", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("Machine: ") and "headless Chromium, 0 console errors" in text
    for k, (_, name) in enumerate(SECTIONS):
        assert re.search(rf"^\| \d+\.\d \| {k + 1}\. {re.escape(name)} \|$", text, re.M), name
    assert re.search(r"^\| \*\*\d+\.\d\*\* \| \*\*the whole command\*\* \|$", text, re.M)
    assert "| images | 1797 (coursework split" in text


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_conv_kernels_times_the_gradients_a_training_step_computes(precision):
    """Each timed TensorFlow call computes what its name says: the same numbers as a GradientTape
    through ``tf.nn.conv2d`` with the loss sum(conv(x, w) * dy)."""
    import conv_kernels
    import tensorflow as tf

    calls = conv_kernels.tensorflow_calls(6, 3, 5, precision, 2)
    # the calls' own tensors, rebuilt the same way (same seed, same order)
    dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32
    generator = tf.random.Generator.from_seed(0)
    x, dy, w = (tf.cast(generator.normal(shape), dtype) for shape in ((2, 6, 6, 3), (2, 6, 6, 5), (3, 3, 3, 5)))
    x32, dy32, w32 = (tf.cast(t, tf.float32) for t in (x, dy, w))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x32, w32])
        output = tf.nn.conv2d(x32, w32, 1, "SAME")
        loss = tf.reduce_sum(output * dy32)
    expected = {
        "forward": output,
        "input gradient": tape.gradient(loss, x32),
        "weight gradient": tape.gradient(loss, w32),
    }
    tolerance = 5e-2 if precision == "bfloat16" else 1e-5
    for direction, call in calls.items():
        got = tf.cast(call(), tf.float32).numpy()
        scale = float(tf.reduce_max(tf.abs(expected[direction])))
        assert got.shape == tuple(expected[direction].shape), direction
        assert abs(got - expected[direction].numpy()).max() <= tolerance * scale, direction


def test_conv_kernels_writes_one_row_per_timed_direction(tmp_path):
    import conv_kernels

    out = tmp_path / "conv.md"
    argv = ["--convs", "6x1x4,4x4x8", "--batch-size", "2", "--repeats", "1", "--rounds", "1", "--images", "0"]
    conv_kernels.main([*argv, "--out", str(out)])
    text = out.read_text()
    assert text.startswith("Machine: ") and "TensorFlow: oneDNN v" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| 6x6") or line.startswith("| 4x4")]
    # the first convolution takes the images: forward and weight gradient only; the second all three
    assert [(r[0].strip(), r[2].strip()) for r in rows if r[1].strip() == "float32"] == [
        ("6x6, 1 -> 4", "forward"),
        ("6x6, 1 -> 4", "weight gradient"),
        ("4x4, 4 -> 8", "forward"),
        ("4x4, 4 -> 8", "input gradient"),
        ("4x4, 4 -> 8", "weight gradient"),
    ]
    assert len(rows) == 10 and all(float(r[3]) > 0 for r in rows)
