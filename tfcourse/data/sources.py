"""Where image datasets come from: IDX files (Fashion-MNIST from Debian's ``dataset-fashion-mnist``), a folder
of class sub-folders, TensorFlow Datasets, scikit-learn's digits; ``load_dataset(name)`` picks the source."""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

from tfcourse.data import idx
from tfcourse.data.catalogue import (
    CATALOGUE,
    DATA_DIR_ENV,
    DIGIT_CLASSES,
    IMAGE_EXTENSIONS,
    Dataset,
    catalogue_entry,
    check_inferred_classes,
    check_label_coverage,
    make_dataset,
)


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images): offline and tiny."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    return make_dataset("digits", images, bunch.target, None, None, DIGIT_CLASSES, "scikit-learn load_digits")


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
    return make_dataset(name or directory, x_train, y_train, x_test, y_test, class_names, f"IDX files in {directory}")


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
    dataset = make_dataset(
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
    return make_dataset(name, x_train, y_train, x_test, y_test, class_names, f"tfds.load({name!r})")


def _tfds_is_prepared(builder) -> bool:
    try:
        return bool(builder.is_prepared())
    except Exception:  # noqa: BLE001 - any failure to inspect means "not there"
        return False


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
    catalogued = catalogue_entry(name)
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
