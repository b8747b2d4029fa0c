"""The figures of a search's page: score per trial with the best so far, score over wall time, score against
each hyperparameter, parallel coordinates (log axes for log-sampled values), importance, learning curves."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence

from tfcourse.pages.plots import finish, is_number, line_colors, pyplot, save_figure

SEARCH_PROGRESS = "search_progress.png"


SCORE_VS_HP = "score_vs_hyperparameters.png"


def varying_hyperparameters(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """Columns ``hp/<name>`` (numbers, choices or booleans) that vary across trials (Hyperband's bookkeeping excluded)."""
    names = []
    for key in dict.fromkeys(k for row in rows for k in row):
        if key.startswith("hp/") and not key.startswith("hp/tuner/"):
            if len({repr(row.get(key)) for row in rows if row.get(key) is not None}) > 1:
                names.append(key)
    return names


def _positions(values: Sequence[Any], log: Optional[bool] = None):
    """Values of one hyperparameter as x positions: numbers as they are, anything else (choices, booleans)
    as category indices. ``log`` (a log axis): as the search space declares the sampling (``True`` for
    ``sampling="log"``) where known, else when the positive values span more than a factor 20.

    Returns:
        ``(positions, categories or None, log)``.
    """
    if all(is_number(v) for v in values):
        positive = min(values) > 0
        log = positive and (max(values) / min(values) > 20 if log is None else log)
        return [float(v) for v in values], None, log
    categories = sorted({str(v) for v in values})
    return [float(categories.index(str(v))) for v in values], categories, False


def plot_search(
    rows: Sequence[Dict[str, Any]],
    out_dir: str,
    objective: str = "score",
    direction: str = "max",
    log_sampled: Sequence[str] = (),
) -> List[str]:
    """Draws a search's trials.

    Writes ``search_progress.png`` (each trial's score in trial order, failed trials marked,
    and the best-so-far curve) and, when some hyperparameter varied, ``score_vs_hyperparameters.png``
    (score against each one; a log axis for the ``log_sampled`` columns, ``hp/<name>`` sampled on a log
    scale, e.g. the learning rate, and for other ranges spanning more than a factor 20; choices and
    booleans as categories).

    Returns:
        The file names written (inside ``out_dir``).
    """
    plt = pyplot()
    order = list(range(1, len(rows) + 1))
    scores = [row.get("score") for row in rows]
    scored = [(i, s) for i, s in zip(order, scores) if is_number(s)]
    failed = [
        i
        for i, row in zip(order, rows)
        if row.get("status") not in ("COMPLETED", None) and not is_number(row.get("score"))
    ]

    # Hyperband scores trials after different numbers of epochs: one colour per budget
    budget = {i: row.get("hp/tuner/epochs") for i, row in zip(order, rows)}
    groups = sorted({budget[i] for i, _ in scored}, key=lambda b: (b is None, b))

    def label(value):
        return "trial score" if value is None else f"trial score after {value} epochs"

    fig, ax = plt.subplots(figsize=(7, 4))
    if scored:
        for color, group in zip(line_colors(len(groups)), groups):
            points = [(i, s) for i, s in scored if budget[i] == group]
            ax.scatter(*zip(*points), color=color, label=label(group), zorder=3)
        _draw_best_so_far(ax, [i for i, _ in scored], [s for _, s in scored], direction)
    _mark_failed(ax, failed, [s for _, s in scored])
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(objective)
    ax.set_title(f"{len(rows)} trials: {len(scored)} scored, {len(failed)} failed")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    save_figure(fig, os.path.join(out_dir, SEARCH_PROGRESS))
    plt.close(fig)
    written = [SEARCH_PROGRESS]

    names = varying_hyperparameters([row for row in rows if is_number(row.get("score"))])
    if names:
        columns = min(3, len(names))
        lines = math.ceil(len(names) / columns)
        fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), squeeze=False)
        for index, (ax, name) in enumerate(zip(axes.flat, names)):
            kept = [row for row in rows if row.get(name) is not None and is_number(row.get("score"))]
            xs, categories, log = _positions([row[name] for row in kept], True if name in log_sampled else None)
            for color, group in zip(line_colors(len(groups)), groups):
                points = [(x, row["score"]) for x, row in zip(xs, kept) if row.get("hp/tuner/epochs") == group]
                if points:
                    ax.scatter(*zip(*points), color=color, label=label(group))
            if log:
                ax.set_xscale("log")
            if categories:
                ax.set_xticks(range(len(categories)), categories)
                ax.set_xlim(-0.5, len(categories) - 0.5)
            if index == 0 and len(groups) > 1:
                ax.legend(loc="best", fontsize="small")
            ax.set_xlabel(name[3:])
            ax.set_ylabel(objective)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names) :]:
            ax.set_visible(False)
        fig.suptitle(f"{objective} against each hyperparameter that varied")
        finish(fig, os.path.join(out_dir, SCORE_VS_HP))
        written.append(SCORE_VS_HP)
    return written


