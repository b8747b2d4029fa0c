"""Figures a person looks at, drawn headless (matplotlib's Agg backend) and written as PNG files."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence

from tfcourse.rundir import atomic_write

SEARCH_PROGRESS = "search_progress.png"
SCORE_VS_HP = "score_vs_hyperparameters.png"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> None:
    atomic_write(path, lambda staging: fig.savefig(staging, dpi=110, bbox_inches="tight"), suffix=".png")


def _finish(fig, path: str) -> str:
    """Lays out (leaving room for a figure title above the axes' own titles), writes (atomically) and
    closes a figure; returns ``path``."""
    title = fig.get_suptitle()
    top = 1 - (0.25 + 0.2 * title.count("\n")) / fig.get_figheight() if title else 1
    fig.tight_layout(rect=(0, 0, 1, top))
    _save(fig, path)
    _pyplot().close(fig)
    return path


def _colors(count: int) -> List[str]:
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
    return [palette[i % len(palette)] for i in range(count)]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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
    if all(_is_number(v) for v in values):
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
    plt = _pyplot()
    order = list(range(1, len(rows) + 1))
    scores = [row.get("score") for row in rows]
    scored = [(i, s) for i, s in zip(order, scores) if _is_number(s)]
    failed = [
        i
        for i, row in zip(order, rows)
        if row.get("status") not in ("COMPLETED", None) and not _is_number(row.get("score"))
    ]

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
        _draw_best_so_far(ax, [i for i, _ in scored], [s for _, s in scored], direction)
    _mark_failed(ax, failed, [s for _, s in scored])
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(objective)
    ax.set_title(f"{len(rows)} trials: {len(scored)} scored, {len(failed)} failed")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    _save(fig, os.path.join(out_dir, SEARCH_PROGRESS))
    plt.close(fig)
    written = [SEARCH_PROGRESS]

    names = varying_hyperparameters([row for row in rows if _is_number(row.get("score"))])
    if names:
        columns = min(3, len(names))
        lines = math.ceil(len(names) / columns)
        fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), squeeze=False)
        for index, (ax, name) in enumerate(zip(axes.flat, names)):
            kept = [row for row in rows if row.get(name) is not None and _is_number(row.get("score"))]
            xs, categories, log = _positions([row[name] for row in kept], True if name in log_sampled else None)
            for color, group in zip(_colors(len(groups)), groups):
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
        _finish(fig, os.path.join(out_dir, SCORE_VS_HP))
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
    timed = [row for row in rows if _is_number(row.get("end_time")) and _is_number(row.get("wall_seconds"))]
    if not timed:
        return None
    plt = _pyplot()
    start = min(row["end_time"] - row["wall_seconds"] for row in timed)
    timed = sorted(timed, key=lambda row: row["end_time"])
    minutes = [(row["end_time"] - start) / 60 for row in timed]
    scored = [(m, row["score"]) for m, row in zip(minutes, timed) if _is_number(row.get("score"))]
    fig, ax = plt.subplots(figsize=(7, 4))
    if scored:
        ax.scatter(*zip(*scored), color="tab:blue", label="trial score (when it ended)", zorder=3)
        _draw_best_so_far(ax, [m for m, _ in scored], [s for _, s in scored], direction, until=max(minutes))
    _mark_failed(ax, [m for m, row in zip(minutes, timed) if not _is_number(row.get("score"))], [s for _, s in scored])
    ax.set_xlabel("minutes since the first trial started")
    ax.set_ylabel(objective)
    ax.set_title(f"best {objective} so far over wall time ({len(timed)} trials)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    return _finish(fig, path)


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
    scored = [row for row in rows if _is_number(row.get("score"))]
    if len(scored) < 2 or not names:
        return None
    import numpy as np

    matrix, labels, scores = parallel_axes(scored, names, objective, log_sampled)
    low, high = scores.min(), scores.max()
    better = (scores - low) / (high - low) if high > low else np.ones_like(scores)
    if direction != "max":
        better = 1 - better
    plt = _pyplot()
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
    return _finish(fig, path)


def plot_importance(names: Sequence[str], importances: Sequence[float], path: str, caption: str) -> str:
    """Horizontal bars of hyperparameter importance (largest on top)."""
    plt = _pyplot()
    order = sorted(range(len(names)), key=lambda i: importances[i])
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.4))
    ax.barh([names[i] for i in order], [importances[i] for i in order], color="tab:blue")
    ax.set_xlabel("share of the explained variance of the score (estimate)")
    ax.set_title(caption, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, path)


def plot_trial_curves(curves: Sequence[Dict[str, Any]], path: str, objective: str) -> Optional[str]:
    """Learning curves of a few trials: ``objective`` per epoch (left) and the training loss (right).

    Args:
        curves: ``{"label", "first_epoch", "histories"}`` per trial; ``histories`` is one Keras history
            dict per execution (per fold with cross-validation), drawn thin, their mean drawn thick.
    """
    if not curves:
        return None
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for color, curve in zip(_colors(len(curves)), curves):
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
    return _finish(fig, path)


# ----------------------------------------------------------------------------- runs: curves and test results


def _show_image(ax, image) -> None:
    """Draws one raw image (H, W, C) uint8; single-channel images in grey."""
    import numpy as np

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.astype("uint8") if image.dtype != "uint8" else image)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_history(history: Dict[str, List[float]], path: str, title: str = "", phase_starts: Sequence[int] = ()) -> str:
    """Training and validation loss and accuracy per epoch, best validation epoch marked.

    Args:
        history: Keras ``History.history`` (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` ...).
        phase_starts: Epochs (1-based) where a new training phase began (e.g. fine-tuning).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
            values = history.get(key) or []
            points = [(i + 1, v) for i, v in enumerate(values) if _is_number(v)]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=label)
        val = [(i + 1, v) for i, v in enumerate(history.get("val_loss") or []) if _is_number(v)]
        if val:
            best = min(val, key=lambda p: p[1])[0]
            ax.axvline(best, color="tab:gray", linestyle=":", label=f"best validation loss (epoch {best})")
        for start in phase_starts:
            ax.axvline(start - 0.5, color="tab:red", linestyle="--", label=f"fine-tuning from epoch {start}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(title or "learning curves")
    return _finish(fig, path)


def plot_confusion_matrix(matrix, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Confusion-matrix heatmap, coloured by the row-normalised fraction, annotated with counts."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)
    size = max(5.0, 0.6 * len(class_names) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(class_names) <= 20:
        for t in ticks:
            for p in ticks:
                ax.text(
                    p,
                    t,
                    str(int(matrix[t, p])),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if fractions[t, p] > 0.5 else "black",
                )
    ax.set_title(title or "confusion matrix (test split)")
    return _finish(fig, path)


def _image_grid(
    images,
    titles: Sequence[str],
    path: str,
    title: str,
    columns: int,
    title_height: float,
    colors: Optional[Sequence[str]] = None,
) -> str:
    """Images in rows of ``columns``, each with a small title (optionally coloured); spare cells hidden."""
    plt = _pyplot()
    count = len(images)
    columns = max(1, min(columns, count))
    lines = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(1.6 * columns, title_height * lines + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_visible(False)
            continue
        _show_image(ax, images[index])
        ax.set_title(titles[index], fontsize=7, **({"color": colors[index]} if colors else {}))
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_predictions(
    images,
    true_names: Sequence[str],
    predicted_names: Sequence[str],
    path: str,
    confidences: Optional[Sequence[float]] = None,
    title: str = "",
    columns: int = 8,
) -> str:
    """A grid of images titled ``predicted (confidence) / true``; green when right, red when wrong."""
    titles, colors = [], []
    for index, (true, predicted) in enumerate(zip(true_names, predicted_names)):
        confidence = f" {confidences[index]:.2f}" if confidences is not None else ""
        titles.append(f"{predicted}{confidence}\ntrue: {true}")
        colors.append("tab:green" if true == predicted else "tab:red")
    return _image_grid(images, titles, path, title or "predictions (predicted / true)", columns, 1.9, colors)


def plot_per_class_accuracy(
    per_class: Dict[str, Optional[float]], path: str, overall: Optional[float] = None, title: str = ""
) -> str:
    """Horizontal bars of each class's test accuracy, the overall accuracy as a line."""
    plt = _pyplot()
    names = list(per_class)
    values = [per_class[n] if per_class[n] is not None else 0.0 for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(names) + 1.4))
    bars = ax.barh(
        names, values, color=["tab:red" if overall is not None and v < overall else "tab:blue" for v in values]
    )
    ax.invert_yaxis()
    for bar, value in zip(bars, values):
        ax.text(bar.get_width() + 0.005, bar.get_y() + bar.get_height() / 2, f"{value:.1%}", va="center", fontsize=8)
    if overall is not None:
        ax.axvline(overall, color="tab:gray", linestyle="--", label=f"overall {overall:.1%}")
        ax.legend(loc="lower left", fontsize="small")
    ax.set_xlim(0, 1.08)
    ax.set_xlabel("test accuracy (below overall in red)")
    ax.set_title(title or "per-class accuracy")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- data (EDA)


def plot_class_counts(counts: Dict[str, Dict[str, int]], path: str, title: str = "") -> str:
    """Grouped bars: examples per class in each split (``{split: {class: count}}``)."""
    import numpy as np

    plt = _pyplot()
    splits = list(counts)
    names = list(next(iter(counts.values())))
    positions = np.arange(len(names))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 3.8))
    for offset, (split, color) in enumerate(zip(splits, _colors(len(splits)))):
        ax.bar(positions + offset * width, [counts[split][n] for n in names], width, label=split, color=color)
    ax.set_xticks(positions + width * (len(splits) - 1) / 2, names, rotation=45, ha="right")
    ax.set_ylabel("examples")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or "examples per class and split")
    return _finish(fig, path)


def plot_class_samples(
    images_by_class: Dict[str, Any], path: str, mean_images: Optional[Dict[str, Any]] = None, title: str = ""
) -> str:
    """One row per class: a few training images, and the class's mean image in the first column."""
    plt = _pyplot()
    names = list(images_by_class)
    per_row = max(len(v) for v in images_by_class.values()) + (1 if mean_images else 0)
    fig, axes = plt.subplots(len(names), per_row, figsize=(1.1 * per_row + 1.2, 1.1 * len(names) + 0.4), squeeze=False)
    for row, name in zip(axes, names):
        cells = ([mean_images[name]] if mean_images else []) + list(images_by_class[name])
        for column, ax in enumerate(row):
            if column < len(cells):
                _show_image(ax, cells[column])
            else:
                ax.set_visible(False)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if mean_images:
        axes[0][0].set_title("mean", fontsize=8)
    fig.suptitle(title or "training images per class", fontsize=10)
    return _finish(fig, path)


def plot_pixel_histogram(histograms: Dict[str, Any], path: str, title: str = "") -> str:
    """Pixel-value distribution (0..255) per channel of the training images."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for (name, counts), color in zip(histograms.items(), _colors(len(histograms))):
        ax.plot(range(len(counts)), counts, color=color, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("pixels (log scale)")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or "pixel values of the training images")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- explanations


def plot_explanations(images, maps, row_titles: Sequence[str], path: str, title: str = "", overlay: bool = True) -> str:
    """One row per example: the input, the map alone, and the map over the input.

    Args:
        images: Raw images (N, H, W, C).
        maps: (N, H, W) arrays in [0, 1] (heatmaps or saliency), same size as the images.
        overlay: Draw the third column (the map over the image).
    """
    plt = _pyplot()
    columns = 3 if overlay else 2
    fig, axes = plt.subplots(
        len(images), columns, figsize=(2.0 * columns + 1.5, 2.0 * len(images) + 0.4), squeeze=False
    )
    for row, image, heat, name in zip(axes, images, maps, row_titles):
        _show_image(row[0], image)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        row[1].imshow(heat, cmap="jet", vmin=0, vmax=1)
        row[1].set_xticks([])
        row[1].set_yticks([])
        if overlay:
            _show_image(row[2], image)
            row[2].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[0][0].set_title("input", fontsize=9)
    axes[0][1].set_title("map", fontsize=9)
    if overlay:
        axes[0][2].set_title("overlay", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_attention(
    images, matrices, maps, row_titles: Sequence[str], path: str, title: str = "", class_token: bool = False
) -> str:
    """One row per example: the input, one head's attention matrix (query tokens down, key tokens
    across; with a class token it is token 0), the attention over patches, and that over the input.

    Args:
        images: Raw images (N, H, W, C).
        matrices: (N, tokens, tokens) attention weights of one head, rows summing to 1.
        maps: (N, H, W) attention over patches upsampled to the image, in [0, 1].
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(images), 4, figsize=(10.0, 2.2 * len(images) + 0.5), squeeze=False)
    for row, image, matrix, heat, name in zip(axes, images, matrices, maps, row_titles):
        _show_image(row[0], image)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        shown = row[1].imshow(matrix, cmap="viridis", vmin=0, interpolation="nearest")
        fig.colorbar(shown, ax=row[1], fraction=0.046, pad=0.04)
        row[1].set_xlabel("key token", fontsize=7)
        row[1].set_ylabel("query token", fontsize=7)
        row[1].tick_params(labelsize=6)
        row[2].imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
        row[2].set_xticks([])
        row[2].set_yticks([])
        _show_image(row[3], image)
        row[3].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="nearest")
    axes[0][0].set_title("input", fontsize=9)
    axes[0][1].set_title("attention weights" + (" (token 0 = class)" if class_token else ""), fontsize=9)
    axes[0][2].set_title("attention over patches", fontsize=9)
    axes[0][3].set_title("overlay", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_image_row(images, titles: Sequence[str], path: str, title: str = "", columns: int = 8) -> str:
    """A grid of images with titles (activation maximisation results, filters)."""
    return _image_grid(images, titles, path, title, columns, 1.8)


# ----------------------------------------------------------------------------- comparing runs


def plot_compare_runs(
    histories: Dict[str, Dict[str, List[float]]], accuracies: Dict[str, float], path: str, title: str = ""
) -> str:
    """Several runs side by side: validation accuracy per epoch, and test accuracy bars."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    colors = _colors(len(histories))
    for (name, history), color in zip(histories.items(), colors):
        key = "val_accuracy" if any(_is_number(v) for v in history.get("val_accuracy") or []) else "accuracy"
        points = [(i + 1, v) for i, v in enumerate(history.get(key) or []) if _is_number(v)]
        if points:
            left.plot(
                *zip(*points),
                "-o",
                markersize=3,
                color=color,
                label=name + ("" if key == "val_accuracy" else " (training)"),
            )
    left.set_xlabel("epoch")
    left.set_ylabel("validation accuracy")
    left.grid(alpha=0.3)
    left.legend(loc="lower right", fontsize="small")
    names = list(accuracies)
    bars = right.barh(names, [accuracies[n] for n in names], color=colors[: len(names)])
    right.invert_yaxis()
    for bar, name in zip(bars, names):
        right.text(
            bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {accuracies[name]:.2%}", va="center", fontsize=8
        )
    low = min(accuracies.values(), default=0.0)
    right.set_xlim(max(0.0, low - 0.1), 1.0)
    right.set_xlabel("test accuracy")
    fig.suptitle(title or "runs compared")
    return _finish(fig, path)


def plot_implementations(histories: Dict[str, Dict[str, List[float]]], path: str, title: str = "") -> str:
    """Two or more trainings of one network side by side: training (solid) and validation (dashed)
    loss on the left, accuracy on the right, one colour per implementation.

    Args:
        histories: ``{label: history}`` with ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy`` lists
            per epoch (missing or non-finite values are skipped); ``train_accuracy_label`` in a history
            names how its training accuracy was measured.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (name, history), color in zip(histories.items(), _colors(len(histories))):
        for ax, metric in zip(axes, ("loss", "accuracy")):
            train_label = history.get(f"train_{metric}_label", "training")
            for key, label, style in ((metric, train_label, "-"), (f"val_{metric}", "validation", "--")):
                points = [(i + 1, v) for i, v in enumerate(history.get(key) or []) if _is_number(v)]
                if points:
                    ax.plot(*zip(*points), style, color=color, linewidth=1.4, label=f"{name}: {label}")
    for ax, metric in zip(axes, ("cross-entropy loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_yscale("log")
    fig.suptitle(title or "implementations compared")
    return _finish(fig, path)


# ----------------------------------------------------------------------------- exploratory data analysis


def plot_brightness_contrast(
    brightness, contrast, labels, class_names: Sequence[str], path: str, title: str = ""
) -> str:
    """Box plots per class of each training image's brightness (mean pixel) and contrast (pixel std)."""
    import numpy as np

    plt = _pyplot()
    present = [c for c in range(len(class_names)) if np.any(labels == c)]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(present) + 3), 3.8))
    for ax, values, name in zip(
        axes, (brightness, contrast), ("brightness (mean pixel, 0..1)", "contrast (pixel std, 0..1)")
    ):
        ax.boxplot([values[labels == c] for c in present], showfliers=False)
        ax.set_xticks(range(1, len(present) + 1), [class_names[c] for c in present], rotation=45, ha="right")
        ax.set_title(name, fontsize=10)
    fig.suptitle(title or "per-class brightness and contrast (training images; whiskers 1.5 IQR)", fontsize=10)
    return _finish(fig, path)


def plot_image_table(rows: Dict[str, Sequence[Any]], column_titles: Sequence[str], path: str, title: str = "") -> str:
    """One row per key (a class), one column per image kind (e.g. mean, std and edge image)."""
    plt = _pyplot()
    names = list(rows)
    columns = len(column_titles)
    fig, axes = plt.subplots(len(names), columns, figsize=(1.3 * columns + 1.4, 1.15 * len(names) + 0.5), squeeze=False)
    for row, name in zip(axes, names):
        for column, ax in enumerate(row):
            _show_image(ax, rows[name][column])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    for ax, text in zip(axes[0], column_titles):
        ax.set_title(text, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return _finish(fig, path)


def plot_occupied_area(occupied, labels, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Histogram per class of the share of each image's pixels that are not background."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bins = np.linspace(0, 1, 41)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for c, name in enumerate(class_names):
        values = occupied[labels == c]
        if len(values):
            ax.hist(values, bins=bins, histtype="step", density=True, color=cmap(c % cmap.N), label=name)
    ax.set_xlabel("share of the image that is object (not background)")
    ax.set_ylabel("density")
    ax.legend(fontsize="x-small", ncol=2)
    ax.set_title(title or "occupied area per class")
    return _finish(fig, path)


def plot_correlation(matrix, by_distance: Dict[int, float], cumulative, path: str, title: str = "") -> str:
    """Three panels: the pixel-pixel correlation matrix, the mean correlation against the distance
    between two pixels, and PCA's cumulative explained variance with the 90/95/99% levels."""
    import numpy as np

    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    shown = axes[0].imshow(np.ma.masked_invalid(matrix), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(shown, ax=axes[0], fraction=0.046)
    axes[0].set_title("pixel-pixel correlation (row-major pixels)", fontsize=9)
    axes[0].set_xlabel("pixel")
    axes[0].set_ylabel("pixel")
    distances = sorted(by_distance)
    axes[1].plot(distances, [by_distance[d] for d in distances], marker="o", markersize=3)
    axes[1].axhline(0, color="tab:gray", linewidth=0.8)
    axes[1].set_xlabel("distance between pixels (pixels)")
    axes[1].set_ylabel("mean correlation")
    axes[1].set_title("correlation by distance", fontsize=9)
    components = np.arange(1, len(cumulative) + 1)
    axes[2].plot(components, cumulative)
    for level, color in zip((0.9, 0.95, 0.99), ("tab:green", "tab:orange", "tab:red")):
        k = int(np.searchsorted(cumulative, level) + 1)
        axes[2].axhline(level, color=color, linestyle="--", linewidth=0.8, label=f"{level:.0%}: {k} components")
    axes[2].set_xscale("log")
    axes[2].set_xlabel("PCA components")
    axes[2].set_ylabel("cumulative explained variance")
    axes[2].legend(fontsize="small", loc="lower right")
    axes[2].set_title("PCA explained variance", fontsize=9)
    fig.suptitle(title or "pixel correlation and PCA (training images)", fontsize=10)
    return _finish(fig, path)


def plot_examples(images, titles: Sequence[str], path: str, title: str, columns: int = 8) -> str:
    """A grid of flagged examples (duplicates, anomalies, likely label errors) with their indices; each
    row is as tall as its longest title needs (the titles run to four lines)."""
    title_lines = max((t.count("\n") + 1 for t in titles), default=1)
    return _image_grid(images, titles, path, title, columns, 1.5 + 0.25 * title_lines)


def plot_augmentations(
    original, augmented: Dict[str, Any], path: str, row_notes: Optional[Dict[str, str]] = None, title: str = ""
) -> str:
    """The same images in every row: unchanged first, then under each augmentation."""
    plt = _pyplot()
    rows = {"original": original, **augmented}
    columns = len(original)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.1 * columns + 2.2, 1.1 * len(rows) + 0.5), squeeze=False)
    for row, (name, images) in zip(axes, rows.items()):
        for ax, image in zip(row, images):
            _show_image(ax, image)
        note = (row_notes or {}).get(name)
        row[0].set_ylabel(name + (f"\n{note}" if note else ""), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title or "augmentations on the same validation images", fontsize=10)
    return _finish(fig, path)


def plot_embedding(panels: Dict[str, Any], class_names: Sequence[str], path: str, title: str = "") -> str:
    """Scatter plots of 2-D embeddings (``{panel title: (points, labels)}``), coloured by class."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels) + 1.5, 5.6), squeeze=False)
    for ax, (name, (points, labels)) in zip(axes[0], panels.items()):
        for c, label in enumerate(class_names):
            chosen = labels == c
            ax.scatter(points[chosen, 0], points[chosen, 1], s=3, alpha=0.6, color=cmap(c % cmap.N), label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", markerscale=4)
    fig.suptitle(title or "2-D embeddings coloured by class", fontsize=10)
    return _finish(fig, path)


# ----------------------------------------------------------------------------- tables


def plot_roc_pr(metrics: Dict[str, Any], path: str, title: str = "") -> str:
    """ROC and precision-recall curves of a two-class table (``evaluate.binary_metrics``), each with its
    chance level and the operating point of the decision threshold marked."""
    plt = _pyplot()
    curves, matrix = metrics["curves"], metrics["confusion_matrix"]
    (tn, fp), (fn, tp) = matrix
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(10, 4.2))
    roc.plot(
        curves["roc"]["fpr"], curves["roc"]["tpr"], color="tab:blue", label=f"model (AUC {metrics['roc_auc']:.3f})"
    )
    roc.plot([0, 1], [0, 1], color="tab:gray", linestyle=":", label="chance (AUC 0.5)")
    at = f"threshold {metrics['threshold']:.3f}"
    if tp + fn and fp + tn:
        roc.plot([fp / (fp + tn)], [tp / (tp + fn)], "o", color="tab:red", label=at)
    roc.set_xlabel("false positive rate")
    roc.set_ylabel("true positive rate (recall)")
    roc.set_title("ROC curve")
    precision, recall = curves["precision_recall"]["precision"], curves["precision_recall"]["recall"]
    pr.step(
        recall, precision, where="post", color="tab:blue", label=f"model (average precision {metrics['pr_auc']:.3f})"
    )
    share = metrics["positive_share"]
    pr.axhline(share, color="tab:gray", linestyle=":", label=f"chance (positive share {share:.3f})")
    if tp + fn and tp + fp:
        pr.plot([tp / (tp + fn)], [tp / (tp + fp)], "o", color="tab:red", label=at)
    pr.set_xlabel("recall")
    pr.set_ylabel("precision")
    pr.set_title(f"precision-recall ({metrics['positive_class']} is positive)")
    for ax in (roc, pr):
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right" if ax is roc else "lower left", fontsize="small")
    fig.suptitle(title or "test split")
    return _finish(fig, path)


def plot_probability_by_class(
    labels, probabilities, class_names: Sequence[str], threshold: float, path: str, title: str = ""
) -> str:
    """Histograms of the positive class's predicted probability, one per true class, with the threshold."""
    import numpy as np

    plt = _pyplot()
    labels, probabilities = np.asarray(labels), np.asarray(probabilities)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    bins = np.linspace(0, 1, 26)
    for index, (name, color) in enumerate(zip(class_names, ("tab:orange", "tab:blue"))):
        ax.hist(probabilities[labels == index], bins=bins, alpha=0.6, color=color, label=f"true {name}")
    ax.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel(f"predicted probability of {class_names[1]}")
    ax.set_ylabel("test rows")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    ax.set_title(title or "what the model says, by true class")
    return _finish(fig, path)


def plot_missing_values(missing: Dict[str, int], rows: int, path: str, title: str = "") -> str:
    """One bar per column: the share of its cells that are missing."""
    plt = _pyplot()
    names = list(missing)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.3 * len(names) + 1)))
    shares = [missing[name] / rows if rows else 0 for name in names]
    ax.barh(names, shares, color="tab:purple")
    for y, (share, count) in enumerate(zip(shares, missing.values())):
        ax.text(share, y, f" {count}", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(0.05, max(shares, default=0) * 1.2))
    ax.set_xlabel("share of rows missing")
    ax.grid(alpha=0.3, axis="x")
    ax.set_title(title or "missing values per column")
    return _finish(fig, path)


def plot_columns_by_class(
    panels: Sequence[Dict[str, Any]], class_names: Sequence[str], path: str, title: str = ""
) -> str:
    """One panel per feature, split by the target's class: a numeric column as overlaid density
    histograms, a categorical one as the class shares within each of its most common values.

    Args:
        panels: ``{"name", "kind": "numeric", "values": [per-class arrays]}`` or
            ``{"name", "kind": "categorical", "categories": [...], "counts": [per-class counts per category]}``.
    """
    import numpy as np

    plt = _pyplot()
    columns = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colors = _colors(len(class_names))
    for ax, panel in zip(axes.flat, panels):
        if panel["kind"] == "numeric":
            present = [np.asarray(v, dtype=float)[~np.isnan(np.asarray(v, dtype=float))] for v in panel["values"]]
            joined = np.concatenate(present) if present else np.array([])
            low, high = np.percentile(joined, [0.5, 99.5]) if len(joined) else (0.0, 1.0)
            bins = np.linspace(low, high if high > low else low + 1, 31)
            for values, name, color in zip(present, class_names, colors):
                if len(values):
                    ax.hist(np.clip(values, low, high), bins=bins, density=True, alpha=0.5, color=color, label=name)
            ax.set_ylabel("density")
        else:
            counts = np.asarray(panel["counts"], dtype=float)  # (classes, categories)
            totals = counts.sum(axis=0)
            shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
            bottom = np.zeros(counts.shape[1])
            labels = [c if c else "(missing)" for c in panel["categories"]]
            for share, name, color in zip(shares, class_names, colors):
                ax.bar(labels, share, bottom=bottom, color=color, alpha=0.8, label=name)
                bottom += share
            ax.set_ylabel("class share")
            ax.tick_params(axis="x", rotation=45, labelsize=7)
        ax.set_title(panel["name"], fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize="small", title="target")
    fig.suptitle(title or "features by class")
    return _finish(fig, path)
