"""A search folder read back: KerasTuner's own files (``oracle.json``, ``trial_*/trial.json``) plus the wall
time, epochs and histories tfcourse records beside each trial and the search's settings (``search.json``),
as rows (``trial_rows``), checks (``unreadable_state``, ``check_state``) and the terminal's last screen
(``top_trials_lines``); works on any finished or interrupted search directory.
"""

from __future__ import annotations

import glob
import os
import statistics
from typing import Any, Dict, List, Optional, Sequence

import keras_tuner as kt

from tfcourse import rundir
from tfcourse.config import keep_checkpoints_name
from tfcourse.tuning import hparams

TRIAL_STATS_FILE = "tfcourse_trial.json"


TRACEBACK_FILE = "traceback.txt"  # a failed trial's traceback, in its own folder


CHECKPOINT_FILE = "checkpoint.weights.h5"  # KerasTuner's best-epoch weights of a trial (Keras 3)


SEARCH_FILE = "search.json"  # tfcourse's record of a search's settings (written by tfcourse.jobs.search)


def _best_index(values: Sequence[float], direction: str) -> int:
    pick = max if direction == "max" else min
    return pick(range(len(values)), key=values.__getitem__)


def best_epoch(
    records: Sequence[Dict[str, Sequence[float]]], objective: str, direction: str, initial_epoch: int = 0
) -> Optional[int]:
    """The 1-based epoch a trial's models were best at, counted from the search's first epoch.

    With several executions per trial it is KerasTuner's own choice (``get_best_step``: the
    mean of the executions' 0-based best epochs, rounded down), so ``--retrain`` trains for the
    epoch count KerasTuner reports for the trial.

    Args:
        records: One ``History.history`` dict per execution.
        initial_epoch: Where the trial's fits started (Hyperband's ``tuner/initial_epoch``).
    """
    zero_based = [_best_index(record[objective], direction) for record in records if record.get(objective)]
    if not zero_based:
        return None
    return initial_epoch + int(statistics.mean(zero_based)) + 1


def folder_bytes(directory: str) -> int:
    """Bytes of every file under ``directory``."""
    return sum(os.path.getsize(os.path.join(folder, name)) for folder, _, names in os.walk(directory) for name in names)


STATE_FILES = ("oracle.json", os.path.join("trial_*", "trial.json"), "tuner*.json")


def unreadable_state(project_dir: str) -> List[Dict[str, str]]:
    """KerasTuner state files of a search directory that cannot be read back.

    KerasTuner (before tfcourse wrote them atomically, or a plain KerasTuner search) writes
    ``oracle.json``, ``trial_*/trial.json`` and ``tuner*.json`` in place, so a kill at the
    wrong moment leaves one empty or cut short.

    Returns:
        ``{"path", "problem", "fix"}`` per unreadable file, in path order.
    """
    found = []
    for pattern in STATE_FILES:
        for path in sorted(glob.glob(os.path.join(project_dir, pattern))):
            try:
                state = rundir.read_json(path, "KerasTuner state file")
                if not isinstance(state, dict):
                    raise ValueError(f"{path}: the KerasTuner state file holds no JSON object.")
            except ValueError as error:
                name = os.path.basename(path)
                if name == "trial.json":
                    fix = (
                        f"remove that trial's folder (rm -r {os.path.dirname(path)}) and run the same command "
                        "again: that trial is trained again"
                    )
                elif name == "oracle.json":
                    kept = len(glob.glob(os.path.join(project_dir, "trial_*", "trial.json")))
                    fix = (
                        f"the {kept} trials' own files are intact and stay as they are: python -m tfcourse.tune "
                        f"--summary {project_dir} reports them; to search on, pass another --project-name (a new "
                        "search beside this one). Only --overwrite would delete them"
                    )
                else:
                    fix = f"remove {path} (it holds only that tuner's own bookkeeping) and run again"
                found.append({"path": path, "problem": str(error), "fix": fix})
    return found


def completed_trials(project_dir: str) -> int:
    """How many trials of a search folder completed (readable ``trial.json`` with status COMPLETED)."""
    count = 0
    for path in glob.glob(os.path.join(project_dir, "trial_*", "trial.json")):
        try:
            trial = rundir.read_json(path, "trial file")
        except ValueError:
            continue
        count += isinstance(trial, dict) and trial.get("status") == "COMPLETED"
    return count


