"""The image datasets tfcourse knows by name, and what every dataset is: ``Dataset`` (validated uint8
images (N, H, W, C), integer labels, class names), its checks (``validate_arrays``, label coverage),
``from_arrays``, ``select_classes``, and the catalogue's facts (``mirror_safe``, ``dark_background``)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional, Sequence, Tuple

import numpy as np

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


DIGIT_CLASSES = tuple(str(digit) for digit in range(10))


# Catalogue of named datasets: class names, where a Debian package puts the IDX files,
# the apt package that provides them, and the tfds name used as the network fallback.
CATALOGUE = {
    "fashion_mnist": {
        "class_names": FASHION_MNIST_CLASSES,
        "system_dir": "/usr/share/datasets/fashion-mnist",
        "apt_package": "dataset-fashion-mnist",
        "tfds_name": "fashion_mnist",
        "aliases": ("fashion_mnist", "fashion-mnist"),
        "mirror_safe": True,  # a mirrored garment is the same garment
        "dark_background": True,
    },
    "mnist": {
        "class_names": DIGIT_CLASSES,
        "system_dir": "/usr/share/datasets/mnist",
        "apt_package": None,
        "tfds_name": "mnist",
        "aliases": ("mnist",),
        "mirror_safe": False,  # a mirrored 2 or 7 is no digit
        "dark_background": True,
    },
    "digits": {"class_names": DIGIT_CLASSES, "mirror_safe": False, "dark_background": True},
}


DATA_DIR_ENV = "TFCOURSE_DATA_DIR"


IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # as keras.utils.image_dataset_from_directory


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Validated labelled images from one source.

    Attributes:
        name: The dataset name or path it was loaded by.
        x_train, y_train: Images (N, H, W, C) uint8 and int64 labels; for sources
            without an official split, every labelled example.
        x_test, y_test: The official test set, or ``None`` when the source has none.
        class_names: One name per label, label ``i`` is ``class_names[i]``.
        source: Where the data was read from, for logs and ``config.json``.
        original_sizes: (N, 2) height and width of each image before resizing (image folders only;
            ``None`` where every image came at its stored size).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: Optional[np.ndarray]
    y_test: Optional[np.ndarray]
    class_names: Tuple[str, ...]
    source: str
    original_sizes: Optional[np.ndarray] = None

    @property
    def has_official_test(self) -> bool:
        return self.x_test is not None

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def pooled(self) -> Tuple[np.ndarray, np.ndarray]:
        """All labelled examples: the official test set follows the training set."""
        return self._pooled

    @functools.cached_property
    def _pooled(self) -> Tuple[np.ndarray, np.ndarray]:
        # Computed once: splits, pipelines and the export check all index into it (55 MB for Fashion-MNIST).
        if not self.has_official_test:
            return self.x_train, self.y_train
        return np.concatenate([self.x_train, self.x_test]), np.concatenate([self.y_train, self.y_test])


def validate_arrays(x, y, num_classes: int, where: str = "dataset") -> Tuple[np.ndarray, np.ndarray]:
    """Checks and normalises images and labels.

    Args:
        x: Images (N, H, W) or (N, H, W, C) with C in {1, 3, 4}; uint8, or float in
            [0, 1] or [0, 255] (converted to uint8).
        y: Integer labels (N,) in ``[0, num_classes)``.
        num_classes: Number of classes.
        where: Names the source in error messages.

    Returns:
        ``(images uint8 (N, H, W, C), labels int64 (N,))``.

    Raises:
        ValueError: On empty data, wrong shapes, NaN/inf or out-of-range values, or
            labels outside the class range.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.size == 0 or len(x) == 0:
        raise ValueError(f"{where}: no images found. Check the path or dataset name.")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{where}: images must have shape (N, H, W) or (N, H, W, C) with C in 1, 3, 4; got {x.shape}.")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"{where}: labels must have shape ({len(x)},) to match the images; got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating) or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"{where}: labels must be integers; got dtype {y.dtype} with non-integer values.")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(
            f"{where}: labels must lie in [0, {num_classes - 1}] for {num_classes} classes; "
            f"found {int(y.min())}..{int(y.max())}. Check the class list or the label file."
        )
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.number):
            raise ValueError(f"{where}: images must be numeric, got dtype {x.dtype}.")
        xf = x.astype(np.float64)
        if not np.all(np.isfinite(xf)):
            raise ValueError(f"{where}: images contain NaN or infinite values; clean or drop those examples.")
        low, high = xf.min(), xf.max()
        if low < 0 or high > 255:
            raise ValueError(f"{where}: pixel values must lie in [0, 1] or [0, 255]; found {low:g}..{high:g}.")
        scale = 255.0 if high <= 1.0 else 1.0
        x = np.round(xf * scale).astype(np.uint8)
    return np.ascontiguousarray(x), y.astype(np.int64)


def _describe_counts(labels: np.ndarray, values) -> str:
    counts = np.bincount(labels) if len(labels) else np.zeros(0, dtype=int)
    return ", ".join(
        f"{int(v)} ({int(counts[v]) if v < len(counts) else 0} example"
        f"{'' if v < len(counts) and counts[v] == 1 else 's'})"
        for v in values
    )


