"""Exploratory data analysis as numbers (no drawing): class balance, pixel statistics, object extent,
pixel correlation and PCA, exact and near duplicates (within and across splits), blank and saturated
images, outliers, likely label errors from nearest neighbours, and 2-D embeddings.

Every function takes the pooled uint8 images ``x`` (N, H, W, C) and labels ``y`` of ``Dataset.pooled()``
and index arrays into them, and returns plain numbers (JSON-ready, under ``numbers``) apart from the
arrays a figure needs (under ``arrays``). Indices in the results are positions in ``pooled()``, so an
example can be looked up. ``tfcourse.exploration.analysis`` runs them in order; the run report calls
``class_distribution``, ``image_statistics`` and ``class_samples``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

BALANCED_RATIO = 1.5  # largest over smallest class: at most this is called balanced
SPLIT_NAMES = ("train", "val", "test")


def split_of(count: int, split_indices: Dict[str, np.ndarray]) -> np.ndarray:
    """The split name of every pooled example (``""`` for one in no split, e.g. left out by a limit)."""
    names = np.full(count, "", dtype=object)
    for split, idx in split_indices.items():
        names[idx] = split
    return names


def _pair_name(a: str, b: str) -> str:
    order = {name: i for i, name in enumerate(SPLIT_NAMES)}
    return "-".join(sorted((a or "none", b or "none"), key=lambda s: order.get(s, 9)))


# ----------------------------------------------------------------------------- 1. classes


def class_distribution(y: np.ndarray, class_names: Sequence[str], split_indices: Dict[str, np.ndarray]):
    """Examples per class and split, shares, the largest/smallest ratio and the entropy of the class
    shares relative to a uniform distribution (1.0: perfectly balanced)."""
    counts, balance = {}, {}
    for split, idx in split_indices.items():
        if not len(idx):
            continue
        per_class = np.bincount(y[idx], minlength=len(class_names))
        counts[split] = {name: int(n) for name, n in zip(class_names, per_class)}
        present = per_class[per_class > 0]
        shares = present / present.sum()
        entropy = float(-(shares * np.log(shares)).sum() / math.log(len(class_names))) if len(class_names) > 1 else 1.0
        ratio = float(present.max() / present.min())
        balance[split] = {
            "examples": int(per_class.sum()),
            "max_min_ratio": ratio,
            "relative_entropy": entropy,
            "largest": class_names[int(per_class.argmax())],
            "smallest": class_names[int(np.where(per_class > 0, per_class, per_class.max() + 1).argmin())],
            "missing_classes": [class_names[i] for i in np.flatnonzero(per_class == 0)],
            "balanced": bool(ratio <= BALANCED_RATIO and not (per_class == 0).any()),
        }
    shares = {s: {k: v / max(1, sum(c.values())) for k, v in c.items()} for s, c in counts.items()}
    return {"counts": counts, "shares": shares, "balance": balance, "balanced_ratio": BALANCED_RATIO}


# ----------------------------------------------------------------------------- 2. pixels


def channel_names(channels: int) -> List[str]:
    return ["grey"] if channels == 1 else ["red", "green", "blue", "alpha"][:channels]


def image_statistics(x: np.ndarray, y: np.ndarray, class_names: Sequence[str], train: np.ndarray):
    """Pixel statistics of the training images: per channel mean/std (0..1) and histogram; per class
    the brightness (each image's mean pixel) and contrast (each image's pixel std), and the mean and
    std image.

    Returns:
        ``{"numbers": {...}, "arrays": {"brightness", "contrast", "labels", "mean_images", "std_images"}}``.
    """
    x_train, y_train = x[train], y[train]
    channels = x.shape[-1]
    flat = x_train.reshape(-1, channels)
    per_image = x_train.reshape(len(x_train), -1).astype(np.float32) / 255.0
    brightness, contrast = per_image.mean(axis=1), per_image.std(axis=1)
    per_class, means, stds = {}, {}, {}
    for i, name in enumerate(class_names):
        members = y_train == i
        if not members.any():
            continue
        b, c = brightness[members], contrast[members]
        per_class[name] = {
            "brightness_mean": float(b.mean()),
            "brightness_quartiles": [float(q) for q in np.percentile(b, [25, 50, 75])],
            "contrast_mean": float(c.mean()),
            "contrast_quartiles": [float(q) for q in np.percentile(c, [25, 50, 75])],
        }
        stack = x_train[members].astype(np.float32)
        means[name] = stack.mean(axis=0).round().astype(np.uint8)
        stds[name] = stack.std(axis=0)
    top = max((s.max() for s in stds.values()), default=1.0) or 1.0
    stds = {k: (v / top * 255).round().astype(np.uint8) for k, v in stds.items()}  # shown on one common scale
    names = channel_names(channels)
    numbers = {
        "image_shape": list(x.shape[1:]),
        "pixel": {"mean": (flat.mean(axis=0) / 255.0).tolist(), "std": (flat.std(axis=0) / 255.0).tolist()},
        "histogram": {names[c]: np.bincount(flat[:, c], minlength=256).tolist() for c in range(channels)},
        "per_class": per_class,
        "std_image_scale": float(top / 255.0),
    }
    arrays = {"brightness": brightness, "contrast": contrast, "labels": y_train, "mean_images": means}
    arrays["std_images"] = stds
    return {"numbers": numbers, "arrays": arrays}


def class_samples(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], train: np.ndarray, per_class: int = 8, seed: int = 0
) -> Dict[str, Any]:
    """A seeded random choice of ``per_class`` training images of each class: ``{"images": {class:
    array}, "indices": {class: pooled indices}}``."""
    rng = np.random.default_rng(seed)
    images, indices = {}, {}
    for i, name in enumerate(class_names):
        members = train[y[train] == i]
        if len(members):
            picked = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False))
            images[name], indices[name] = x[picked], picked.tolist()
    return {"images": images, "indices": indices}


# ----------------------------------------------------------------------------- 3. dimensions


def background_value(x: np.ndarray, train: np.ndarray) -> List[int]:
    """The most common value of the border pixels of the training images, per channel."""
    sample = x[train]
    border = np.concatenate(
        [sample[:, 0].reshape(-1, x.shape[-1]), sample[:, -1].reshape(-1, x.shape[-1])]
        + [sample[:, :, 0].reshape(-1, x.shape[-1]), sample[:, :, -1].reshape(-1, x.shape[-1])]
    )
    return [int(np.bincount(border[:, c], minlength=256).argmax()) for c in range(x.shape[-1])]


def dimensions(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    train: np.ndarray,
    original_sizes: Optional[np.ndarray] = None,
    tolerance: int = 10,
    chunk: int = 8192,
):
    """Image sizes and the extent of the object: the bounding box of the pixels that differ from the
    background (the border's most common value) by more than ``tolerance`` (of 255).

    Returns numbers: the stored shape, the sizes before resizing (image folders), the margins every
    image leaves empty (cropping them loses nothing), the 5th-percentile margins, the median box and
    each class's occupied share; arrays: per image margins (top, bottom, left, right), occupied share.
    """
    count, height, width = x.shape[:3]
    background = np.asarray(background_value(x, train), dtype=np.int16)
    margins = np.zeros((count, 4), dtype=np.int64)
    occupied = np.zeros(count, dtype=np.float64)
    empty = np.zeros(count, dtype=bool)
    for start in range(0, count, chunk):
        block = x[start : start + chunk].astype(np.int16)
        foreground = (np.abs(block - background) > tolerance).any(axis=-1)
        rows, cols = foreground.any(axis=2), foreground.any(axis=1)
        stop = start + len(block)
        empty[start:stop] = ~rows.any(axis=1)
        margins[start:stop, 0] = rows.argmax(axis=1)
        margins[start:stop, 1] = rows[:, ::-1].argmax(axis=1)
        margins[start:stop, 2] = cols.argmax(axis=1)
        margins[start:stop, 3] = cols[:, ::-1].argmax(axis=1)
        occupied[start:stop] = foreground.mean(axis=(1, 2))
    margins[empty] = 0
    used = ~empty
    box_h = height - margins[:, 0] - margins[:, 1]
    box_w = width - margins[:, 2] - margins[:, 3]
    sides = ("top", "bottom", "left", "right")
    if original_sizes is not None and len(original_sizes):
        sizes, size_counts = np.unique(original_sizes, axis=0, return_counts=True)
        order = np.argsort(-size_counts)
        originals = {
            "distinct": int(len(sizes)),
            "most_common": [
                {"height": int(sizes[i][0]), "width": int(sizes[i][1]), "images": int(size_counts[i])}
                for i in order[:5]
            ],
            "height_range": [int(original_sizes[:, 0].min()), int(original_sizes[:, 0].max())],
            "width_range": [int(original_sizes[:, 1].min()), int(original_sizes[:, 1].max())],
        }
    else:
        originals = None
    per_class = {}
    for i, name in enumerate(class_names):
        members = (y == i) & used
        if members.any():
            per_class[name] = {
                "occupied_median": float(np.median(occupied[members])),
                "box_height_median": float(np.median(box_h[members])),
                "box_width_median": float(np.median(box_w[members])),
            }
    numbers = {
        "stored_shape": [int(height), int(width), int(x.shape[-1])],
        "all_same_size": bool(originals is None or originals["distinct"] == 1),
        "original_sizes": originals,
        "background": background.tolist(),
        "tolerance": tolerance,
        "empty_images": int(empty.sum()),
        "margin_all": {s: int(margins[used, k].min()) if used.any() else 0 for k, s in enumerate(sides)},
        "margin_p5": {s: float(np.percentile(margins[used, k], 5)) if used.any() else 0.0 for k, s in enumerate(sides)},
        "box_median": {
            "height": float(np.median(box_h[used])) if used.any() else 0.0,
            "width": float(np.median(box_w[used])) if used.any() else 0.0,
        },
        "box_area_median": float(np.median(box_h[used] * box_w[used]) / (height * width)) if used.any() else 0.0,
        "occupied_median": float(np.median(occupied[used])) if used.any() else 0.0,
        "touching_border": float(np.mean((margins[used] == 0).any(axis=1))) if used.any() else 0.0,
        "per_class": per_class,
    }
    return {"numbers": numbers, "arrays": {"margins": margins, "occupied": occupied, "labels": y, "empty": empty}}


# ----------------------------------------------------------------------------- geometry of the pixels


def grey_vectors(x: np.ndarray, max_side: int = 32) -> Tuple[np.ndarray, Tuple[int, int]]:
    """Images as float32 rows in [0, 1] for distances, correlation and PCA: channels averaged to grey,
    and an image larger than ``max_side`` shrunk by an integer block mean so a side is at most that."""
    count, height, width = x.shape[:3]
    factor = max(1, math.ceil(max(height, width) / max_side))
    h, w = height // factor, width // factor
    grey = x[:, : h * factor, : w * factor].astype(np.float32).mean(axis=-1) / 255.0
    if factor > 1:
        grey = grey.reshape(count, h, factor, w, factor).mean(axis=(2, 4))
    return np.ascontiguousarray(grey.reshape(count, h * w)), (h, w)


def fit_pca(vectors_train: np.ndarray, seed: int = 0):
    """scikit-learn's PCA with every component, by the covariance eigendecomposition (fast for a
    few hundred pixels and tens of thousands of images)."""
    from sklearn.decomposition import PCA

    return PCA(svd_solver="covariance_eigh", random_state=seed).fit(vectors_train)


def correlation(
    vectors_train: np.ndarray, grid: Tuple[int, int], pca, max_images: int = 20000, seed: int = 0
) -> Dict[str, Any]:
    """Pixel-pixel correlation over training images, its mean as a function of the distance between
    two pixels, and how many PCA components explain 90/95/99% of the variance."""
    rng = np.random.default_rng(seed)
    sample = vectors_train
    if len(sample) > max_images:
        sample = sample[np.sort(rng.choice(len(sample), max_images, replace=False))]
    std = sample.std(axis=0)
    constant = std == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = np.corrcoef(sample, rowvar=False)
    matrix[constant, :] = np.nan
    matrix[:, constant] = np.nan
    rows, cols = np.divmod(np.arange(grid[0] * grid[1]), grid[1])
    distance = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
    bins = np.rint(distance).astype(np.int64)
    off = ~np.eye(len(rows), dtype=bool) & np.isfinite(matrix)
    sums = np.bincount(bins[off], weights=matrix[off])
    counts = np.bincount(bins[off])
    by_distance = {int(d): float(sums[d] / counts[d]) for d in range(1, len(counts)) if counts[d]}
    cumulative = np.cumsum(pca.explained_variance_ratio_)

    def first_below(level):
        return next((d for d, v in by_distance.items() if v < level), None)

    numbers = {
        "images_used": int(len(sample)),
        "grid": list(grid),
        "constant_pixels": int(constant.sum()),
        "by_distance": by_distance,
        "neighbour_correlation": by_distance.get(1),
        "distance_below_0.5": first_below(0.5),
        "distance_below_0.2": first_below(0.2),
        "pca_components_for": {str(level): int(np.searchsorted(cumulative, level) + 1) for level in (0.9, 0.95, 0.99)},
        "pca_first_ratios": [float(v) for v in pca.explained_variance_ratio_[:10]],
        "pca_dimensions": int(len(cumulative)),
    }
    return {"numbers": numbers, "arrays": {"matrix": matrix, "cumulative": cumulative}}


# ----------------------------------------------------------------------------- 6. noise and anomalies


def exact_duplicates(x: np.ndarray, y: np.ndarray, splits: np.ndarray, class_names: Sequence[str], top: int = 20):
    """Groups of byte-identical images (each image's bytes as one key, sorted by ``np.unique``)."""
    rows = np.ascontiguousarray(x.reshape(len(x), -1))
    keys = rows.view(np.dtype((np.void, rows.shape[1])))[:, 0]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    repeated = np.flatnonzero(counts > 1)
    order = np.argsort(inverse, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)])
    groups = [order[starts[g] : starts[g + 1]] for g in repeated]
    cross = [g for g in groups if len(set(splits[g])) > 1]
    conflicting = [g for g in groups if len(set(y[g])) > 1]
    train_test = [g for g in groups if {"train", "test"} <= set(splits[g])]
    leaked = sorted(int(k) for g in train_test for k in g if splits[k] == "test")
    listed = sorted(groups, key=lambda g: (-(len(set(splits[g])) > 1), -len(g), g[0]))[:top]
    numbers = {
        "groups": len(groups),
        "images_in_groups": int(sum(len(g) for g in groups)),
        "groups_across_splits": len(cross),
        "groups_train_test": len(train_test),
        "groups_with_conflicting_labels": len(conflicting),
        "test_images_with_a_train_copy": leaked,
        "listed": [
            {"indices": g.tolist(), "splits": splits[g].tolist(), "labels": [class_names[v] for v in y[g]]}
            for g in listed
        ],
    }
    return {"numbers": numbers, "arrays": {"group_of": inverse, "groups": groups}}


