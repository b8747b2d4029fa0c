"""The figures of the EDA pages: class counts and samples, pixel histograms, brightness and contrast, extent,
correlation, augmentations, embeddings; for tables, missing cells and columns by class."""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from tfcourse.pages import plots
from tfcourse.pages.plots import finish, line_colors, pyplot, show_image


def plot_class_counts(counts: Dict[str, Dict[str, int]], path: str, title: str = "") -> str:
    """Grouped bars: examples per class in each split (``{split: {class: count}}``)."""
    import numpy as np

    plt = pyplot()
    splits = list(counts)
    names = list(next(iter(counts.values())))
    positions = np.arange(len(names))
    width = 0.8 / max(1, len(splits))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(names) + 2), 3.8))
    for offset, (split, color) in enumerate(zip(splits, line_colors(len(splits)))):
        ax.bar(positions + offset * width, [counts[split][n] for n in names], width, label=split, color=color)
    ax.set_xticks(positions + width * (len(splits) - 1) / 2, names, rotation=45, ha="right")
    ax.set_ylabel("examples")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or "examples per class and split")
    return finish(fig, path)


def plot_class_samples(
    images_by_class: Dict[str, Any], path: str, mean_images: Optional[Dict[str, Any]] = None, title: str = ""
) -> str:
    """One row per class: a few training images, and the class's mean image in the first column."""
    plt = pyplot()
    names = list(images_by_class)
    per_row = max(len(v) for v in images_by_class.values()) + (1 if mean_images else 0)
    fig, axes = plt.subplots(len(names), per_row, figsize=(1.1 * per_row + 1.2, 1.1 * len(names) + 0.4), squeeze=False)
    for row, name in zip(axes, names):
        cells = ([mean_images[name]] if mean_images else []) + list(images_by_class[name])
        for column, ax in enumerate(row):
            if column < len(cells):
                show_image(ax, cells[column])
            else:
                ax.set_visible(False)
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    if mean_images:
        axes[0][0].set_title("mean", fontsize=8)
    fig.suptitle(title or "training images per class", fontsize=10)
    return finish(fig, path)


def plot_pixel_histogram(histograms: Dict[str, Any], path: str, title: str = "") -> str:
    """Pixel-value distribution (0..255) per channel of the training images."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for (name, counts), color in zip(histograms.items(), line_colors(len(histograms))):
        ax.plot(range(len(counts)), counts, color=color, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("pixel value")
    ax.set_ylabel("pixels (log scale)")
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or "pixel values of the training images")
    return finish(fig, path)


def plot_brightness_contrast(
    brightness, contrast, labels, class_names: Sequence[str], path: str, title: str = ""
) -> str:
    """Box plots per class of each training image's brightness (mean pixel) and contrast (pixel std)."""
    import numpy as np

    plt = pyplot()
    present = [c for c in range(len(class_names)) if np.any(labels == c)]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(present) + 3), 3.8))
    for ax, values, name in zip(
        axes, (brightness, contrast), ("brightness (mean pixel, 0..1)", "contrast (pixel std, 0..1)")
    ):
        ax.boxplot([values[labels == c] for c in present], showfliers=False)
        ax.set_xticks(range(1, len(present) + 1), [class_names[c] for c in present], rotation=45, ha="right")
        ax.set_title(name, fontsize=10)
    fig.suptitle(title or "per-class brightness and contrast (training images; whiskers 1.5 IQR)", fontsize=10)
    return finish(fig, path)


def plot_image_table(rows: Dict[str, Sequence[Any]], column_titles: Sequence[str], path: str, title: str = "") -> str:
    """One row per key (a class), one column per image kind (e.g. mean, std and edge image)."""
    plt = pyplot()
    names = list(rows)
    columns = len(column_titles)
    fig, axes = plt.subplots(len(names), columns, figsize=(1.3 * columns + 1.4, 1.15 * len(names) + 0.5), squeeze=False)
    for row, name in zip(axes, names):
        for column, ax in enumerate(row):
            show_image(ax, rows[name][column])
        row[0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    for ax, text in zip(axes[0], column_titles):
        ax.set_title(text, fontsize=8)
    fig.suptitle(title, fontsize=10)
    return finish(fig, path)


def plot_occupied_area(occupied, labels, class_names: Sequence[str], path: str, title: str = "") -> str:
    """Histogram per class of the share of each image's pixels that are not background."""
    import numpy as np

    plt = pyplot()
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
    return finish(fig, path)


def plot_correlation(matrix, by_distance: Dict[int, float], cumulative, path: str, title: str = "") -> str:
    """Three panels: the pixel-pixel correlation matrix, the mean correlation against the distance
    between two pixels, and PCA's cumulative explained variance with the 90/95/99% levels."""
    import numpy as np

    plt = pyplot()
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
    return finish(fig, path)


def plot_augmentations(
    original, augmented: Dict[str, Any], path: str, row_notes: Optional[Dict[str, str]] = None, title: str = ""
) -> str:
    """The same images in every row: unchanged first, then under each augmentation."""
    plt = pyplot()
    rows = {"original": original, **augmented}
    columns = len(original)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.1 * columns + 2.2, 1.1 * len(rows) + 0.5), squeeze=False)
    for row, (name, images) in zip(axes, rows.items()):
        for ax, image in zip(row, images):
            show_image(ax, image)
        note = (row_notes or {}).get(name)
        row[0].set_ylabel(name + (f"\n{note}" if note else ""), rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title or "augmentations on the same validation images", fontsize=10)
    return finish(fig, path)


def plot_embedding(panels: Dict[str, Any], class_names: Sequence[str], path: str, title: str = "") -> str:
    """Scatter plots of 2-D embeddings (``{panel title: (points, labels)}``), coloured by class."""
    plt = pyplot()
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
    return finish(fig, path)


