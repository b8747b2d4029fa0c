"""The search report: ``search.html`` (self-contained, figures embedded) and ``search.md`` (figures beside
it) for one KerasTuner search directory, through the run report's block renderer.

It reads only the files a search leaves (``search.json``, KerasTuner's ``trial_*/trial.json`` and
tfcourse's per-trial statistics, via ``search_state.trial_rows``), so it serves a finished, interrupted or
resumed search alike: the settings and budget, every trial ordered by score (failed ones with their
message), the best score over wall time, a parallel-coordinates figure, the score against each
hyperparameter, an importance estimate, the learning curves of the top trials and, after ``--retrain``,
a link to the retrained run's report.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from typing import Any, Dict, List, Optional, Sequence

from tfcourse import rundir
from tfcourse.config import keep_checkpoints_name
from tfcourse.pages import search_plots
from tfcourse.pages.blocks import figure, heading, link, machine_description, paragraph, table, write_pages
from tfcourse.tuning import search_state

SEARCH_HTML = "search.html"
SEARCH_MD = "search.md"
RETRAINED_FILE = "retrained.json"  # written by search.retrain_best: the retrained run's folder and test numbers
TIMELINE = "search_timeline.png"
PARALLEL = "parallel_coordinates.png"
IMPORTANCE = "hyperparameter_importance.png"
CURVES = "learning_curves.png"
FEWEST_FOR_IMPORTANCE = 4  # completed trials the importance estimate needs
CURVE_TRIALS = 3
PARALLEL_AXES = 8  # hyperparameter axes in the parallel-coordinates figure


def importance(rows: Sequence[Dict[str, Any]], names: Sequence[str], seed: int = 0) -> Optional[Dict[str, float]]:
    """An estimate of how much each hyperparameter explains the score: a random forest (scikit-learn's
    ``RandomForestRegressor``) fitted to the completed trials (hyperparameters -> score), and its mean
    decrease in impurity per hyperparameter (Optuna's ``MeanDecreaseImpurityImportanceEvaluator`` does
    the same), normalised to sum to 1. Choices and booleans are coded as category numbers; an absent
    (conditional) value as -1.

    Returns:
        ``{hp/<name>: share}``, or ``None`` with fewer than ``FEWEST_FOR_IMPORTANCE`` completed trials, no
        hyperparameter that varied, or scores that are all equal.
    """
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    scored = [row for row in rows if isinstance(row.get("score"), (int, float)) and row.get("status") == "COMPLETED"]
    if len(scored) < FEWEST_FOR_IMPORTANCE or not names or len({row["score"] for row in scored}) < 2:
        return None
    columns = []
    for name in names:
        values = [row.get(name) for row in scored]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            columns.append([float(v) for v in values])
        else:
            categories = sorted({repr(v) for v in values if v is not None})
            columns.append([-1.0 if v is None else float(categories.index(repr(v))) for v in values])
    forest = RandomForestRegressor(n_estimators=300, random_state=seed, min_samples_leaf=1)
    forest.fit(np.array(columns, dtype=float).T, np.array([row["score"] for row in scored], dtype=float))
    shares = forest.feature_importances_
    total = float(shares.sum())
    if total <= 0:
        return None
    return {name: float(share) / total for name, share in zip(names, shares)}


def _settings(record: Dict[str, Any]) -> List[List[Any]]:
    if not record:
        return [["search", "a plain KerasTuner folder (no tfcourse search.json): settings unknown"]]
    hyperband = record.get("tuner") == "hyperband"
    budget = (
        f"Hyperband rounds up to {record.get('max_epochs')} epochs, factor {record.get('factor')}"
        if hyperband
        else f"{record.get('max_trials')} trials of up to {record.get('epochs')} epochs"
    )
    if record.get("max_minutes"):
        budget += f"; no new trial after {record['max_minutes']} min"
    scoring = (
        f"{record['cv']}-fold stratified cross-validation on the training split (mean of the folds)"
        if record.get("cv")
        else "the validation split"
    )
    return [
        ["tuner", record.get("tuner")],
        ["model", record.get("model")],
        ["dataset", f"{record.get('dataset')} (split {record.get('split')}, input {record.get('input_shape')})"],
        ["objective", f"{record.get('objective')} ({record.get('direction')}imised), scored on {scoring}"],
        ["budget", budget],
        ["early stopping", f"after {record.get('patience')} epochs without val_loss improvement"],
        ["learning rate schedule", record.get("lr_schedule", "plateau")],
        ["precision", record.get("precision", "float32")],
        ["models per trial", record.get("executions_per_trial", 1)],
        ["checkpoints kept", keep_checkpoints_name(record.get("keep_checkpoints"))],
        ["seed", record.get("seed")],
        ["space overrides (--space)", ", ".join(f"{k}={v}" for k, v in (record.get("space") or {}).items()) or "none"],
    ]


def _trial_table(rows, ranked, hp_names, cv_folds: int):
    """Header and rows of the trial table: scored trials best first, then the others with their message."""
    header = ["rank", "trial", "status", "score"]
    header += (["cv std"] + [f"fold {i}" for i in range(1, cv_folds + 1)]) if cv_folds else []
    header += ["best epoch", "epochs", "seconds"] + [name[3:] for name in hp_names] + ["message"]
    rest = [row for row in rows if row not in ranked]
    out = []
    for rank, row in enumerate(list(ranked) + rest, 1):
        score = row.get("score")
        cells = [
            rank if row in ranked else "",
            row["trial_id"],
            (row.get("status") or "") + (", stopped by the time budget" if row.get("stopped_by_budget") else ""),
            "" if score is None else f"{score:.4f}",
        ]
        if cv_folds:
            cells.append("" if row.get("cv/std") is None else f"{row['cv/std']:.4f}")
            cells += [
                "" if row.get(f"cv/fold{i}") is None else f"{row[f'cv/fold{i}']:.4f}" for i in range(1, cv_folds + 1)
            ]
        cells += [row.get("best_epoch"), row.get("epochs_trained"), row.get("wall_seconds")]
        cells += [f"{row[name]:.4g}" if isinstance(row.get(name), float) else row.get(name) for name in hp_names]
        cells.append(row.get("message") or "")
        out.append(cells)
    return header, out


@dataclasses.dataclass
class _Search:
    """What every section of the page reads: the search folder's record and trials, read once."""

    project_dir: str
    record: Dict[str, Any]
    rows: List[Dict[str, Any]]
    ranked: List[Dict[str, Any]]
    hp_names: List[str]
    varying: List[str]
    shares: Optional[Dict[str, float]]
    written: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def objective(self) -> str:
        return self.record.get("objective", "score")

    @property
    def direction(self) -> str:
        return self.record.get("direction") or "max"

    def path(self, name: str) -> str:
        return os.path.join(self.project_dir, name)