def near_duplicates(
    vectors: np.ndarray,
    projected: np.ndarray,
    y: np.ndarray,
    splits: np.ndarray,
    class_names: Sequence[str],
    rms: float = 0.02,
    group_of: Optional[np.ndarray] = None,
    top: int = 50,
    chunk: int = 4096,
) -> Dict[str, Any]:
    """Pairs of different images whose root-mean-square pixel difference (0..1) is at most ``rms``.

    Not quadratic: a k-d tree over ``projected`` (the images in the first PCA components) answers a
    radius query per image. An orthonormal projection never lengthens a distance, so every pair within
    ``rms * sqrt(pixels)`` in pixel space is within it in the projection too: the tree's candidates
    contain every near duplicate, and each candidate is then measured on all pixels.

    Args:
        group_of: ``exact_duplicates``' group of every image; byte-identical pairs are left out here.
    """
    from sklearn.neighbors import KDTree

    radius = rms * math.sqrt(vectors.shape[1])
    tree = KDTree(projected)
    first, second, distance = [], [], []
    candidates = 0
    for start in range(0, len(projected), chunk):
        found = tree.query_radius(projected[start : start + chunk], radius * (1 + 1e-5) + 1e-6)
        lengths = np.fromiter((len(a) for a in found), dtype=np.int64, count=len(found))
        i = np.repeat(np.arange(start, start + len(found)), lengths)
        j = np.concatenate(found) if len(found) else np.zeros(0, dtype=np.int64)
        keep = j > i
        i, j = i[keep], j[keep]
        candidates += len(i)
        d = np.sqrt(np.mean((vectors[i] - vectors[j]) ** 2, axis=1)) if len(i) else np.zeros(0)
        close = d <= rms
        if group_of is not None:
            close &= group_of[i] != group_of[j]
        first.append(i[close])
        second.append(j[close])
        distance.append(d[close])
    i, j, d = (np.concatenate(v) if v else np.zeros(0) for v in (first, second, distance))
    i, j = i.astype(np.int64), j.astype(np.int64)
    order = np.argsort(d, kind="stable")
    i, j, d = i[order], j[order], d[order]
    by_splits: Dict[str, int] = {}
    for a, b in zip(splits[i], splits[j]):
        key = _pair_name(a, b)
        by_splits[key] = by_splits.get(key, 0) + 1
    across = splits[i] != splits[j]
    train_test = ((splits[i] == "train") & (splits[j] == "test")) | ((splits[i] == "test") & (splits[j] == "train"))
    leaked = np.unique(np.where(splits[i[train_test]] == "test", i[train_test], j[train_test]))
    listed = np.concatenate([np.flatnonzero(across), np.flatnonzero(~across)])[:top]
    numbers = {
        "rms_threshold": rms,
        "pairs": int(len(i)),
        "candidates_checked": int(candidates),
        "by_splits": dict(sorted(by_splits.items())),
        "pairs_train_test": int(by_splits.get("train-test", 0)),
        "pairs_across_splits": int(across.sum()),
        "test_images_with_a_train_twin": leaked.tolist(),
        "pairs_with_different_labels": int((y[i] != y[j]).sum()),
        "images_involved": int(len(np.unique(np.concatenate([i, j])))) if len(i) else 0,
        "listed": [
            {
                "indices": [int(i[k]), int(j[k])],
                "splits": [splits[i[k]], splits[j[k]]],
                "labels": [class_names[y[i[k]]], class_names[y[j[k]]]],
                "rms": float(d[k]),
            }
            for k in listed
        ],
    }
    return {"numbers": numbers, "arrays": {"pairs": np.stack([i, j], axis=1) if len(i) else np.zeros((0, 2), int)}}


