"""Dataset statistics as numbers (no drawing): examples per class and split, pixel statistics,
a few sample images and the mean image of each class."""

from __future__ import annotations

from typing import Any, Dict, Sequence

import numpy as np


def summarize(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    split_indices: Dict[str, np.ndarray],
    samples_per_class: int = 8,
    seed: int = 0,
) -> Dict[str, Any]:
    """Statistics of a labelled image set and its splits.

    Args:
        x, y: ``Dataset.pooled()`` images (N, H, W, C) uint8 and labels.
        split_indices: ``{"train": idx, "val": idx, "test": idx}`` into ``x``.
        samples_per_class: Training images kept per class for a figure (a seeded random choice).

    Returns:
        ``counts`` ({split: {class: n}}), ``pixel`` (mean/std per channel of the training images, in 0..1),
        ``histogram`` ({channel: 256 counts}), ``samples`` and ``mean_images`` ({class: arrays}) and
        ``imbalance`` (largest over smallest training class).
    """
    rng = np.random.default_rng(seed)
    counts = {
        split: {name: int(np.sum(y[idx] == i)) for i, name in enumerate(class_names)}
        for split, idx in split_indices.items()
        if len(idx)
    }
    train = split_indices["train"]
    x_train, y_train = x[train], y[train]
    channels = x.shape[-1]
    flat = x_train.reshape(-1, channels)
    channel_names = ["grey"] if channels == 1 else ["red", "green", "blue", "alpha"][:channels]
    samples, means = {}, {}
    for i, name in enumerate(class_names):
        members = np.flatnonzero(y_train == i)
        if len(members) == 0:
            continue
        picked = rng.choice(members, size=min(samples_per_class, len(members)), replace=False)
        samples[name] = x_train[np.sort(picked)]
        means[name] = x_train[members].mean(axis=0).round().astype(np.uint8)
    train_counts = [c for c in counts["train"].values() if c]
    return {
        "counts": counts,
        "image_shape": list(x.shape[1:]),
        "pixel": {"mean": (flat.mean(axis=0) / 255.0).tolist(), "std": (flat.std(axis=0) / 255.0).tolist()},
        "histogram": {channel_names[c]: np.bincount(flat[:, c], minlength=256).tolist() for c in range(channels)},
        "samples": samples,
        "mean_images": means,
        "imbalance": max(train_counts) / min(train_counts) if train_counts else None,
    }
