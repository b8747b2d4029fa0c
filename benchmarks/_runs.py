"""How benchmarks train: the real ``python -m tfcourse.train``, one process per run, logged beside the run."""

import os
import subprocess
import sys


def train_run(argv, run_dir: str) -> None:
    """Runs ``python -m tfcourse.train ARGV --output-dir RUN_DIR --verbose 2``, its output in ``RUN_DIR.log``;
    exits naming the log if the run fails."""
    command = [sys.executable, "-m", "tfcourse.train", *argv, "--output-dir", run_dir, "--verbose", "2"]
    print("$ " + " ".join(command), flush=True)
    log_path = run_dir.rstrip("/") + ".log"
    with open(log_path, "w", encoding="utf-8") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"training into {run_dir} failed (exit {result.returncode}); see {log_path}")


def train_or_reuse(argv, run_dir: str, label: str) -> bool:
    """``train_run`` unless ``run_dir`` already holds a finished run (its ``metrics.json``), which is reused
    (delete the folder to retrain). Returns whether it was reused."""
    if os.path.isfile(os.path.join(run_dir, "metrics.json")):
        print(f"{label}: reusing {run_dir}", flush=True)
        return True
    train_run(argv, run_dir)
    return False