def blank_and_saturated(
    x: np.ndarray, blank_std: float = 0.02, saturated_share: float = 0.5, top: int = 16, chunk: int = 8192
) -> Dict[str, Any]:
    """Nearly blank images (pixel std below ``blank_std`` of the range: one flat colour) and saturated
    ones (more than ``saturated_share`` of their pixels at 250 or above)."""
    std = np.zeros(len(x))
    bright = np.zeros(len(x))
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk].reshape(min(chunk, len(x) - start), -1)
        std[start : start + len(block)] = block.astype(np.float32).std(axis=1) / 255.0
        bright[start : start + len(block)] = (block >= 250).mean(axis=1)
    blank = np.flatnonzero(std < blank_std)
    saturated = np.flatnonzero(bright > saturated_share)
    numbers = {
        "blank_std_threshold": blank_std,
        "saturated_share_threshold": saturated_share,
        "blank": int(len(blank)),
        "saturated": int(len(saturated)),
        "blank_indices": blank[np.argsort(std[blank], kind="stable")][:top].tolist(),
        "saturated_indices": saturated[np.argsort(-bright[saturated], kind="stable")][:top].tolist(),
        "lowest_std": [{"index": int(k), "std": float(std[k])} for k in np.argsort(std, kind="stable")[:5]],
    }
    return {"numbers": numbers, "arrays": {"std": std, "saturated_share": bright}}


