"""Datasets by name, seeded stratified splits, and tf.data pipelines.

The flow is ``load_dataset`` (a source -> validated uint8 arrays + class names),
``make_splits`` (arrays -> disjoint train/val/test index sets under a protocol), and
``make_pipelines`` (splits -> cached, shuffled, batched, prefetched ``tf.data.Dataset``s).
Every source yields images as uint8 (N, H, W, C): scaling to [0, 1] (and optional
standardisation) happens per batch in the pipeline, so the in-memory cache stays 4x smaller
than float32 and the exported serving signature can reproduce it exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfcourse.config import NORMALIZATIONS, SPLIT_PROTOCOLS, DataConfig
from tfcourse.data import idx

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


# ----------------------------------------------------------------------------- validation


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


def _make_dataset(name, x_train, y_train, x_test, y_test, class_names, source) -> Dataset:
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
    return _make_dataset(name, x, y, x_test, y_test, class_names, name)


# ----------------------------------------------------------------------------- sources


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): offline and tiny."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return _make_dataset("digits", images, bunch.target, None, None, DIGIT_CLASSES, "scikit-learn load_digits")


def load_idx_dataset(
    directory: str, class_names: Optional[Sequence[str]] = None, name: Optional[str] = None
) -> Dataset:
    """A folder holding the four standard IDX files (``train-images-idx3-ubyte.gz`` ...)."""
    x_train, y_train, x_test, y_test = idx.load_idx_folder(directory)
    if class_names is None:
        where = f"IDX files in {directory}"
        labels = np.concatenate([np.asarray(y_train, dtype=np.int64), np.asarray(y_test, dtype=np.int64)])
        if len(labels) == 0:
            raise ValueError(f"{where}: the label files hold no labels.")
        check_label_coverage(labels, int(labels.max()) + 1, where)
        check_inferred_classes(labels, where)
        class_names = [str(i) for i in range(int(labels.max()) + 1)]
    return _make_dataset(name or directory, x_train, y_train, x_test, y_test, class_names, f"IDX files in {directory}")


def _list_image_folder(directory: str) -> Tuple[List[str], List[Tuple[str, int]]]:
    class_names = sorted(
        entry
        for entry in os.listdir(directory)
        if os.path.isdir(os.path.join(directory, entry)) and not entry.startswith(".")
    )
    files = []
    for label, class_name in enumerate(class_names):
        for root, dirs, names in sorted(os.walk(os.path.join(directory, class_name))):
            dirs.sort()
            for file_name in sorted(names):
                if file_name.lower().endswith(IMAGE_EXTENSIONS):
                    files.append((os.path.join(root, file_name), label))
    return class_names, files


def load_image_folder(directory: str, image_size: Optional[Tuple[int, int]] = None) -> Dataset:
    """A folder with one sub-folder of images per class (``image_dataset_from_directory`` layout).

    Class names are the sorted sub-folder names. Images are decoded with Pillow and
    resized (bilinear) to ``image_size``, by default the size of the first image; the
    colour mode (grayscale or RGB) also follows the first image.

    Raises:
        ValueError: If there are no class folders or no images, or an image is unreadable.
    """
    from PIL import Image, UnidentifiedImageError

    class_names, files = _list_image_folder(directory)
    if not class_names:
        raise ValueError(
            f"{directory} has no class sub-folders. Expected one sub-folder per class, "
            "each holding that class's images (.png, .jpg, .bmp, .gif)."
        )
    if not files:
        raise ValueError(f"{directory}: no images (.png, .jpg, .jpeg, .bmp, .gif) in its class folders {class_names}.")
    images, labels, sizes, mode = [], [], [], None
    for path, label in files:
        try:
            with Image.open(path) as image:
                if mode is None:
                    mode = "L" if image.mode in ("L", "1", "I;16", "I", "F") else "RGB"
                    if image_size is None:
                        image_size = (image.height, image.width)
                image = image.convert(mode)
                sizes.append((image.height, image.width))
                if (image.height, image.width) != tuple(image_size):
                    image = image.resize((image_size[1], image_size[0]), Image.BILINEAR)
                images.append(np.asarray(image, dtype=np.uint8))
        except Image.DecompressionBombError as error:
            raise ValueError(
                f"Refusing image {path}: {error} Such an image (a decompression bomb, or a huge "
                "scan) would exhaust memory; delete it or shrink it."
            ) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"Cannot read image {path}: {error}. Delete or replace the file.") from None
        labels.append(label)
    check_label_coverage(np.asarray(labels), len(class_names), f"image folder {directory} (classes {class_names})")
    dataset = _make_dataset(
        directory, np.stack(images), np.asarray(labels), None, None, class_names, f"image folder {directory}"
    )
    return dataclasses.replace(dataset, original_sizes=np.asarray(sizes, dtype=np.int64))


def load_tfds(name: str, data_dir: Optional[str] = None, download: bool = True) -> Dataset:
    """Any TensorFlow Datasets image-classification dataset via ``tfds.load``.

    Uses the official ``train`` split and, when present, ``test``.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        import difflib

        close = difflib.get_close_matches(name, tfds.list_builders(), n=5, cutoff=0.6)
        raise ValueError(
            f"TensorFlow Datasets has no dataset {name!r}"
            + (f"; did you mean {', '.join('tfds:' + c for c in close)}?" if close else ".")
            + " The catalogue: https://www.tensorflow.org/datasets/catalog (or tfds.list_builders()); "
            "write the name after tfds:, e.g. --dataset tfds:cifar10."
        ) from None
    if not download and not _tfds_is_prepared(builder):
        raise ValueError(f"tfds dataset {name!r} is not prepared in {builder.data_dir} and downloads are off.")
    builder.download_and_prepare()
    info = builder.info
    image_shape = getattr(info.features["image"], "shape", None) if "image" in info.features else None
    if image_shape is None or None in image_shape:
        raise ValueError(
            f"tfds dataset {name!r} has no fixed image shape ({image_shape}); tfcourse needs same-size images. "
            "Export it to a folder of class sub-folders and pass that folder with --image-size."
        )
    splits = info.splits.keys()
    label_feature = info.features["label"]
    class_names = getattr(label_feature, "names", None) or [str(i) for i in range(label_feature.num_classes)]

    def as_arrays(split):
        dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False).batch(4096)
        xs, ys = [], []
        for images, labels in tfds.as_numpy(dataset):
            xs.append(images)
            ys.append(labels)
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = as_arrays("train")
    # Under tfds.testing.mock_data the split metadata is empty; every split can be read then.
    x_test, y_test = as_arrays("test") if ("test" in splits or not splits) else (None, None)
    return _make_dataset(name, x_train, y_train, x_test, y_test, class_names, f"tfds.load({name!r})")