def _read_search(project_dir: str) -> _Search:
    record = search_state.read_search_record(project_dir) or {}
    rows = search_state.trial_rows(project_dir)
    ranked = search_state.rank_rows(rows, record.get("direction") or "max")
    hp_names = [key for key in dict.fromkeys(k for row in rows for k in row) if key.startswith("hp/")]
    hp_names.sort(key=lambda key: key.startswith("hp/tuner/"))  # Hyperband's bookkeeping last
    varying = search_plots.varying_hyperparameters(ranked)
    return _Search(project_dir, record, rows, ranked, hp_names, varying, importance(ranked, varying))


def write_search_page(project_dir: str) -> Dict[str, str]:
    """Writes ``search.html``, ``search.md`` and their figures into ``project_dir``, the one summary of a
    search (Markdown and HTML from the same blocks); returns the paths written by file name.

    Raises:
        ValueError: If ``project_dir`` holds no KerasTuner trials.
    """
    search = _read_search(project_dir)
    blocks = (
        _overview(search)
        + _trials(search)
        + _progress(search)
        + _hyperparameters(search)
        + _importance(search)
        + _curves(search)
        + _space(search)
    )
    name = os.path.basename(os.path.normpath(project_dir))
    pages = write_pages(blocks, project_dir, f"Search {name}", SEARCH_HTML, SEARCH_MD)
    return {**search.written, SEARCH_HTML: pages["html"], SEARCH_MD: pages["markdown"]}