def outliers(
    vectors: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    class_names: Sequence[str],
    threshold: float = 3.5,
    top: int = 16,
) -> Dict[str, Any]:
    """Images far from their class's mean training image: the RMS distance to it, as a robust z-score
    within the class (median and MAD; above ``threshold``, Iglewicz and Hoaglin's 3.5, is an outlier)."""
    distance = np.zeros(len(vectors))
    score = np.zeros(len(vectors))
    per_class = {}
    for c, name in enumerate(class_names):
        members = np.flatnonzero(y == c)
        fitted = train[y[train] == c]
        if not len(members) or not len(fitted):
            continue
        centre = vectors[fitted].mean(axis=0)
        d = np.sqrt(np.mean((vectors[members] - centre) ** 2, axis=1))
        median = np.median(d)
        mad = np.median(np.abs(d - median)) * 1.4826 or 1e-12
        distance[members], score[members] = d, (d - median) / mad
        per_class[name] = int((score[members] > threshold).sum())
    flagged = np.flatnonzero(score > threshold)
    ranked = flagged[np.argsort(-score[flagged], kind="stable")]
    numbers = {
        "threshold": threshold,
        "outliers": int(len(flagged)),
        "per_class": per_class,
        "listed": [
            {"index": int(k), "label": class_names[y[k]], "distance": float(distance[k]), "z": float(score[k])}
            for k in ranked[:top]
        ],
    }
    return {"numbers": numbers, "arrays": {"distance": distance, "z": score}}


