"""The bad-input battery (``benchmarks/bad_inputs.py``): every case refused cleanly, in-process."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

import bad_inputs  # noqa: E402


@pytest.mark.slow
def test_every_bad_input_is_refused_cleanly(tmp_path):
    out = tmp_path / "bad_inputs.md"
    assert bad_inputs.main(["--out", str(out)]) == 0, out.read_text()
    text = out.read_text()
    assert len(bad_inputs.CASES) >= 95
    assert f"{len(bad_inputs.CASES)} passed, 0 failed" in text
    assert text.startswith("Machine: ") and "Command: `python " in text


def test_a_case_that_leaves_something_behind_fails(monkeypatch):
    """The battery's own check: a CLI that exits 2 with the right message but leaves a file behind
    does not pass; nor does one whose traceback escapes."""

    def leaves_a_file(argv):
        open("half-written.json", "w").close()
        raise SystemExit(2)

    def crashes(argv):
        raise KeyError("boom")

    case = bad_inputs.Case("a case", "train", [], r".*")
    monkeypatch.setattr(bad_inputs, "_main_of", lambda cli: leaves_a_file)
    result = bad_inputs.run_case(case)
    assert result["code"] == 2 and result["left"] == ["half-written.json"] and not result["ok"]
    monkeypatch.setattr(bad_inputs, "_main_of", lambda cli: crashes)
    result = bad_inputs.run_case(case)
    assert result["code"] == 1 and result["traceback"] and not result["ok"]
