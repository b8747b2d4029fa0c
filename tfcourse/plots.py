"""Figures a person looks at, drawn headless (matplotlib's Agg backend) and written as PNG files."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Sequence

SEARCH_PROGRESS = "search_progress.png"
SCORE_VS_HP = "score_vs_hyperparameters.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    staging = f"{path}.tmp-{os.getpid()}.png"
    fig.savefig(staging, dpi=110, bbox_inches="tight")
    os.replace(staging, path)


def _colors(count: int) -> List[str]:
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
    return [palette[i % len(palette)] for i in range(count)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def numeric_hyperparameters(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """Columns ``hp/<name>`` whose values are numbers and vary across trials (Hyperband's bookkeeping excluded)."""
    names = []
    for key in dict.fromkeys(k for row in rows for k in row):
        if not key.startswith("hp/") or key.startswith("hp/tuner/"):
            continue
        values = [row.get(key) for row in rows if row.get(key) is not None]
        if values and all(_is_number(v) for v in values) and len(set(values)) > 1:
            names.append(key)
    return names


def plot_search(rows: Sequence[Dict[str, Any]], out_dir: str, objective: str = "score",
                direction: str = "max") -> List[str]:
    """Draws a search's trials.

    Writes ``search_progress.png`` (each trial's score in trial order, failed trials marked,
    and the best-so-far curve) and, when some numeric hyperparameter varied,
    ``score_vs_hyperparameters.png`` (score against each one; log axis for ranges spanning
    more than a factor 20, e.g. the learning rate).

    Returns:
        The file names written (inside ``out_dir``).
    """
    plt = _pyplot()
    order = list(range(1, len(rows) + 1))
    scores = [row.get("score") for row in rows]
    scored = [(i, s) for i, s in zip(order, scores) if _is_number(s)]
    failed = [i for i, row in zip(order, rows) if row.get("status") not in ("COMPLETED", None) and not _is_number(row.get("score"))]
    pick = max if direction == "max" else min

    # Hyperband scores trials after different numbers of epochs: one colour per budget
    budget = {i: row.get("hp/tuner/epochs") for i, row in zip(order, rows)}
    groups = sorted({budget[i] for i, _ in scored}, key=lambda b: (b is None, b))

    def label(value):
        return "trial score" if value is None else f"trial score after {value} epochs"

    fig, ax = plt.subplots(figsize=(7, 4))
    if scored:
        for color, group in zip(_colors(len(groups)), groups):
            points = [(i, s) for i, s in scored if budget[i] == group]
            ax.scatter(*zip(*points), color=color, label=label(group), zorder=3)
        xs, ys = zip(*scored)
        best, best_curve = None, []
        for s in ys:
            best = s if best is None else pick(best, s)
            best_curve.append(best)
        ax.step(xs, best_curve, where="post", color="tab:orange", label="best so far")
    if failed:
        low = min((s for _, s in scored), default=0.0)
        ax.scatter(failed, [low] * len(failed), marker="x", color="tab:red", label="failed trial", zorder=3)
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(objective)
    ax.set_title(f"{len(rows)} trials: {len(scored)} scored, {len(failed)} failed")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    _save(fig, os.path.join(out_dir, SEARCH_PROGRESS))
    plt.close(fig)
    written = [SEARCH_PROGRESS]

    names = numeric_hyperparameters([row for row in rows if _is_number(row.get("score"))])
    if names:
        columns = min(3, len(names))
        lines = math.ceil(len(names) / columns)
        fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), squeeze=False)
        for index, (ax, name) in enumerate(zip(axes.flat, names)):
            for color, group in zip(_colors(len(groups)), groups):
                points = [(row[name], row["score"]) for row in rows if row.get("hp/tuner/epochs") == group
                          and _is_number(row.get(name)) and _is_number(row.get("score"))]
                if points:
                    ax.scatter(*zip(*points), color=color, label=label(group))
            xs = [row[name] for row in rows if _is_number(row.get(name)) and _is_number(row.get("score"))]
            if min(xs) > 0 and max(xs) / min(xs) > 20:
                ax.set_xscale("log")
            if index == 0 and len(groups) > 1:
                ax.legend(loc="best", fontsize="small")
            ax.set_xlabel(name[3:])
            ax.set_ylabel(objective)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(names):]:
            ax.set_visible(False)
        fig.suptitle(f"{objective} against each numeric hyperparameter")
        fig.tight_layout()
        _save(fig, os.path.join(out_dir, SCORE_VS_HP))
        plt.close(fig)
        written.append(SCORE_VS_HP)
    return written
