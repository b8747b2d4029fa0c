"""A check script run in a new Python process, which sees the export as a model server (or a phone) would:
nothing of the process that wrote it. Its arguments are the export folder, an inputs file and an outputs
file (``np.savez``); its arrays come back.

The first check of a script starts its checker: a new interpreter that imports what the script imports
(TensorFlow alone, or the second runtimes alone) and nothing of tfcourse's models or of the writing
process. Later checks of the same script from the same process (a search that exports again, a benchmark,
the test suite) go to that checker instead of paying for a new interpreter and a new ``import tensorflow``
(~6 s on 2 CPU cores): each runs the script afresh, in a new namespace, on its own export. A checker ends
when its writer does (its input closes) or when a check kills it; the next check then starts a new one.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
from typing import Dict, Optional

import numpy as np

# The checker's loop: one request per input line (a JSON list of the script's arguments), two lines back
# on the protocol channel: "started" when it has the request, then "ok" or a JSON object with the error.
# Whatever the script or TensorFlow prints goes to the checker's error log, never into the answers.
_CHECKER = r"""
import gc, json, os, sys, traceback
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout = sys.stderr
script = compile(sys.argv[1], "<check script>", "exec")
for line in sys.stdin:
    answers.write("started\n")
    answers.flush()
    sys.argv = ["-c", *json.loads(line)]
    try:
        exec(script, {"__name__": "__main__"})
        answer = "ok"
    except BaseException:
        answer = json.dumps({"error": traceback.format_exc()})
    gc.collect()  # the script's loaded export is freed before the next one
    sys.stderr.flush()
    answers.write(answer + "\n")
    answers.flush()
"""


class _Checker:
    """One checker process for one script; its error output goes to a temporary file (a pipe nobody read
    would fill and stall it)."""

    def __init__(self, script: str):
        self.log = tempfile.TemporaryFile(mode="w+b")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _CHECKER, script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=env,
        )

    def check(self, arguments) -> Optional[str]:
        """Runs the script on ``arguments``; returns "" on success, the error (traceback and output) if the
        check failed, or None if the checker had ended before it got the request."""
        start = self.log.seek(0, os.SEEK_END)
        try:
            self.process.stdin.write(json.dumps(arguments) + "\n")
            self.process.stdin.flush()
            if self.process.stdout.readline() != "started\n":
                return None
            answer = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            return None
        if answer == "ok\n":
            return ""
        error = json.loads(answer)["error"] if answer.startswith("{") else ""
        if not answer:
            self.process.wait()
            error = f"the checker process ended (exit code {self.process.returncode})"
        return f"{self.output(start)}{error}" or "no output"

    def output(self, start: int = 0) -> str:
        """What the checker has printed since byte ``start`` of its log."""
        self.log.seek(start)
        return self.log.read().decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        try:
            self.process.stdin.close()  # the checker's loop ends at the end of its input
        except OSError:  # it had ended: nothing read what was written last
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self.log.close()


_CHECKERS: Dict[str, _Checker] = {}
_LOCK = threading.Lock()


def close_checkers() -> None:
    """Ends every checker process of this process (also done at exit)."""
    with _LOCK:
        for checker in _CHECKERS.values():
            checker.close()
        _CHECKERS.clear()


atexit.register(close_checkers)


def run(script: str, folder: str, inputs_path: str, outputs_path: str, what: str) -> Dict[str, np.ndarray]:
    """Runs ``script`` with ``folder inputs_path outputs_path`` as its arguments in its checker process;
    returns the arrays it saved.

    Raises:
        RuntimeError: If the check fails: ``what`` (e.g. "Loading saved_models/cnn/1") and its error output.
    """
    arguments = [os.path.abspath(path) for path in (folder, inputs_path, outputs_path)]
    with _LOCK:
        error = None
        for _ in range(2):  # a checker that ended between two checks (killed, out of memory) is replaced
            checker = _CHECKERS.get(script)
            if checker is None or not checker.alive():
                if checker is not None:
                    checker.close()
                checker = _CHECKERS[script] = _Checker(script)
            error = checker.check(arguments)
            if error is not None:
                break
            checker.process.wait()
        if error is None:
            error = (
                f"{checker.output()}the checker process ended before the check (exit code {checker.process.returncode})"
            )
        if error and not checker.alive():
            checker.close()
            del _CHECKERS[script]
    if error:
        raise RuntimeError(f"{what} in a fresh process failed:\n{error[-3000:]}")
    with np.load(outputs_path) as outputs:
        return {key: outputs[key] for key in outputs.files}
