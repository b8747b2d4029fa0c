"""Exploratory numbers of a table (``python -m tfcourse.eda --dataset csv:PATH --target COLUMN`` or
``seattle_weather``): each column's kind, missing cells and values, the target's balance in every
split, and each feature against the target (numbers: per-class summaries and, for a two-class target,
the ROC-AUC of the feature alone; categories: the class shares within each value).

Only the training rows measure how a feature relates to the target, as a model would see them.
NumPy and scikit-learn only; the page is ``tfcourse.pages.table_eda_page``.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from tfcourse.data import Splits
from tfcourse.data.table_data import TabularDataset, holds_numbers

TOP_CATEGORIES = 12  # values of a categorical column shown by class; the rest are summed as "(other)"


def _missing(dataset: TabularDataset, name: str) -> np.ndarray:
    values = dataset.columns[name]
    return np.isnan(values) if holds_numbers(dataset.kinds[name]) else values == ""


def column_summary(dataset: TabularDataset) -> List[Dict[str, Any]]:
    """One entry per feature column: kind, missing count and share, distinct values, and for numbers
    mean, standard deviation, min, median and max of the present values."""
    entries = []
    for name in dataset.columns:
        values, missing = dataset.columns[name], _missing(dataset, name)
        entry = {
            "name": name,
            "kind": dataset.kinds[name],
            "missing": int(missing.sum()),
            "missing_share": float(missing.mean()),
            "distinct": int(len(np.unique(values[~missing]))),
        }
        if holds_numbers(dataset.kinds[name]) and (~missing).any():
            present = values[~missing]
            entry.update(
                mean=float(present.mean()),
                std=float(present.std()),
                min=float(present.min()),
                median=float(np.median(present)),
                max=float(present.max()),
            )
        entries.append(entry)
    return entries


def target_balance(dataset: TabularDataset, splits: Splits) -> Dict[str, Dict[str, int]]:
    """Rows per class in every split: ``{split: {class: count}}``."""
    return {
        part: {
            name: int(np.sum(dataset.y[getattr(splits, part)] == index))
            for index, name in enumerate(dataset.class_names)
        }
        for part in ("train", "val", "test")
    }


def feature_by_class(dataset: TabularDataset, rows: np.ndarray) -> List[Dict[str, Any]]:
    """Each feature against the target on ``rows`` (the training rows).

    Returns:
        Per feature: for a number, the present values per class, each class's mean and missing share,
        and for a two-class target ``auc``: the ROC-AUC of the value alone (above 0.5 when larger values
        mean the positive class); for a category, its most common values and the rows of each class per
        value (``counts``: classes x values).
    """
    from sklearn.metrics import roc_auc_score

    y = dataset.y[rows]
    panels = []
    for name in dataset.columns:
        values, missing = dataset.columns[name][rows], _missing(dataset, name)[rows]
        if holds_numbers(dataset.kinds[name]):
            per_class = [values[(y == c) & ~missing] for c in range(dataset.num_classes)]
            panel = {
                "name": name,
                "kind": "numeric",
                "values": per_class,
                "means": [float(v.mean()) if len(v) else None for v in per_class],
                "missing_share_by_class": [float(missing[y == c].mean()) for c in range(dataset.num_classes)],
            }
            present = ~missing
            if dataset.binary and len(np.unique(y[present])) == 2:
                panel["auc"] = float(roc_auc_score(y[present], values[present]))
        else:
            names, counts = np.unique(values, return_counts=True)
            top = list(names[np.argsort(-counts, kind="stable")][:TOP_CATEGORIES])
            table = [[int(np.sum((values == v) & (y == c))) for v in top] for c in range(dataset.num_classes)]
            if len(names) > len(top):
                rest = ~np.isin(values, top)
                top.append("(other)")
                for c in range(dataset.num_classes):
                    table[c].append(int(np.sum(rest & (y == c))))
            panel = {"name": name, "kind": "categorical", "categories": [str(v) for v in top], "counts": table}
        panels.append(panel)
    return panels


def findings(columns: List[Dict[str, Any]], balance, panels, class_names) -> List[str]:
    """Sentences a person would take from the numbers, for training."""
    lines = []
    train = balance["train"]
    total = sum(train.values())
    smallest = min(train, key=train.get)
    share = train[smallest] / total if total else 0
    lines.append(
        f"The smallest class, {smallest}, is {share:.0%} of the training rows"
        + (
            "; accuracy alone will flatter a model: read ROC-AUC and the per-class F1, consider --class-weight "
            "balanced."
            if share < 0.35
            else "; the classes are balanced enough for accuracy to mean something."
        )
    )
    gappy = [c for c in columns if c["missing_share"] > 0.2]
    if gappy:
        lines.append(
            "Columns missing in more than 20% of rows: "
            + ", ".join(f"{c['name']} ({c['missing_share']:.0%})" for c in gappy)
            + "; the model imputes them and sees a missing-value indicator, so missingness itself can inform."
        )
    ranked = sorted((p for p in panels if "auc" in p), key=lambda p: -abs(p["auc"] - 0.5))
    if ranked:
        best = ranked[0]
        lines.append(
            f"The single most telling number is {best['name']} (ROC-AUC {best['auc']:.3f} alone on the training rows"
            f"{', larger values mean ' + class_names[1] if best['auc'] > 0.5 else ', smaller values mean ' + class_names[1]})."
        )
    many = [c for c in columns if c["kind"] == "categorical" and c["distinct"] > 50]
    if many:
        lines.append(
            "Categorical columns with many values (one-hot inputs each): "
            + ", ".join(f"{c['name']} ({c['distinct']})" for c in many)
            + "."
        )
    return lines