def plot_missing_values(missing: Dict[str, int], rows: int, path: str, title: str = "") -> str:
    """One bar per column: the share of its cells that are missing."""
    plt = pyplot()
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
    return finish(fig, path)


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

    plt = pyplot()
    columns = min(3, max(1, len(panels)))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    colors = line_colors(len(class_names))
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
    return finish(fig, path)


# ----------------------------------------------------------------------------- every figure of an EDA


def overview_figures(classes, pixels, samples, fig: Callable[[str], str]) -> Dict[str, str]:
    """Class counts, per-class samples with the mean image, pixel histogram and per-class brightness and
    contrast (``classes``/``pixels``/``samples``: ``stats.class_distribution``, ``stats.image_statistics``
    and ``stats.class_samples`` results)."""
    arrays = pixels["arrays"]
    names = list(classes["counts"]["train"])
    return {
        "class_counts": plot_class_counts(classes["counts"], fig("class_counts.png")),
        "class_samples": plot_class_samples(
            samples["images"], fig("class_samples.png"), mean_images=arrays["mean_images"]
        ),
        "pixel_histogram": plot_pixel_histogram(pixels["numbers"]["histogram"], fig("pixel_histogram.png")),
        "brightness_contrast": plot_brightness_contrast(
            arrays["brightness"], arrays["contrast"], arrays["labels"], names, fig("brightness_contrast.png")
        ),
    }


def _indices_title(index: int, splits: np.ndarray, label: str) -> str:
    return f"#{index} {splits[index]}\n{label}"


def example_sets(numbers: Dict[str, Any], x: np.ndarray, y: np.ndarray, names: Sequence[str], splits):
    """The EDA's galleries of listed examples, each ``(figure key, images, titles, title)``: near-duplicate
    pairs, exact-duplicate groups, blank and saturated images, outliers and likely label errors."""
    duplicates, anomalies = numbers["duplicates"], numbers["anomalies"]
    near = [(i, f"\nrms {pair['rms']:.3f}") for pair in duplicates["near"]["listed"][:12] for i in pair["indices"]]
    exact = [(i, "") for group in duplicates["exact"]["listed"][:8] for i in group["indices"][:4]]
    flat = anomalies["blank_saturated"]
    flagged = [(i, "\nblank") for i in flat["blank_indices"][:8]] + [
        (i, "\nsaturated") for i in flat["saturated_indices"][:8]
    ]
    far = anomalies["outliers"]["listed"]
    suspects = numbers["neighbours"]["listed"]
    sets = [
        ("near_duplicates", near, "near-duplicate pairs (side by side), across splits first"),
        ("exact_duplicates", exact, "byte-identical images (groups in a row, at most 4 shown)"),
        ("blank_saturated", flagged, "nearly blank and saturated images"),
    ]
    found = [
        (key, [x[i] for i, _ in chosen], [_indices_title(i, splits, names[y[i]]) + note for i, note in chosen], title)
        for key, chosen, title in sets
    ]
    found.append(
        (
            "outliers",
            [x[o["index"]] for o in far],
            [f"{_indices_title(o['index'], splits, o['label'])}\nz {o['z']:.1f}" for o in far],
            "farthest from their class mean (robust z-score)",
        )
    )
    found.append(
        (
            "label_errors",
            [x[s["index"]] for s in suspects],
            [f"#{s['index']} {splits[s['index']]}\nlabel {s['label']}\nnbrs: {s['neighbours_say']}" for s in suspects],
            "likely label errors: label, and what most of the nearest neighbours say",
        )
    )
    return found


def draw_figures(
    result: Dict[str, Any], x: np.ndarray, y: np.ndarray, names: Sequence[str], splits, fig
) -> Dict[str, str]:
    numbers, arrays = result["numbers"], result["arrays"]
    figures = overview_figures(
        numbers["classes"],
        {"numbers": numbers["pixels"], "arrays": arrays["pixels"]},
        arrays["samples"],
        fig,
    )
    pixels = arrays["pixels"]
    edges = arrays["features"]["edges"]["mean_edge_maps"]
    figures["class_images"] = plot_image_table(
        {n: [pixels["mean_images"][n], pixels["std_images"][n], edges[n]] for n in pixels["mean_images"]},
        ["mean", "std", "Sobel edges"],
        fig("class_images.png"),
        "mean, std and mean Sobel edge image per class (std and edges on one scale across classes)",
    )
    dims = arrays["dimensions"]
    figures["occupied"] = plot_occupied_area(dims["occupied"], dims["labels"], names, fig("occupied_area.png"))
    corr = arrays["correlation"]
    figures["correlation"] = plot_correlation(
        corr["matrix"], numbers["correlation"]["by_distance"], corr["cumulative"], fig("correlation.png")
    )
    for key, images, titles, title in example_sets(numbers, x, y, names, splits):
        if images:
            figures[key] = plots.plot_examples(images, titles, fig(f"{key}.png"), title)
    augmentation = arrays["augmentation"]
    notes = {k: f"keeps label: {v['label_preserving']}" for k, v in numbers["augmentation"]["augmentations"].items()}
    figures["augmentations"] = plot_augmentations(
        augmentation["original"], augmentation["augmented"], fig("augmentations.png"), notes
    )
    embedding = arrays["embedding"]
    figures["embedding"] = plot_embedding(
        {
            f"PCA (first two components, {len(embedding['pca'])} training images)": (
                embedding["pca"],
                embedding["pca_labels"],
            ),
            f"t-SNE ({len(embedding['tsne'])} training images, from PCA-{numbers['embedding']['tsne_input_dimensions']})": (
                embedding["tsne"],
                embedding["tsne_labels"],
            ),
        },
        names,
        fig("embedding.png"),
    )
    return figures
