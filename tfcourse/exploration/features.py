"""Hand-made features and augmentations, measured: Sobel edge maps and edge density per class,
histograms of oriented gradients (scikit-image's ``hog``), a logistic regression (scikit-learn) on
raw pixels vs on these features vs both, and the training pipeline's augmentations applied to the
same images, with how much each changes what the raw-pixel classifier sees.

HOG rather than local binary patterns: LBP histograms describe texture but drop where it is, and
these classes differ mostly by outline and layout (sleeves, soles, straps), which HOG's per-cell
gradient orientations keep.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Sequence

import numpy as np

from tfcourse import data
from tfcourse.exploration.stats import grey_vectors, stratified_sample

EDGE_THRESHOLD = 2.0  # Sobel magnitude (pixels in 0..1) counted as an edge: a step of half the range


def sobel_magnitude(grey: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of each image of a stack (N, H, W) in 0..1.

    ``scipy.ndimage.sobel`` on the stack would also smooth across neighbouring images (it smooths along
    every axis but the derivative's), so the two 1-D passes of the Sobel kernel run on the image axes only.
    """
    from scipy import ndimage

    grey = np.asarray(grey, dtype=np.float32)
    derivative, smoothing = [-1.0, 0.0, 1.0], [1.0, 2.0, 1.0]
    gx = ndimage.correlate1d(
        ndimage.correlate1d(grey, derivative, axis=2, mode="nearest"), smoothing, axis=1, mode="nearest"
    )
    gy = ndimage.correlate1d(
        ndimage.correlate1d(grey, derivative, axis=1, mode="nearest"), smoothing, axis=2, mode="nearest"
    )
    return np.hypot(gx, gy)


def edge_statistics(
    grey: np.ndarray, y: np.ndarray, class_names: Sequence[str], threshold: float = EDGE_THRESHOLD, chunk: int = 8192
) -> Dict[str, Any]:
    """Per class: edge density (share of pixels whose Sobel magnitude exceeds ``threshold``) and the
    mean edge map."""
    density = np.zeros(len(grey))
    sums = {c: np.zeros(grey.shape[1:], dtype=np.float64) for c in range(len(class_names))}
    for start in range(0, len(grey), chunk):
        magnitude = sobel_magnitude(grey[start : start + chunk])
        density[start : start + len(magnitude)] = (magnitude > threshold).mean(axis=(1, 2))
        labels = y[start : start + len(magnitude)]
        for c in np.unique(labels):
            sums[int(c)] += magnitude[labels == c].sum(axis=0)
    per_class, maps = {}, {}
    for c, name in enumerate(class_names):
        members = y == c
        if members.any():
            per_class[name] = float(density[members].mean())
            maps[name] = sums[c] / members.sum()
    top = max((m.max() for m in maps.values()), default=1.0) or 1.0
    maps = {k: (v / top * 255).round().astype(np.uint8)[..., None] for k, v in maps.items()}
    numbers = {"threshold": threshold, "edge_density": per_class, "edge_density_all": float(density.mean())}
    return {"numbers": numbers, "arrays": {"mean_edge_maps": maps, "density": density}}


def hog_features(grey: np.ndarray) -> np.ndarray:
    """HOG (9 orientations, cells of a quarter of the side, 2x2 blocks, L2-Hys) of each grey image."""
    from skimage.feature import hog

    cell = max(2, grey.shape[1] // 4)
    return np.stack(
        [
            hog(image, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2), feature_vector=True)
            for image in grey
        ]
    ).astype(np.float32)