def _draw_best_so_far(ax, xs, scores, direction: str, until=None) -> None:
    """The best-so-far step curve of ``scores`` (at ``xs``, in order; held to ``until`` when given)."""
    pick, best, curve = (max if direction == "max" else min), None, []
    for score in scores:
        best = score if best is None else pick(best, score)
        curve.append(best)
    xs = list(xs)
    if until is not None:
        xs, curve = xs + [until], curve + curve[-1:]
    ax.step(xs, curve, where="post", color="tab:orange", label="best so far")


def _mark_failed(ax, xs, scores) -> None:
    """Failed trials as red crosses at ``xs``, drawn at the lowest of the ``scores``."""
    if xs:
        low = min(scores, default=0.0)
        ax.scatter(xs, [low] * len(xs), marker="x", color="tab:red", label="failed trial", zorder=3)


def plot_search_timeline(
    rows: Sequence[Dict[str, Any]], path: str, objective: str = "score", direction: str = "max"
) -> Optional[str]:
    """Each trial's score at the wall-clock time it ended, minutes from the first trial's start, with the
    best-so-far curve; failed trials marked. ``None`` (nothing drawn) without trial times."""
    timed = [row for row in rows if is_number(row.get("end_time")) and is_number(row.get("wall_seconds"))]
    if not timed:
        return None
    plt = pyplot()
    start = min(row["end_time"] - row["wall_seconds"] for row in timed)
    timed = sorted(timed, key=lambda row: row["end_time"])
    minutes = [(row["end_time"] - start) / 60 for row in timed]
    scored = [(m, row["score"]) for m, row in zip(minutes, timed) if is_number(row.get("score"))]
    fig, ax = plt.subplots(figsize=(7, 4))
    if scored:
        ax.scatter(*zip(*scored), color="tab:blue", label="trial score (when it ended)", zorder=3)
        _draw_best_so_far(ax, [m for m, _ in scored], [s for _, s in scored], direction, until=max(minutes))
    _mark_failed(ax, [m for m, row in zip(minutes, timed) if not is_number(row.get("score"))], [s for _, s in scored])
    ax.set_xlabel("minutes since the first trial started")
    ax.set_ylabel(objective)
    ax.set_title(f"best {objective} so far over wall time ({len(timed)} trials)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return finish(fig, path)


def parallel_axes(
    scored: Sequence[Dict[str, Any]], names: Sequence[str], objective: str = "score", log_sampled: Sequence[str] = ()
):
    """The numbers behind ``plot_parallel_coordinates``: each scored trial's place on each axis.

    Returns:
        ``(matrix, labels, scores)``: ``matrix[trial, axis]`` in [0, 1] (the hyperparameters ``names``, then
        the score; a log scale for ``log_sampled`` names and ranges over a factor 20, choices in order);
        ``labels``, per axis, its name (with " (log)" on a log axis) and its tick texts; the scores.
    """
    import numpy as np

    axes_values, labels = [], []
    for name in names:
        kept = [row.get(name) for row in scored]
        present = [v for v in kept if v is not None]
        positions, categories, log = _positions(present, True if name in log_sampled else None)
        lookup = dict(zip(map(repr, present), positions))
        raw = np.array([lookup.get(repr(v), np.nan) for v in kept], dtype=float)
        scaled = np.log10(raw) if log else raw
        low, high = np.nanmin(scaled), np.nanmax(scaled)
        axes_values.append((scaled - low) / (high - low) if high > low else np.full_like(scaled, 0.5))
        if categories:
            labels.append((name[3:], categories))
        else:
            ends = [10**low, 10**high] if log else [low, high]
            labels.append((name[3:] + (" (log)" if log else ""), [f"{ends[0]:.3g}", f"{ends[1]:.3g}"]))
    scores = np.array([row["score"] for row in scored], dtype=float)
    low, high = scores.min(), scores.max()
    axes_values.append((scores - low) / (high - low) if high > low else np.full_like(scores, 0.5))
    labels.append((objective, [f"{low:.4g}", f"{high:.4g}"]))
    return np.stack(axes_values, axis=1), labels, scores


def plot_parallel_coordinates(
    rows: Sequence[Dict[str, Any]],
    names: Sequence[str],
    path: str,
    objective: str = "score",
    direction: str = "max",
    log_sampled: Sequence[str] = (),
) -> Optional[str]:
    """Parallel coordinates: one vertical axis per hyperparameter (``names``, ``hp/<name>`` columns) and a
    last one for the score; one line per scored trial, coloured by its score (brighter is better). Each
    axis runs from its lowest to its highest value (``parallel_axes``: a log scale, marked "(log)", for the
    ``log_sampled`` names, those the search samples on a log scale, and for ranges over a factor 20).
    ``None`` (nothing drawn) with fewer than two scored trials or no hyperparameter."""
    scored = [row for row in rows if is_number(row.get("score"))]
    if len(scored) < 2 or not names:
        return None
    import numpy as np

    matrix, labels, scores = parallel_axes(scored, names, objective, log_sampled)
    low, high = scores.min(), scores.max()
    better = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    if direction != "max":
        better = 1 - better
    plt = pyplot()
    colormap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(labels)), 5))
    for index in np.argsort(better):  # the best drawn last, on top
        ax.plot(range(len(labels)), matrix[index], color=colormap(better[index]), alpha=0.85, linewidth=1.6)
    for position, (_, ticks) in enumerate(labels):  # choices spread evenly, numbers at both ends
        ax.axvline(position, color="#888", linewidth=0.8)
        for spot, tick in zip(np.linspace(0, 1, len(ticks)) if len(ticks) > 1 else [0.5], ticks):
            ax.annotate(str(tick), (position, spot), xytext=(3, 0), textcoords="offset points", fontsize=9, va="center")
    ax.set_xticks(range(len(labels)), [name for name, _ in labels], rotation=30, ha="right")
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(labels) - 0.6)
    ax.set_title(f"{len(scored)} scored trials; line colour: {objective} (brighter is better)")
    mappable = plt.cm.ScalarMappable(cmap=colormap)
    mappable.set_array([])
    fig.colorbar(mappable, ax=ax, pad=0.02, label=f"{objective}: worst (dark) to best (bright)", ticks=[])
    return finish(fig, path)