def neighbours(
    projected: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    k: int = 10,
    share: float = 0.8,
    top: int = 16,
) -> Dict[str, Any]:
    """The ``k`` nearest neighbours of every image in PCA space (scikit-learn's ``NearestNeighbors``):
    likely label errors (at least ``share`` of the neighbours carry one same other label), the
    neighbour confusion between classes (which classes overlap) and leave-one-out k-NN accuracy."""
    from sklearn.neighbors import NearestNeighbors

    num_classes = len(class_names)
    found_distance, found = NearestNeighbors(n_neighbors=k + 1).fit(projected).kneighbors(projected)
    # drop the image itself (normally first; an exact duplicate may come before it)
    is_self = found == np.arange(len(found))[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    keep = ~is_self
    found = found[keep].reshape(len(found), k)
    found_distance = found_distance[keep].reshape(len(found), k)
    labels = y[found]
    counts = np.zeros((len(y), num_classes), dtype=np.int64)
    for column in range(k):
        counts[np.arange(len(y)), labels[:, column]] += 1
    own = counts[np.arange(len(y)), y]
    other = counts.copy()
    other[np.arange(len(y)), y] = -1
    suggested = other.argmax(axis=1)
    other_share = other.max(axis=1) / k
    suspects = np.flatnonzero(other_share >= share)
    ranked = suspects[np.lexsort((found_distance[suspects].mean(axis=1), -other_share[suspects]))]
    confusion = np.zeros((num_classes, num_classes))
    for c in range(num_classes):
        members = y == c
        if members.any():
            confusion[c] = counts[members].sum(axis=0) / (k * members.sum())
    overlap = confusion + confusion.T
    pairs = [
        (overlap[a, b] / 2, a, b) for a in range(num_classes) for b in range(a + 1, num_classes) if overlap[a, b] > 0
    ]
    pairs.sort(reverse=True)
    vote = counts.argmax(axis=1)
    numbers = {
        "k": k,
        "share": share,
        "dimensions": int(projected.shape[1]),
        "knn_accuracy": float(np.mean(vote == y)),
        "own_label_share_mean": float(np.mean(own / k)),
        "suspects": int(len(suspects)),
        "suspects_per_class": {
            class_names[c]: int(np.sum(y[suspects] == c)) for c in range(num_classes) if np.any(y[suspects] == c)
        },
        "listed": [
            {
                "index": int(n),
                "label": class_names[y[n]],
                "neighbours_say": class_names[suggested[n]],
                "share": float(other_share[n]),
            }
            for n in ranked[:top]
        ],
        "confusion": {class_names[c]: [float(v) for v in confusion[c]] for c in range(num_classes)},
        "overlapping_pairs": [
            {"classes": [class_names[a], class_names[b]], "neighbour_share": float(v)} for v, a, b in pairs[:5]
        ],
    }
    return {"numbers": numbers, "arrays": {"confusion": confusion, "suspects": ranked, "suggested": suggested}}


# ----------------------------------------------------------------------------- 9. embedding


def stratified_sample(y: np.ndarray, pool: np.ndarray, size: int, seed: int) -> np.ndarray:
    """About ``size`` indices from ``pool``, the same share of every class, sorted."""
    if size >= len(pool):
        return np.sort(pool)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(y[pool]):
        members = pool[y[pool] == c]
        take = max(1, round(size * len(members) / len(pool)))
        picked.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(picked))


