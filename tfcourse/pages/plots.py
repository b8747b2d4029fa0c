"""Figures a person looks at, drawn headless (matplotlib's Agg backend) and written atomically as PNG files:
the drawing kit every page uses (``pyplot``, ``finish``, ``line_colors``, image grids) and the figures of a run's
report (curves, confusion matrix, predictions, explanations, comparisons, a table run's ROC/PR)."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from tfcourse.rundir import atomic_write


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str) -> None:
    atomic_write(path, lambda staging: fig.savefig(staging, dpi=110, bbox_inches="tight"), suffix=".png")


def finish(fig, path: str) -> str:
    """Lays out (leaving room for a figure title above the axes' own titles), writes (atomically) and
    closes a figure; returns ``path``."""
    title = fig.get_suptitle()
    top = 1 - (0.25 + 0.2 * title.count("\n")) / fig.get_figheight() if title else 1
    fig.tight_layout(rect=(0, 0, 1, top))
    save_figure(fig, path)
    pyplot().close(fig)
    return path


def line_colors(count: int) -> List[str]:
    palette = ["tab:blue", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
    return [palette[i % len(palette)] for i in range(count)]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def show_image(ax, image) -> None:
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
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label, style in ((metric, "training", "-o"), (f"val_{metric}", "validation", "-s")):
            values = history.get(key) or []
            points = [(i + 1, v) for i, v in enumerate(values) if is_number(v)]
            if points:
                ax.plot(*zip(*points), style, markersize=3, label=label)
        val = [(i + 1, v) for i, v in enumerate(history.get("val_loss") or []) if is_number(v)]
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
    return finish(fig, path)


def plot_confusion_matrix(matrix, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Confusion-matrix heatmap, coloured by the row-normalised fraction, annotated with counts."""
    import numpy as np

    plt = pyplot()
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
    return finish(fig, path)


def image_grid(
    images,
    titles: Sequence[str],
    path: str,
    title: str,
    columns: int,
    title_height: float,
    colors: Optional[Sequence[str]] = None,
) -> str:
    """Images in rows of ``columns``, each with a small title (optionally coloured); spare cells hidden."""
    plt = pyplot()
    count = len(images)
    columns = max(1, min(columns, count))
    lines = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(lines, columns, figsize=(1.6 * columns, title_height * lines + 0.4), squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= count:
            ax.set_visible(False)
            continue
        show_image(ax, images[index])
        ax.set_title(titles[index], fontsize=7, **({"color": colors[index]} if colors else {}))
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


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
    return image_grid(images, titles, path, title or "predictions (predicted / true)", columns, 1.9, colors)


def plot_per_class_accuracy(
    per_class: Dict[str, Optional[float]], path: str, overall: Optional[float] = None, title: str = ""
) -> str:
    """Horizontal bars of each class's test accuracy, the overall accuracy as a line."""
    plt = pyplot()
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
    return finish(fig, path)


def plot_explanations(images, maps, row_titles: Sequence[str], path: str, title: str = "", overlay: bool = True) -> str:
    """One row per example: the input, the map alone, and the map over the input.

    Args:
        images: Raw images (N, H, W, C).
        maps: (N, H, W) arrays in [0, 1] (heatmaps or saliency), same size as the images.
        overlay: Draw the third column (the map over the image).
    """
    plt = pyplot()
    columns = 3 if overlay else 2
    fig, axes = plt.subplots(
        len(images), columns, figsize=(2.0 * columns + 1.5, 2.0 * len(images) + 0.4), squeeze=False
    )
    for row, image, heat, name in zip(axes, images, maps, row_titles):
        show_image(row[0], image)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        row[1].imshow(heat, cmap="jet", vmin=0, vmax=1)
        row[1].set_xticks([])
        row[1].set_yticks([])
        if overlay:
            show_image(row[2], image)
            row[2].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[0][0].set_title("input", fontsize=9)
    axes[0][1].set_title("map", fontsize=9)
    if overlay:
        axes[0][2].set_title("overlay", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


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
    plt = pyplot()
    fig, axes = plt.subplots(len(images), 4, figsize=(10.0, 2.2 * len(images) + 0.5), squeeze=False)
    for row, image, matrix, heat, name in zip(axes, images, matrices, maps, row_titles):
        show_image(row[0], image)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        shown = row[1].imshow(matrix, cmap="viridis", vmin=0, interpolation="nearest")
        fig.colorbar(shown, ax=row[1], fraction=0.046, pad=0.04)
        row[1].set_xlabel("key token", fontsize=7)
        row[1].set_ylabel("query token", fontsize=7)
        row[1].tick_params(labelsize=6)
        row[2].imshow(heat, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
        row[2].set_xticks([])
        row[2].set_yticks([])
        show_image(row[3], image)
        row[3].imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="nearest")
    axes[0][0].set_title("input", fontsize=9)
    axes[0][1].set_title("attention weights" + (" (token 0 = class)" if class_token else ""), fontsize=9)
    axes[0][2].set_title("attention over patches", fontsize=9)
    axes[0][3].set_title("overlay", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_image_row(images, titles: Sequence[str], path: str, title: str = "", columns: int = 8) -> str:
    """A grid of images with titles (activation maximisation results, filters)."""
    return image_grid(images, titles, path, title, columns, 1.8)


def plot_compare_runs(
    histories: Dict[str, Dict[str, List[float]]], accuracies: Dict[str, float], path: str, title: str = ""
) -> str:
    """Several runs side by side: validation accuracy per epoch, and test accuracy bars."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    colors = line_colors(len(histories))
    for (name, history), color in zip(histories.items(), colors):
        key = "val_accuracy" if any(is_number(v) for v in history.get("val_accuracy") or []) else "accuracy"
        points = [(i + 1, v) for i, v in enumerate(history.get(key) or []) if is_number(v)]
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
    return finish(fig, path)


def plot_implementations(histories: Dict[str, Dict[str, List[float]]], path: str, title: str = "") -> str:
    """Two or more trainings of one network side by side: training (solid) and validation (dashed)
    loss on the left, accuracy on the right, one colour per implementation.

    Args:
        histories: ``{label: history}`` with ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy`` lists
            per epoch (missing or non-finite values are skipped); ``train_accuracy_label`` in a history
            names how its training accuracy was measured.
    """
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (name, history), color in zip(histories.items(), line_colors(len(histories))):
        for ax, metric in zip(axes, ("loss", "accuracy")):
            train_label = history.get(f"train_{metric}_label", "training")
            for key, label, style in ((metric, train_label, "-"), (f"val_{metric}", "validation", "--")):
                points = [(i + 1, v) for i, v in enumerate(history.get(key) or []) if is_number(v)]
                if points:
                    ax.plot(*zip(*points), style, color=color, linewidth=1.4, label=f"{name}: {label}")
    for ax, metric in zip(axes, ("cross-entropy loss", "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    axes[0].set_yscale("log")
    fig.suptitle(title or "implementations compared")
    return finish(fig, path)


def plot_examples(images, titles: Sequence[str], path: str, title: str, columns: int = 8) -> str:
    """A grid of flagged examples (duplicates, anomalies, likely label errors) with their indices; each
    row is as tall as its longest title needs (the titles run to four lines)."""
    title_lines = max((t.count("\n") + 1 for t in titles), default=1)
    return image_grid(images, titles, path, title, columns, 1.5 + 0.25 * title_lines)


def plot_roc_pr(metrics: Dict[str, Any], path: str, title: str = "") -> str:
    """ROC and precision-recall curves of a two-class table (``evaluate.binary_metrics``), each with its
    chance level and the operating point of the decision threshold marked."""
    plt = pyplot()
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
    return finish(fig, path)


def plot_probability_by_class(
    labels, probabilities, class_names: Sequence[str], threshold: float, path: str, title: str = ""
) -> str:
    """Histograms of the positive class's predicted probability, one per true class, with the threshold."""
    import numpy as np

    plt = pyplot()
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
    return finish(fig, path)


def plot_faithfulness_curves(curves: Dict[str, Dict[str, Sequence[float]]], path: str, title: str = "") -> str:
    """Mean deletion and insertion curves (class probability against the share of pixels removed or
    revealed, hottest first), one line per method and dashed grey lines for the baselines."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    methods = [name for name in curves if not name.startswith("baseline:")]
    for ax, kind in zip(axes, ("deletion", "insertion")):
        for name, color in zip(methods, line_colors(len(methods))):
            values = curves[name][kind]
            ax.plot([i / (len(values) - 1) for i in range(len(values))], values, color=color, label=name)
        for name, style in (("baseline: random map", ":"), ("baseline: Sobel edges", "--")):
            if name in curves:
                values = curves[name][kind]
                xs = [i / (len(values) - 1) for i in range(len(values))]
                ax.plot(xs, values, color="grey", linestyle=style, label=name[len("baseline: ") :])
        ax.set_xlabel(f"share of pixels {'removed' if kind == 'deletion' else 'revealed'} (hottest first)")
        ax.set_ylabel("probability of the class")
        ax.set_title(f"{kind} ({'lower' if kind == 'deletion' else 'higher'} area = more faithful)")
        ax.set_ylim(0, 1.02)
    axes[1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    return finish(fig, path)
