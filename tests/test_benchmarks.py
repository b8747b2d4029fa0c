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
    __import__("tfcourse.report.browser").report.browser.find_chromium() is None and os.environ.get("CI") != "true",
    reason="the EDA benchmark runs the CLI with --check (apt-get install chromium chromium-driver)",
)
def test_eda_benchmark_times_every_section_and_writes_what_it_found(tmp_path):
    import eda_fashion

    from tfcourse.eda.analysis import SECTIONS

    out = tmp_path / "eda.md"
    assert eda_fashion.main(["--dataset", "digits", "--split", "coursework", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("Machine: ") and "headless Chromium, 0 console errors" in text
    for k, (_, name) in enumerate(SECTIONS):
        assert re.search(rf"^\| \d+\.\d \| {k + 1}\. {re.escape(name)} \|$", text, re.M), name
    assert re.search(r"^\| \*\*\d+\.\d\*\* \| \*\*the whole command\*\* \|$", text, re.M)
    assert "| images | 1797 (coursework split" in text