def pooled_edges(grey: np.ndarray, cells: int = 7) -> np.ndarray:
    """The Sobel map block-averaged to ``cells`` x ``cells`` (where the edges are, coarsely)."""
    magnitude = sobel_magnitude(grey)
    n, h, w = magnitude.shape
    fh, fw = max(1, h // cells), max(1, w // cells)
    trimmed = magnitude[:, : (h // fh) * fh, : (w // fw) * fw]
    return trimmed.reshape(n, h // fh, fh, w // fw, fw).mean(axis=(2, 4)).reshape(n, -1).astype(np.float32)


def _classifier(seed: int):
    """scikit-learn's LogisticRegression as it comes (lbfgs, C=1, 100 iterations), on inputs already in a
    common range (pixels in 0..1, HOG L2-normalised per block, Sobel magnitudes 0..~6). Standardising
    would blow up the nearly constant border pixels, and with them the effect of any noise there."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(random_state=seed)


def feature_comparison(
    x: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    train_examples: int = 10000,
    max_side: int = 32,
    seed: int = 0,
) -> Dict[str, Any]:
    """Validation accuracy of a logistic regression on raw pixels, on HOG + pooled Sobel
    edges, and on both, fitted on a stratified subsample of ``train_examples`` training images.

    Returns numbers and, under ``arrays["raw_model"]``, the raw-pixel classifier (the augmentation
    check scores it on augmented images).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    if not len(val):
        raise ValueError("the feature comparison needs a validation split; give --val-fraction above 0.")
    fit_on = stratified_sample(y, train, train_examples, seed)
    results, models = {}, {}

    def features(idx):
        raw, grid = grey_vectors(x[idx], max_side)
        grey = raw.reshape(len(idx), *grid)
        engineered = np.concatenate([hog_features(grey), pooled_edges(grey)], axis=1)
        return {"raw pixels": raw, "HOG + Sobel": engineered, "both": np.concatenate([raw, engineered], axis=1)}

    train_features, val_features = features(fit_on), features(val)
    for name in train_features:
        started = time.perf_counter()
        model = _classifier(seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(train_features[name], y[fit_on])
        results[name] = {
            "features": int(train_features[name].shape[1]),
            "val_accuracy": float(model.score(val_features[name], y[val])),
            "train_accuracy": float(model.score(train_features[name], y[fit_on])),
            "seconds": time.perf_counter() - started,
            "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
            "iterations": int(np.max(model.n_iter_)),
        }
        models[name] = model
    numbers = {"train_examples": int(len(fit_on)), "val_examples": int(len(val)), "results": results}
    best = max(results, key=lambda k: results[k]["val_accuracy"])
    numbers["best"] = best
    return {"numbers": numbers, "arrays": {"raw_model": models["raw pixels"]}}


def _augment(name: str, images: np.ndarray, seed: int) -> np.ndarray:
    """``images`` uint8 through augmentation ``name`` (inputs scaled to 0..1, as in the pipeline),
    back to uint8 (clipped) for display and for the classifier."""
    layer = data.augmentation_layer(name, seed)
    out = np.asarray(layer(images.astype(np.float32) / 255.0, training=True))
    return np.clip(out * 255.0, 0, 255).round().astype(np.uint8)


def augmentation_check(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    val: np.ndarray,
    raw_model,
    dataset_name: str,
    margins: np.ndarray,
    preview: int = 8,
    scored: int = 2000,
    max_side: int = 32,
    seed: int = 0,
) -> Dict[str, Any]:
    """Each augmentation of ``data.AUGMENTATIONS`` on the same ``preview`` validation images (one per
    class first), whether it keeps the label for this dataset, and the raw-pixel classifier's accuracy
    on ``scored`` augmented validation images against the same images unchanged."""
    shown = []
    for c in range(len(class_names)):
        members = val[y[val] == c]
        if len(members) and len(shown) < preview:
            shown.append(int(members[0]))
    rest = [int(i) for i in val if int(i) not in shown]
    shown = np.asarray(shown + rest[: max(0, preview - len(shown))], dtype=np.int64)
    scored_idx = stratified_sample(y, val, scored, seed)
    base_vectors, _ = grey_vectors(x[scored_idx], max_side)
    clean = float(raw_model.score(base_vectors, y[scored_idx]))
    height, width = x.shape[1:3]
    shift_h, shift_w = round(0.1 * height), round(0.1 * width)
    cut_by_shift = float(np.mean((margins[:, :2].min(axis=1) < shift_h) | (margins[:, 2:].min(axis=1) < shift_w)))
    mirror = data.mirror_safe(dataset_name)
    verdicts = {
        "flip": (
            ("yes", "a mirrored example is still of its class")
            if mirror
            else ("no", "mirrored digits and letters are not the class")
            if mirror is False
            else ("unknown", "look at the preview: is a mirrored example still of its class?")
        ),
        "shift": (
            "yes",
            f"{cut_by_shift:.0%} of the objects lie within 10% of a border, so the largest shift cuts part of them off",
        ),
        "rotation": ("yes", "a small tilt keeps the class (only a half turn confuses 6 and 9)"),
        "zoom": ("yes", "a change of scale keeps the class; zooming in may crop the outline"),
        "contrast": ("yes", "brightness and contrast do not define the class"),
        "noise": ("yes", "pixel noise does not define the class"),
        "erasing": ("mostly", "the erased patch can hide the one part that tells two classes apart"),
    }
    rows, images = {}, {}
    for k, name in enumerate(data.AUGMENTATIONS):
        images[name] = _augment(name, x[shown], seed + k)
        augmented, _ = grey_vectors(_augment(name, x[scored_idx], seed + 100 + k), max_side)
        label_preserving, reason = verdicts.get(name, ("unknown", "look at the preview"))
        rows[name] = {
            "description": data.AUGMENTATIONS[name][1],
            "in_pipeline": name in data.PIPELINE_AUGMENTATIONS,
            "label_preserving": label_preserving,
            "reason": reason,
            "raw_accuracy": float(raw_model.score(augmented, y[scored_idx])),
        }
    numbers = {
        "scored_examples": int(len(scored_idx)),
        "clean_raw_accuracy": clean,
        "shown_indices": shown.tolist(),
        "augmentations": rows,
        "mirror_safe": mirror,
    }
    return {"numbers": numbers, "arrays": {"original": x[shown], "augmented": images, "labels": y[shown]}}