def _overview(search: _Search) -> list:
    rows, ranked = search.rows, search.ranked
    counts = {status: sum(row["status"] == status for row in rows) for status in sorted({r["status"] for r in rows})}
    best = f"Best: trial {ranked[0]['trial_id']}, {search.objective} {ranked[0]['score']:.4f}." if ranked else ""
    blocks = [
        heading(1, f"Search: {os.path.basename(os.path.normpath(search.project_dir))}"),
        paragraph(
            f"{len(rows)} trials ("
            + ", ".join(f"{n} {status.lower()}" for status, n in counts.items())
            + (
                f"; {stopped} stopped early by the time budget, scored on their epochs so far"
                if (stopped := sum(bool(row.get("stopped_by_budget")) for row in rows))
                else ""
            )
            + f"), {sum(row.get('wall_seconds') or 0 for row in rows):.0f} s of trial wall time on "
            f"{machine_description()}. " + (best or "No trial has a score yet.")
        ),
    ]
    retrained = _retrained(search.project_dir)
    if retrained:
        accuracy = retrained.get("test_accuracy")
        tested = f": test accuracy {accuracy:.4f}" if isinstance(accuracy, (int, float)) else ""
        blocks.append(
            link(
                "the retrained run's report",
                retrained["href"],
                before=f"After the search, trial {retrained.get('trial_id')} was retrained on "
                f"{retrained.get('train_on')} and tested once{tested}. See ",
            )
        )
    blocks += [heading(2, "Settings and budget"), table(["setting", "value"], _settings(search.record))]
    blocks.append(paragraph(search_state.disk_line(search.project_dir, rows, search.record)))
    for problem in search_state.unreadable_state(search.project_dir):
        blocks.append(paragraph(f"Left out, unreadable: {problem['problem']} Fix: {problem['fix']}."))
    return blocks


def _trials(search: _Search) -> list:
    header, table_rows = _trial_table(search.rows, search.ranked, search.hp_names, int(search.record.get("cv") or 0))
    return [
        heading(2, "Trials, best first"),
        paragraph(
            f"Every trial, as in trials.csv and KerasTuner's own trial.json files: scored trials by "
            f"{search.objective} ({'higher' if search.direction == 'max' else 'lower'} is better), then the others "
            "with the last line of their error (the whole traceback is in the trial's folder, traceback.txt)."
        ),
        table(header, table_rows),
    ]


def _progress(search: _Search) -> list:
    blocks = [heading(2, "Progress")]
    objective, direction = search.objective, search.direction
    for fig_name, drawer, caption in (
        (
            TIMELINE,
            lambda p: search_plots.plot_search_timeline(search.rows, p, objective, direction),
            "score over wall time",
        ),
        (search_plots.SEARCH_PROGRESS, None, "score per trial in the order run, with the best so far"),
    ):
        path = search.path(fig_name)
        if drawer is not None and drawer(path):
            search.written[fig_name] = path
        if os.path.isfile(path):
            blocks.append(figure(path, caption))
    return blocks


def _hyperparameters(search: _Search) -> list:
    blocks = [heading(2, "Hyperparameters")]
    varying, shares = search.varying, search.shares
    # a readable figure: at most PARALLEL_AXES axes, those the importance estimate ranks highest
    shown = sorted(varying, key=lambda n: -shares[n])[:PARALLEL_AXES] if shares else varying[:PARALLEL_AXES]
    path = search.path(PARALLEL)
    log_sampled = search_state.log_sampled(search.project_dir)
    if search_plots.plot_parallel_coordinates(
        search.ranked, shown, path, search.objective, search.direction, log_sampled=log_sampled
    ):
        search.written[PARALLEL] = path
        which = ""
        if len(shown) < len(varying):
            which = (
                f"; the {len(shown)} of {len(varying)} varied hyperparameters the importance estimate ranks highest"
                if shares
                else f"; the first {len(shown)} of {len(varying)} varied hyperparameters"
            )
        blocks.append(figure(path, "parallel coordinates: one line per scored trial, coloured by its score" + which))
    path = search.path(search_plots.SCORE_VS_HP)
    if varying and os.path.isfile(path):
        blocks.append(figure(path, f"{search.objective} against each hyperparameter that varied"))
    if not varying:
        blocks.append(paragraph("No hyperparameter varied between the scored trials."))
    return blocks