def check_label_coverage(labels: np.ndarray, num_classes: int, where: str) -> None:
    """Labels must be ``0..k-1`` with ``k >= 2`` and every class present.

    A class count inferred from the largest label turns a few stray labels (255 in an IDX
    file) into hundreds of empty classes, and one class makes any classifier "100% accurate".

    Raises:
        ValueError: Naming the offending labels and their counts.
    """
    if num_classes < 2:
        raise ValueError(
            f"{where}: found {num_classes} class; a classifier needs at least 2. Add a second class "
            "(one sub-folder per class for an image folder) or pick another dataset."
        )
    counts = np.bincount(labels, minlength=num_classes)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        above = np.flatnonzero((np.arange(num_classes) > missing[0]) & (counts > 0))
        gap = (
            f"{missing[0]}..{missing[-1]}"
            if len(missing) > 3 and missing[-1] - missing[0] + 1 == len(missing)
            else ", ".join(str(int(v)) for v in missing[:20]) + (" ..." if len(missing) > 20 else "")
        )
        raise ValueError(
            f"{where}: labels must be 0..k-1 with every class present, but {len(missing)} of the {num_classes} "
            f"classes have no examples (labels {gap})"
            + (f"; labels above that gap: {_describe_counts(labels, above[:20])}" if len(above) else "")
            + ". Stray labels? Fix the label file or drop those examples."
        )


def check_inferred_classes(labels: np.ndarray, where: str) -> None:
    """For a class count read off the largest label: refuse labels far rarer than the rest.

    One stray label (say a 10 among 60,000 labels of 0..9) makes an eleventh class of one
    example; no split can stratify it and no model can learn it.

    Raises:
        ValueError: Naming the rare labels and their counts.
    """
    counts = np.bincount(labels)
    present = counts[counts > 0]
    rare = np.flatnonzero((counts > 0) & (counts < max(2, 0.01 * np.median(present))))
    if len(rare):
        raise ValueError(
            f"{where}: the class count is read off the largest label ({len(counts) - 1}), and labels "
            f"{_describe_counts(labels, rare[:20])} are far rarer than the others (median {int(np.median(present))} "
            "examples per class): stray labels? Fix the label file or drop those examples."
        )


def make_dataset(name, x_train, y_train, x_test, y_test, class_names, source) -> Dataset:
    class_names = tuple(str(c) for c in class_names)
    x_train, y_train = validate_arrays(x_train, y_train, len(class_names), f"{source} (train)")
    if x_test is not None:
        x_test, y_test = validate_arrays(x_test, y_test, len(class_names), f"{source} (test)")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(f"{source}: train images are {x_train.shape[1:]} but test images {x_test.shape[1:]}.")
    if len(class_names) < 2:
        check_label_coverage(y_train, len(class_names), source)
    return Dataset(name, x_train, y_train, x_test, y_test, class_names, source)


def from_arrays(x, y, class_names: Sequence[str], x_test=None, y_test=None, name: str = "arrays") -> Dataset:
    """Wraps in-memory arrays as a validated ``Dataset`` (see ``validate_arrays``)."""
    return make_dataset(name, x, y, x_test, y_test, class_names, name)


def catalogue_entry(name: str) -> Optional[Tuple[str, dict]]:
    for key, entry in CATALOGUE.items():
        if name == key or name in entry.get("aliases", ()):
            return key, entry
    return None


def select_classes(dataset: Dataset, classes: Optional[Sequence[int]]) -> Dataset:
    """Keeps only the examples of ``classes``, relabelled ``0..k-1`` in the order given.

    Useful to pretrain on some classes and transfer to the others (e.g. Fashion-MNIST 0-4 and 5-9).

    Raises:
        ValueError: For fewer than two classes, repeated classes or labels the dataset lacks.
    """
    if classes is None:
        return dataset
    classes = [int(c) for c in classes]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValueError(f"--classes needs at least two different labels, got {classes}.")
    outside = [c for c in classes if not 0 <= c < dataset.num_classes]
    if outside:
        raise ValueError(
            f"--classes {outside} are not labels of {dataset.name} (0..{dataset.num_classes - 1}: "
            f"{', '.join(dataset.class_names)})."
        )
    relabel = np.full(dataset.num_classes, -1, dtype=np.int64)
    relabel[classes] = np.arange(len(classes))

    def keep(x, y):
        if x is None:
            return None, None
        mask = relabel[y] >= 0
        return x[mask], relabel[y[mask]]

    x_train, y_train = keep(dataset.x_train, dataset.y_train)
    x_test, y_test = keep(dataset.x_test, dataset.y_test)
    return Dataset(
        dataset.name,
        x_train,
        y_train,
        x_test,
        y_test,
        tuple(dataset.class_names[c] for c in classes),
        f"{dataset.source} (classes {classes})",
        None if dataset.original_sizes is None else dataset.original_sizes[relabel[dataset.y_train] >= 0],
    )


def _catalogue_fact(name: str, fact: str) -> Optional[bool]:
    if name.startswith("tfds:"):
        name = next((k for k, e in CATALOGUE.items() if e.get("tfds_name") == name[5:]), name)
    entry = catalogue_entry(name)
    return (entry[1] if entry else CATALOGUE.get(name, {})).get(fact)


def mirror_safe(name: str) -> Optional[bool]:
    """Whether a horizontal flip keeps the label for a catalogued dataset (``None``: not known)."""
    return _catalogue_fact(name, "mirror_safe")


def dark_background(name: str) -> Optional[bool]:
    """Whether a catalogued dataset's images are light objects on black (``None``: not known): a photo of a
    dark garment on white paper must be inverted before such a model sees it (``tfcourse.predict``)."""
    return _catalogue_fact(name, "dark_background")