def plot_importance(names: Sequence[str], importances: Sequence[float], path: str, caption: str) -> str:
    """Horizontal bars of hyperparameter importance (largest on top)."""
    plt = pyplot()
    order = sorted(range(len(names)), key=lambda i: importances[i])
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.4))
    ax.barh([names[i] for i in order], [importances[i] for i in order], color="tab:blue")
    ax.set_xlabel("share of the explained variance of the score (estimate)")
    ax.set_title(caption, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return finish(fig, path)


def plot_trial_curves(curves: Sequence[Dict[str, Any]], path: str, objective: str) -> Optional[str]:
    """Learning curves of a few trials: ``objective`` per epoch (left) and the training loss (right).

    Args:
        curves: ``{"label", "first_epoch", "histories"}`` per trial; ``histories`` is one Keras history
            dict per execution (per fold with cross-validation), drawn thin, their mean drawn thick.
    """
    if not curves:
        return None
    import numpy as np

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for color, curve in zip(line_colors(len(curves)), curves):
        for ax, key in zip(axes, (objective, "loss")):
            runs = [h.get(key) or [] for h in curve["histories"]]
            runs = [r for r in runs if r]
            if not runs:
                continue
            for run in runs if len(runs) > 1 else []:
                epochs = np.arange(len(run)) + curve["first_epoch"] + 1
                ax.plot(epochs, run, color=color, alpha=0.3, linewidth=0.8)
            length = min(len(r) for r in runs)
            mean = np.mean([r[:length] for r in runs], axis=0)
            epochs = np.arange(length) + curve["first_epoch"] + 1
            ax.plot(epochs, mean, "-o", color=color, markersize=3, label=curve["label"])
    from matplotlib.ticker import MaxNLocator

    for ax, key in zip(axes, (objective, "training loss")):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize="small")
    fig.suptitle(f"learning curves of the top {len(curves)} trials (thin: each fold/execution, thick: their mean)")
    return finish(fig, path)