def _tfds_is_prepared(builder) -> bool:
    try:
        return bool(builder.is_prepared())
    except Exception:  # noqa: BLE001 - any failure to inspect means "not there"
        return False


def _catalogue_entry(name: str) -> Optional[Tuple[str, dict]]:
    for key, entry in CATALOGUE.items():
        if name == key or name in entry.get("aliases", ()):
            return key, entry
    return None


def _load_catalogued(key: str, entry: dict, data_dir: Optional[str], download: bool) -> Dataset:
    """Resolution order: data_dir, $TFCOURSE_DATA_DIR, the Debian folder, tfds.load."""
    tried = []
    if data_dir is not None:
        if idx.find_idx_files(data_dir).keys() == idx.STANDARD_FILES.keys():
            return load_idx_dataset(data_dir, entry["class_names"], key)
        raise ValueError(
            f"--data-dir {data_dir} does not hold the four IDX files of {key} "
            f"({', '.join(stem + '.gz' for stem in idx.STANDARD_FILES.values())}). "
            "Point it at the folder that holds them, or leave it out to use the default sources."
        )
    candidates = []
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        candidates += [(f"${DATA_DIR_ENV}", env_dir)]
        candidates += [(f"${DATA_DIR_ENV}", os.path.join(env_dir, alias)) for alias in entry["aliases"]]
    if entry.get("system_dir"):
        candidates.append(("Debian package folder", entry["system_dir"]))
    for label, directory in candidates:
        if idx.find_idx_files(directory).keys() == idx.STANDARD_FILES.keys():
            return load_idx_dataset(directory, entry["class_names"], key)
        tried.append(f"{label}: {directory} (no IDX files there)")
    if download:
        print(
            f"tfcourse: no local copy of {key}; trying tfds.load({entry['tfds_name']!r}) (needs network)...", flush=True
        )
    try:
        return load_tfds(entry["tfds_name"], download=download)
    except Exception as error:  # noqa: BLE001 - any tfds failure joins the list of what was tried
        tried.append(f"tfds.load({entry['tfds_name']!r}): {type(error).__name__}: {str(error).splitlines()[0][:200]}")
    fixes = []
    if entry.get("apt_package"):
        fixes.append(f"install the Debian package: sudo apt-get install -y {entry['apt_package']}")
    fixes.append(f"pass --data-dir (or set {DATA_DIR_ENV}) to a folder holding the four IDX .gz files")
    fixes.append("or run offline on scikit-learn's bundled digits: --dataset digits")
    raise ValueError(
        f"Could not load dataset {key!r}. Tried:\n  - "
        + "\n  - ".join(tried)
        + "\nTo fix, either:\n  - "
        + "\n  - ".join(fixes)
    )


