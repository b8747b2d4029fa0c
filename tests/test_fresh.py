"""The fresh-process check's checker: a new interpreter per script, reused by the writer's later checks,
never seeing the writer's modules, and replaced when a check kills it."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfcourse.serving import fresh

# What a check script sees: its own process id, whether tfcourse's models are loaded there, and the
# module that the previous check of the same checker defined (a reused namespace would show it).
PROBE = """
import sys, os, numpy as np
folder, inputs_path, outputs_path = sys.argv[1:4]
seen = globals().get("LEFT_BEHIND", "")
LEFT_BEHIND = folder
np.savez(outputs_path, pid=np.array(os.getpid()), models=np.array("tfcourse.models" in sys.modules),
         doubled=np.load(inputs_path) * 2, seen=np.array(seen), folder=np.array(folder))
os.write(1, b"what a native library prints\\n")  # onto the checker's file descriptor 1
if folder.endswith("fail"):
    print("about to fail")
    raise ValueError("the export disagrees")
if folder.endswith("die"):
    os.kill(os.getpid(), 9)
"""


def check(tmp_path, name, values=(1, 2, 3)):
    inputs = tmp_path / f"{name}.npy"
    np.save(inputs, np.array(values))
    return fresh.run(PROBE, str(tmp_path / name), str(inputs), str(tmp_path / f"{name}-out.npz"), f"Checking {name}")


@pytest.fixture(autouse=True)
def no_checkers():
    fresh.close_checkers()
    yield
    fresh.close_checkers()


def test_later_checks_reuse_one_new_interpreter_with_a_fresh_namespace(tmp_path):
    import tfcourse.models  # noqa: F401  the writer has them; the checker must not

    first, second = check(tmp_path, "one"), check(tmp_path, "two", (5,))
    assert int(first["pid"]) == int(second["pid"]) != os.getpid()
    assert not first["models"] and not second["models"]
    assert second["doubled"].tolist() == [10] and str(second["folder"]) == str(tmp_path / "two")
    assert str(second["seen"]) == ""  # each check runs the script in a new namespace


def test_relative_paths_follow_the_writers_working_folder(tmp_path, monkeypatch):
    check(tmp_path, "start")  # the checker starts in another folder
    os.makedirs(tmp_path / "later")
    monkeypatch.chdir(tmp_path / "later")
    np.save("in.npy", np.array([4]))
    outputs = fresh.run(PROBE, "model", "in.npy", "out.npz", "Checking model")
    assert outputs["doubled"].tolist() == [8] and str(outputs["folder"]) == str(tmp_path / "later" / "model")


def test_a_failing_check_names_what_failed_with_its_output_and_the_checker_goes_on(tmp_path):
    before = int(check(tmp_path, "before")["pid"])
    with pytest.raises(RuntimeError) as failure:
        check(tmp_path, "must-fail")
    message = str(failure.value)
    assert message.startswith("Checking must-fail in a fresh process failed:")
    assert (
        "about to fail" in message
        and "what a native library prints" in message
        and "ValueError: the export disagrees" in message
    )
    assert int(check(tmp_path, "after")["pid"]) == before


def test_a_check_that_kills_its_checker_fails_and_the_next_check_gets_a_new_one(tmp_path):
    before = int(check(tmp_path, "before")["pid"])
    with pytest.raises(RuntimeError, match=r"checker process ended \(exit code -9\)"):
        check(tmp_path, "die")
    after = int(check(tmp_path, "after")["pid"])
    assert after != before
    os.kill(after, signal.SIGKILL)  # between two checks
    assert int(check(tmp_path, "again")["pid"]) not in (before, after)


def gone(pid):
    """True once ``pid`` has exited (a zombie waiting for its new parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            return any(line.split()[:2] == ["State:", "Z"] for line in handle)
    except FileNotFoundError:
        return True


WRITER = """
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
from test_fresh import PROBE
from tfcourse.serving import fresh
np.save(sys.argv[2] + "/in.npy", np.array([1]))
outputs = fresh.run(PROBE, sys.argv[2] + "/m", sys.argv[2] + "/in.npy", sys.argv[2] + "/out.npz", "Checking")
print(int(outputs["pid"]), flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_a_checker_ends_with_its_writer_even_a_killed_one(tmp_path):
    pid = int(check(tmp_path, "one")["pid"])
    fresh.close_checkers()
    assert gone(pid)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, os.path.dirname(__file__), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    pid = int(writer.stdout.readline())
    assert not gone(pid)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    deadline = time.monotonic() + 30
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(pid)  # its input closed with the writer: no orphan checker holding TensorFlow in memory


def test_a_script_the_checker_cannot_start_is_reported_with_its_error(tmp_path):
    np.save(tmp_path / "in.npy", np.array([1]))
    with pytest.raises(
        RuntimeError, match=r"(?s)Checking broken in a fresh process failed:.*SyntaxError.*ended before"
    ):
        fresh.run("def (:", str(tmp_path), str(tmp_path / "in.npy"), str(tmp_path / "o.npz"), "Checking broken")