def check_state(project_dir: str) -> None:
    """Refuses to resume a search whose KerasTuner state files cannot be read, naming each and the fix.

    Raises:
        ValueError: If ``unreadable_state`` finds anything.
    """
    problems = unreadable_state(project_dir)
    if problems:
        raise ValueError(
            "Cannot resume the search: "
            + " ".join(f"{problem['problem']} Fix: {problem['fix']}." for problem in problems)
        )


def objective_direction(objective: str) -> str:
    """``min`` for losses and errors, ``max`` for everything else (accuracy, AUC, ...)."""
    return "min" if objective.endswith(("loss", "error")) else "max"


def trial_rows(project_dir: str) -> List[Dict[str, Any]]:
    """One row per trial of a search directory, read from KerasTuner's files.

    Returns:
        Dicts with ``trial_id``, ``status``, ``score``, ``best_epoch`` (1-based),
        ``epochs_trained``, ``wall_seconds``, ``stopped_by_budget``, ``message`` and every hyperparameter
        (as ``hp/<name>``), in trial order.

    Raises:
        ValueError: If ``project_dir`` holds no KerasTuner trials.
    """
    paths = glob.glob(os.path.join(project_dir, "trial_*", "trial.json"))
    if not paths:
        raise ValueError(f"{project_dir} holds no KerasTuner trials (trial_*/trial.json). Check the path.")
    rows, unreadable = [], []
    for path in paths:
        try:
            trial = rundir.read_json(path, "trial file")
        except ValueError:
            trial = None
        if not isinstance(trial, dict):
            unreadable.append(path)  # summarize names it, with the fix (unreadable_state)
            continue
        stats_path = os.path.join(os.path.dirname(path), TRIAL_STATS_FILE)
        try:
            stats = rundir.read_json(stats_path, "trial statistics") if os.path.isfile(stats_path) else {}
        except ValueError:
            stats = {}  # tfcourse's own extras; the trial itself is still readable
        values = trial["hyperparameters"]["values"]
        best_step = trial.get("best_step")
        if stats.get("best_epoch") is None and isinstance(best_step, int) and trial.get("score") is not None:
            # KerasTuner counts the best step from this trial's own first epoch (Hyperband resumes later ones)
            stats["best_epoch"] = int(values.get("tuner/initial_epoch", 0)) + best_step + 1
        message = (trial.get("message") or "").strip()
        row = {
            "trial_id": trial["trial_id"],
            "status": trial.get("status"),
            "score": trial.get("score"),
            "best_epoch": stats.get("best_epoch"),
            "epochs_trained": stats.get("epochs_trained"),
            "wall_seconds": stats.get("wall_seconds"),
            "stopped_by_budget": bool(stats.get("stopped_by_budget")),  # ended early at an epoch boundary
            "end_time": stats.get("end_time"),
            "tuner_id": stats.get("tuner_id"),
            "message": message.splitlines()[-1] if message else None,  # last line of a failure's traceback
            "checkpoint": os.path.isfile(os.path.join(os.path.dirname(path), CHECKPOINT_FILE)),
        }
        folds = stats.get("cv_scores")
        if folds:  # --cv: the folds' scores; the oracle's score is their mean (KerasTuner averages them)
            row["cv/mean"] = statistics.mean(folds)
            row["cv/std"] = statistics.pstdev(folds)
            row.update({f"cv/fold{number}": score for number, score in enumerate(folds, 1)})
        row.update({f"hp/{name}": value for name, value in values.items()})
        rows.append(row)
    if not rows:
        raise ValueError(f"{project_dir}: no trial.json can be read ({', '.join(sorted(unreadable))}).")
    rows.sort(key=lambda row: (len(row["trial_id"]), row["trial_id"]))
    return rows