def load_dataset(name: str, data_dir: Optional[str] = None, image_size=None, download: bool = True) -> Dataset:
    """Loads a dataset by name or path.

    Args:
        name: ``fashion_mnist``, ``mnist``, ``digits``, ``tfds:NAME``, or a folder (of the
            four IDX files, or of class sub-folders of images).
        data_dir: Folder holding the IDX files of a catalogued dataset (tried first).
        image_size: (height, width) for image folders.
        download: Allow ``tfds.load`` to download when no local copy exists.

    Returns:
        A validated ``Dataset``.

    Raises:
        ValueError: For an unknown name, a source that cannot be found (listing what was
            tried and how to fix it), or defective data.
    """
    if name == "digits":
        return load_digits()
    catalogued = _catalogue_entry(name)
    if catalogued is not None:
        return _load_catalogued(*catalogued, data_dir=data_dir, download=download)
    if name.startswith("tfds:"):
        return load_tfds(name[len("tfds:") :], data_dir=data_dir, download=download)
    if os.path.isdir(name):
        if idx.find_idx_files(name):
            return load_idx_dataset(name)
        return load_image_folder(name, image_size)
    if os.path.isfile(name):
        raise ValueError(
            f"--dataset {name} is a file; it takes a folder (the four IDX files, or one sub-folder of "
            "images per class), a catalogued name or tfds:NAME. "
            + (
                f"For a table, pass --dataset csv:{name} --target COLUMN."
                if name.lower().endswith(".csv")
                else "Put the file's data into such a folder."
            )
        )
    if os.sep in name or name.startswith("."):
        raise ValueError(f"Dataset folder {name} does not exist. Check the path.")
    raise ValueError(
        f"Unknown dataset {name!r}. Use one of {', '.join(sorted(CATALOGUE))}, 'tfds:NAME' for a "
        "TensorFlow Datasets dataset, or the path of a folder (IDX files, or one sub-folder of images per class)."
    )


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


# ----------------------------------------------------------------------------- splits


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