def embedding(
    projected: np.ndarray, y: np.ndarray, train: np.ndarray, tsne_samples: int = 2000, seed: int = 0
) -> Dict[str, Any]:
    """2-D views of the training images: the first two PCA components (of a stratified subsample of at
    most 5000 for the plot) and t-SNE (scikit-learn) of a stratified subsample of ``tsne_samples``,
    started from PCA, on the PCA-reduced images (the usual recipe)."""
    from sklearn.manifold import TSNE

    shown = stratified_sample(y, train, 5000, seed)
    sample = stratified_sample(y, train, tsne_samples, seed + 1)
    perplexity = float(min(30, max(2, (len(sample) - 1) / 3)))
    tsne = TSNE(2, init="pca", learning_rate="auto", perplexity=perplexity, random_state=seed)
    points = tsne.fit_transform(projected[sample])
    numbers = {
        "pca_points": int(len(shown)),
        "tsne_points": int(len(sample)),
        "tsne_perplexity": perplexity,
        "tsne_input_dimensions": int(projected.shape[1]),
        "tsne_kl_divergence": float(tsne.kl_divergence_),
    }
    arrays = {"pca": projected[shown, :2], "pca_labels": y[shown], "tsne": points, "tsne_labels": y[sample]}
    return {"numbers": numbers, "arrays": arrays}