def trial_histories(project_dir: str, trial_id: str) -> List[Dict[str, List[float]]]:
    """The Keras histories a trial recorded (one per execution; per fold with ``--cv``), or ``[]`` (a trial
    from before tfcourse recorded them, or a failed one)."""
    path = os.path.join(project_dir, f"trial_{trial_id}", TRIAL_STATS_FILE)
    try:
        stats = rundir.read_json(path, "trial statistics") if os.path.isfile(path) else {}
    except ValueError:
        return []
    histories = stats.get("history") if isinstance(stats, dict) else None
    return [h for h in histories if isinstance(h, dict)] if isinstance(histories, list) else []


def search_space(project_dir: str) -> List[Dict[str, Any]]:
    oracle = rundir.read_json(os.path.join(project_dir, "oracle.json"), "KerasTuner oracle file")
    return hparams.describe_space(kt.HyperParameters.from_config(oracle["hyperparameters"]))


def log_sampled(project_dir: str) -> List[str]:
    """The ``hp/<name>`` columns the search samples on a log scale (KerasTuner's ``sampling="log"`` or
    ``"reverse_log"``), read from its oracle; empty when the oracle cannot be read."""
    try:
        space = search_space(project_dir)
    except (ValueError, KeyError, TypeError):
        return []
    return [f"hp/{entry['name']}" for entry in space if str(entry.get("sampling", "")).endswith("log")]


def read_search_record(project_dir: str) -> Optional[Dict[str, Any]]:
    """tfcourse's ``search.json`` of a search directory, or ``None`` for a plain KerasTuner directory."""
    path = os.path.join(project_dir, SEARCH_FILE)
    if not os.path.isfile(path):
        return None
    record = rundir.read_json(
        path,
        "search record",
        "tfcourse writes it atomically, so something else changed it; restore it, or start afresh with --overwrite.",
    )
    if not isinstance(record, dict):
        raise ValueError(
            f"{path}: the search record holds no JSON object; restore it, or start afresh with --overwrite."
        )
    return record


def disk_line(project_dir: str, rows: Sequence[Dict[str, Any]], record: Dict[str, Any]) -> str:
    """What the search folder holds on disk: its size and how many trials' weights it keeps."""
    policy = keep_checkpoints_name(record.get("keep_checkpoints"))
    with_weights = sum(bool(row.get("checkpoint")) for row in rows)
    return (
        f"Search folder: {folder_bytes(project_dir) / 2**20:.1f} MB on disk, best-epoch weights of "
        f"{with_weights} of {len(rows)} trials (--keep-checkpoints {policy})."
    )


def rank_rows(rows: Sequence[Dict[str, Any]], direction: str) -> List[Dict[str, Any]]:
    """The scored rows of ``trial_rows``, best first (``direction`` ``max`` or ``min``)."""
    scored = [row for row in rows if row["score"] is not None]
    return sorted(scored, key=lambda row: row["score"], reverse=direction == "max")


def top_trials_lines(project_dir: str, top: int = 5) -> List[str]:
    """A search's best ``top`` trials as short lines for the terminal, the last screen of ``tune``.

    One line per trial: rank, trial id, score, epochs, seconds and its hyperparameters (KerasTuner's own
    bookkeeping ``tuner/*`` left out), instead of KerasTuner's ``results_summary`` (~17 lines a trial).
    """
    record = read_search_record(project_dir) or {}
    objective, direction = record.get("objective", "score"), record.get("direction") or "max"
    rows = trial_rows(project_dir)
    ranked = rank_rows(rows, direction)
    lines = [f"Top {min(top, len(ranked))} of {len(rows)} trials by {objective} ({direction}imised, validation split):"]
    for rank, row in enumerate(ranked[:top], start=1):
        settings = " ".join(
            f"{key[3:]}={value:.3g}" if isinstance(value, float) else f"{key[3:]}={value}"
            for key, value in row.items()
            if key.startswith("hp/") and not key.startswith("hp/tuner/") and value is not None
        )
        epochs = f"{row['epochs_trained']} epochs" if row.get("epochs_trained") is not None else "epochs ?"
        seconds = f"{row['wall_seconds']:.0f} s" if row.get("wall_seconds") is not None else "? s"
        lines.append(f"{rank:3d}. trial {row['trial_id']}  {row['score']:.4f}  {epochs}, {seconds}  {settings}")
    return lines