def _importance(search: _Search) -> list:
    blocks = [heading(2, "Hyperparameter importance (an estimate)")]
    shares = search.shares
    if shares is None:
        return blocks + [
            paragraph(
                f"Not estimated: it needs at least {FEWEST_FOR_IMPORTANCE} completed trials with different scores "
                f"and a hyperparameter that varied ({len(search.ranked)} scored here)."
            )
        ]
    completed = sum(row.get("status") == "COMPLETED" for row in search.ranked)
    caption = f"random forest on {completed} completed trials: an estimate, not a measurement"
    path = search.path(IMPORTANCE)
    search.written[IMPORTANCE] = search_plots.plot_importance(
        [n[3:] for n in shares], list(shares.values()), path, caption
    )
    return blocks + [
        paragraph(
            f"A random forest (scikit-learn, 300 trees) fitted to the {completed} completed trials' hyperparameters "
            f"-> {search.objective}; each hyperparameter's share of its mean decrease in impurity (as Optuna's "
            f"MeanDecreaseImpurityImportanceEvaluator). With {completed} trials this is a rough estimate: "
            "it says which settings the scores moved with in this search, not how they act in general."
        ),
        table(
            ["hyperparameter", "share"],
            [[n[3:], f"{v:.3f}"] for n, v in sorted(shares.items(), key=lambda kv: -kv[1])],
        ),
        figure(path, caption),
    ]


def _curves(search: _Search) -> list:
    top = search.ranked[:CURVE_TRIALS]
    blocks = [heading(2, f"Learning curves of the top {len(top)} trials")]
    curves = []
    for row in top:
        histories = search_state.trial_histories(search.project_dir, row["trial_id"])
        if histories:
            curves.append(
                {
                    "label": f"trial {row['trial_id']} ({row['score']:.4f})",
                    "first_epoch": int(row.get("hp/tuner/initial_epoch") or 0),
                    "histories": histories,
                }
            )
    path = search.path(CURVES)
    if search_plots.plot_trial_curves(curves, path, search.objective):
        search.written[CURVES] = path
        return blocks + [figure(path, f"{search.objective} and training loss per epoch of the top trials")]
    return blocks + [paragraph("No epoch history was recorded for these trials (trained before tfcourse kept it).")]


def _space(search: _Search) -> list:
    """The search space as KerasTuner's oracle recorded it (after ``--space`` narrowing)."""
    blocks = [heading(2, "Search space")]
    try:
        space = search_state.search_space(search.project_dir)
    except ValueError as error:  # a cut-short oracle.json: the trials still tell their story
        return blocks + [paragraph(f"Unavailable: {error}")]
    rows = [
        [entry["name"], entry["type"], ", ".join(f"{k}={v}" for k, v in entry.items() if k not in ("name", "type"))]
        for entry in space
    ]
    return blocks + [table(["name", "type", "settings"], rows)]


def _retrained(project_dir: str) -> Optional[Dict[str, Any]]:
    """The retrained run (``RETRAINED_FILE``) with the page's relative link to its report, or ``None``
    (never retrained, or its run folder or report is gone)."""
    path = os.path.join(project_dir, RETRAINED_FILE)
    if not os.path.isfile(path):
        return None
    try:
        record = rundir.read_json(path, "retrained-run record")
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    report = os.path.join(str(record.get("run_dir", "")), rundir.REPORT_HTML)
    if not os.path.isfile(report):
        return None
    return {**record, "href": os.path.relpath(report, project_dir)}


def write_trial_files(project_dir: str, direction: Optional[str] = None) -> Dict[str, str]:
    """Writes ``trials.csv`` and ``trials.json`` (every trial, one row each) and the per-trial figures
    (``search_progress.png``, ``score_vs_hyperparameters.png``) into ``project_dir``; the search's one
    summary is its page (``write_search_page``).

    Args:
        project_dir: ``<directory>/<project_name>`` of a search.
        direction: ``max`` if a higher score is better (accuracy), ``min`` for losses;
            ``None`` reads it from the search's ``search.json`` (``max`` without one).

    Returns:
        The paths written, by file name.
    """
    record = search_state.read_search_record(project_dir) or {}
    direction = direction or record.get("direction") or "max"
    rows = search_state.trial_rows(project_dir)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    paths = {name: os.path.join(project_dir, name) for name in ("trials.csv", "trials.json")}
    figures = search_plots.plot_search(
        rows,
        project_dir,
        objective=record.get("objective", "score"),
        direction=direction,
        log_sampled=search_state.log_sampled(project_dir),
    )
    rundir.write_text(paths["trials.csv"], table.getvalue())
    rundir.write_json(paths["trials.json"], rows)
    stale = os.path.join(project_dir, "summary.md")  # written by tfcourse before the page was the one summary
    if os.path.isfile(stale):
        os.remove(stale)
    paths.update({name: os.path.join(project_dir, name) for name in figures})
    return paths
