"""A check script run in a new Python process, which sees the export as a model server (or a phone) would:
nothing of the process that wrote it. Its arguments are the export folder, an inputs file and an outputs
file (``np.savez``); its arrays come back."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict

import numpy as np


def run(script: str, folder: str, inputs_path: str, outputs_path: str, what: str) -> Dict[str, np.ndarray]:
    """Runs ``script`` with ``folder inputs_path outputs_path`` as its arguments; returns the arrays it saved.

    Raises:
        RuntimeError: If the process fails: ``what`` (e.g. "Loading saved_models/cnn/1") and its error output.
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(
        [sys.executable, "-c", script, folder, inputs_path, outputs_path], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{what} in a fresh process failed:\n{done.stderr[-3000:]}")
    with np.load(outputs_path) as outputs:
        return {key: outputs[key] for key in outputs.files}
