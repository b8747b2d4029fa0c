"""Seeded, stratified, disjoint train/validation/test index sets under a split protocol (``make_splits``),
a stratified training subset (``limit_train``), and ``load_splits``: the one data recipe a run, a search
and the EDA share."""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np

from tfcourse.config import SPLIT_PROTOCOLS, DataConfig
from tfcourse.data import idx
from tfcourse.data.catalogue import Dataset, select_classes
from tfcourse.data.sources import load_dataset


@dataclasses.dataclass(frozen=True)
class Splits:
    """Disjoint train/val/test index sets into ``Dataset.pooled()``, sorted ascending."""

    protocol: str
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def sizes(self) -> Dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _stratified_split(indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int, what: str):
    from sklearn.model_selection import train_test_split

    try:
        rest, part = train_test_split(indices, test_size=fraction, stratify=labels, random_state=seed)
    except ValueError as error:
        raise ValueError(
            f"Cannot carve a stratified {what} set of {fraction:.0%} from {len(indices)} examples: {error} "
            "Use more data per class or a larger fraction."
        ) from error
    return np.sort(rest), np.sort(part)


def make_splits(
    dataset: Dataset,
    protocol: str = "coursework",
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> Splits:
    """Splits a dataset into disjoint, stratified, seeded train/val/test index sets.

    Args:
        dataset: The loaded dataset; indices refer to ``dataset.pooled()``.
        protocol: ``coursework``: 80/10/10 (by default) over every labelled example.
            ``official``: the official test set as test; validation carved from the
            official training set.
        val_fraction: Validation share (of all data, or of the official train set).
        test_fraction: Test share of all data (``coursework`` only).
        seed: Fixes the split.

    Raises:
        ValueError: For an unknown protocol, bad fractions, or ``official`` on a dataset
            without an official test set.
    """
    if protocol not in SPLIT_PROTOCOLS:
        raise ValueError(f"Unknown split protocol {protocol!r}; use one of {', '.join(SPLIT_PROTOCOLS)}.")
    check_split_fractions(val_fraction, test_fraction)
    _, labels = dataset.pooled()
    if protocol == "official":
        if not dataset.has_official_test:
            raise ValueError(f"Dataset {dataset.name!r} has no official test set; use --split coursework.")
        n_train = len(dataset.y_train)
        train_indices = np.arange(n_train)
        train, val = _stratified_split(train_indices, labels[:n_train], val_fraction, seed, "validation")
        test = np.arange(n_train, len(labels))
    else:
        train, val, test = stratified_three_way(labels, val_fraction, test_fraction, seed)
    return Splits(protocol, seed, train, val, test)


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raises ``ValueError`` unless both shares are in (0, 1) and leave rows for training."""
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"Split fractions must be in (0, 1) and leave room for training: val={val_fraction}, test={test_fraction}."
        )


def stratified_three_way(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int):
    """Sorted train/val/test indices into ``labels``, each split keeping the class shares (seeded):
    ``test_fraction`` of all rows for test, ``val_fraction`` of all rows for validation."""
    rest, test = _stratified_split(np.arange(len(labels)), labels, test_fraction, seed, "test")
    train, val = _stratified_split(rest, labels[rest], val_fraction / (1 - test_fraction), seed, "validation")
    return train, val, test


def limit_train(dataset: Dataset, splits: Splits, limit: Optional[int], seed: int) -> Splits:
    """Keeps a stratified, seeded subset of ``limit`` training examples (validation and test untouched).

    For learning curves and for transfer learning with few labelled examples.

    Raises:
        ValueError: If ``limit`` is below the number of classes.
    """
    if limit is None or limit == len(splits.train):
        return splits
    if limit > len(splits.train):
        raise ValueError(
            f"--train-limit {limit} is more than the {len(splits.train)} training examples of this split; "
            f"give at most {len(splits.train)}, or leave --train-limit out to train on all."
        )
    if limit < dataset.num_classes:
        raise ValueError(
            f"--train-limit {limit} is below the number of classes ({dataset.num_classes}); "
            "keep at least one example per class."
        )
    _, labels = dataset.pooled()
    _, kept = _stratified_split(splits.train, labels[splits.train], limit / len(splits.train), seed, "limited training")
    return dataclasses.replace(splits, train=kept)


def load_splits(config: DataConfig, seed: int, download: bool = True) -> Tuple[Dataset, Splits]:
    """The data recipe of one ``DataConfig``: ``load_dataset``, ``select_classes``, ``make_splits`` and
    ``limit_train``. Training (``load_pipelines``) and a run read back later (``artifacts.Run.test_data``)
    both call it, so a run's test split is the one it was tested on.

    Returns:
        ``(dataset, splits)``.
    """
    if config.image_size is not None and not (os.path.isdir(config.dataset) and not idx.find_idx_files(config.dataset)):
        # checked before loading: a catalogued set, tfds or IDX files keep their own size
        raise ValueError(
            f"--image-size resizes the images of an image folder only; {config.dataset} would not be "
            "resized. Leave --image-size out (resnet50 and the transfer bases resize inside the model: "
            "--hp image_size)."
        )
    dataset = load_dataset(config.dataset, config.data_dir, config.image_size, download=download)
    dataset = select_classes(dataset, config.classes)
    splits = make_splits(dataset, config.split, config.val_fraction, config.test_fraction, seed)
    return dataset, limit_train(dataset, splits, config.train_limit, seed)