# ----------------------------------------------------------------------------- pipelines


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-channel affine map applied after scaling to [0, 1]: ``(x / 255 - mean) / std``."""

    mode: str
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @classmethod
    def fit(cls, mode: str, x_train: np.ndarray) -> "Normalization":
        if mode not in NORMALIZATIONS:
            raise ValueError(f"Unknown normalization {mode!r}; use one of {', '.join(NORMALIZATIONS)}.")
        channels = x_train.shape[-1]
        if mode == "unit":
            return cls(mode, (0.0,) * channels, (1.0,) * channels)
        scaled = x_train.reshape(-1, channels).astype(np.float64) / 255.0
        std = np.maximum(scaled.std(axis=0), 1e-6)  # a constant channel must not divide by zero
        return cls(mode, tuple(float(v) for v in scaled.mean(axis=0)), tuple(float(v) for v in std))

    @classmethod
    def from_dict(cls, saved: Dict[str, Any]) -> "Normalization":
        """The inverse of ``dataclasses.asdict`` (as written to config.json and an export's metadata)."""
        return cls(saved["mode"], tuple(saved["mean"]), tuple(saved["std"]))

    def input_range(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """The per-channel (low, high) of model inputs for raw pixels 0..255."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return tuple((0.0 - mean) / std), tuple((1.0 - mean) / std)

    def to_pixels(self, model_inputs) -> np.ndarray:
        """Model inputs back to displayable uint8 pixels (the inverse of ``apply``, clipped)."""
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return np.clip((np.asarray(model_inputs) * std + mean) * 255.0, 0, 255).round().astype(np.uint8)

    def apply(self, images):
        """Maps raw pixel values (any dtype, 0..255) to model inputs, in TensorFlow."""
        import tensorflow as tf

        images = tf.cast(images, tf.float32) / 255.0
        if self.mode == "unit":
            return images
        return (images - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)


@dataclasses.dataclass
class Pipelines:
    """What the model side needs: three datasets plus shapes, class names and preprocessing."""

    train: "object"
    val: "object"
    test: "object"
    input_shape: Tuple[int, int, int]
    class_names: Tuple[str, ...]
    normalization: Normalization
    sizes: Dict[str, int]
    make_train: Optional[Callable[[int], "object"]] = None  # batch size -> a train pipeline (tuning batch sizes)
    batch_size: Optional[int] = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# Augmentations by name: (Keras layer factory (seed -> layer), what it does), as ``tfcourse.eda`` previews
# them. ``--augment`` applies PIPELINE_AUGMENTATIONS, in training through ``augment_batch`` (the same flip,
# and the shift in whole pixels); the others are not a training flag (yet).
AUGMENTATIONS = {
    "flip": (lambda keras, seed: keras.layers.RandomFlip("horizontal", seed=seed), "horizontal flip, half the images"),
    "shift": (
        lambda keras, seed: keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        "shift up to 10% of height and width, empty border filled with 0",
    ),
    "rotation": (
        lambda keras, seed: keras.layers.RandomRotation(15 / 360, fill_mode="constant", seed=seed),
        "rotation up to 15 degrees either way",
    ),
    "zoom": (
        lambda keras, seed: keras.layers.RandomZoom(0.15, fill_mode="constant", seed=seed),
        "zoom in or out up to 15%",
    ),
    "contrast": (
        lambda keras, seed: keras.layers.RandomContrast(0.4, value_range=(0, 1), seed=seed),
        "contrast scaled by 0.6..1.4",
    ),
    "noise": (lambda keras, seed: keras.layers.GaussianNoise(0.08, seed=seed), "Gaussian noise, std 0.08 of the range"),
    "erasing": (
        lambda keras, seed: keras.layers.RandomErasing(factor=1.0, scale=(0.05, 0.2), value_range=(0, 1), seed=seed),
        "a random rectangle (5-20% of the image) erased",
    ),
}
PIPELINE_AUGMENTATIONS = ("flip", "shift")


def augmentation_layer(name: str, seed: int):
    """The Keras preprocessing layer of augmentation ``name`` (inputs in [0, 1], whole batches)."""
    import keras

    if name not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {name!r}; use one of {', '.join(AUGMENTATIONS)}.")
    return AUGMENTATIONS[name][0](keras, seed)


def _catalogue_fact(name: str, fact: str) -> Optional[bool]:
    if name.startswith("tfds:"):
        name = next((k for k, e in CATALOGUE.items() if e.get("tfds_name") == name[5:]), name)
    entry = _catalogue_entry(name)
    return (entry[1] if entry else CATALOGUE.get(name, {})).get(fact)


def mirror_safe(name: str) -> Optional[bool]:
    """Whether a horizontal flip keeps the label for a catalogued dataset (``None``: not known)."""
    return _catalogue_fact(name, "mirror_safe")


def dark_background(name: str) -> Optional[bool]:
    """Whether a catalogued dataset's images are light objects on black (``None``: not known): a photo of a
    dark garment on white paper must be inverted before such a model sees it (``tfcourse.predict``)."""
    return _catalogue_fact(name, "dark_background")


SHIFT_FRACTION = 0.1  # --augment shifts by up to this share of the side, in whole pixels (2 on 28x28)


def augment_batch(images, batch_seed, flip: bool = True, shift_fraction: float = SHIFT_FRACTION):
    """``--augment`` on a batch of model inputs (B, H, W, C), in plain TensorFlow ops with stateless random
    numbers: a horizontal flip of half the images (``flip``), then a shift of each image by a whole number
    of pixels, up to ``shift_fraction * side`` (rounded down, at least 1) each way, the border filled with 0.

    Everything is batched (a coin per image, then two gathers do every image's own shift at once) and
    stateless (``batch_seed``, shape (2,), draws it all: the same seed gives the same augmentation, in
    any order of the parallel map). Whole-pixel shifts keep the image sharp (no interpolation) and are
    the 2-pixel translations of the fast recipe's PyTorch reference on 28x28 images.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(tf.cast(batch_seed, tf.int64), 3)
    if flip:
        coin = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0]) < 0.5
        images = tf.where(coin, tf.reverse(images, axis=[2]), images)
    pad_y, pad_x = max(1, int(shift_fraction * height)), max(1, int(shift_fraction * width))
    padded = tf.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
    top = tf.random.stateless_uniform([batch], seeds[1], 0, 2 * pad_y + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch], seeds[2], 0, 2 * pad_x + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(height)[None, :]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    columns = left[:, None] + tf.range(width)[None, :]
    return tf.gather(images, columns, axis=2, batch_dims=1)


PREFETCH_BATCHES = 2  # batches ready ahead of the training step (a fixed number: see pipeline_options)


def pipeline_options():
    """The ``tf.data.Options`` of every image pipeline: the autotuner off.

    tf.data's autotuner re-optimises its model of the pipeline on a period that doubles (10 ms, 20 ms,
    ... 2.56 s, ...); on 2 cores it stalled training: passes took whole multiples of 2.56 s and the
    process used about 1.2 of its 2 cores. The recipe's vgg trained at 625 images/s in float32 with it
    and 957 without it (medians, ``benchmarks/results/peer_throughput.md``). Without it, the map keeps
    its parallel calls and ``PREFETCH_BATCHES`` batches wait ready; the map is a few percent of a
    training step here.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def make_pipeline(
    x: np.ndarray,
    y: np.ndarray,
    normalization: Normalization,
    batch_size: int,
    training: bool = False,
    augment: bool = False,
    seed: int = 42,
    flip: bool = True,
):
    """One tf.data pipeline: cache -> (shuffle) -> batch -> scale (+ augment) -> prefetch.

    The uint8 arrays are cached (they fit in memory), shuffling happens before batching
    with a fixed seed (a different but repeatable order every epoch), and the per-batch
    map is vectorised. Augmentation is applied only when ``training`` is true; ``flip=False`` leaves
    out the mirror flip (datasets whose mirror images change class, e.g. digits).
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).cache()
    if training:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if training and augment:
        # one stateless seed per batch, a new stream every epoch, the same streams for the same seed
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

        def preprocess_augmented(batch, batch_seed):
            images, labels = batch
            return augment_batch(normalization.apply(images), batch_seed, flip), labels

        dataset = tf.data.Dataset.zip((dataset, seeds)).map(preprocess_augmented, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        dataset = dataset.map(
            lambda images, labels: (normalization.apply(images), labels), num_parallel_calls=tf.data.AUTOTUNE
        )
    return dataset.prefetch(PREFETCH_BATCHES).with_options(pipeline_options())


def make_pipelines(dataset: Dataset, splits: Splits, config: DataConfig, seed: int) -> Pipelines:
    """Builds train/val/test pipelines from a dataset and its splits."""
    x, y = dataset.pooled()
    x_train, y_train = x[splits.train], y[splits.train]
    normalization = Normalization.fit(config.normalization, x_train)
    common = dict(normalization=normalization, batch_size=config.batch_size, seed=seed)

    def make_train(batch_size: int):
        return make_pipeline(
            x_train,
            y_train,
            normalization,
            batch_size,
            training=True,
            augment=config.augment,
            seed=seed,
            flip=mirror_safe(config.dataset) is not False,  # unknown data: flipped, as --augment says
        )

    return Pipelines(
        train=make_train(config.batch_size),
        val=make_pipeline(x[splits.val], y[splits.val], **common),
        test=make_pipeline(x[splits.test], y[splits.test], **common),
        input_shape=dataset.input_shape,
        class_names=dataset.class_names,
        normalization=normalization,
        sizes=splits.sizes(),
        make_train=make_train,
        batch_size=config.batch_size,
    )


def cv_folds(dataset: Dataset, splits: Splits, config: DataConfig, seed: int, folds: int) -> List[Pipelines]:
    """``folds``-fold cross-validation of the training split: stratified and seeded (scikit-learn's
    ``StratifiedKFold``, shuffled with ``seed``); fold ``i``'s ``Pipelines`` train on the other folds
    and validate on fold ``i`` (normalisation fitted on the training folds only). The validation and
    test splits are left out.

    Raises:
        ValueError: If ``folds`` is below 2, or above the training examples of the smallest class.
    """
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError(f"--cv {folds}: cross-validation needs at least 2 folds.")
    _, labels = dataset.pooled()
    train_labels = labels[splits.train]
    counts = np.bincount(train_labels, minlength=dataset.num_classes)
    smallest = int(counts[counts > 0].min())
    if folds > smallest:
        raise ValueError(
            f"--cv {folds}: the smallest class has only {smallest} training examples, so a stratified fold "
            f"cannot hold one of each; use at most --cv {smallest}."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        make_pipelines(
            dataset,
            dataclasses.replace(splits, train=splits.train[fit], val=splits.train[held], test=splits.test[:0]),
            config,
            seed,
        )
        for fit, held in splitter.split(np.zeros((len(train_labels), 1)), train_labels)
    ]


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


def load_pipelines(config: DataConfig, seed: int, download: bool = True, train_on: str = "train"):
    """``load_splits`` + ``make_pipelines`` for one ``DataConfig``.

    Args:
        train_on: ``train``, or ``train+val`` to make the training pipeline from both
            splits (the validation pipeline is then empty).

    Returns:
        ``(dataset, splits, pipelines)``; ``splits`` are the protocol's own, before any merge.
    """
    dataset, splits = load_splits(config, seed, download)
    fit_splits = (
        splits
        if train_on == "train"
        else dataclasses.replace(splits, train=np.sort(np.concatenate([splits.train, splits.val])), val=splits.val[:0])
    )
    return dataset, splits, make_pipelines(dataset, fit_splits, config, seed)
