"""Reading the IDX format of (Fashion-)MNIST, with every defect reported as ``ValueError``.

IDX: a 4-byte magic number (two zero bytes, a type code, the number of dimensions), one
big-endian uint32 per dimension, then the data. ``.gz`` files are decompressed on the fly.
Only unsigned bytes (type 0x08) are accepted: that is what every image set in the format uses.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import Dict, Tuple

import numpy as np

UBYTE = 0x08

# The standard file stems, as published and as Debian's dataset-fashion-mnist ships them.
STANDARD_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: str) -> bytes:
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rb") as handle:
                return handle.read()
        with open(path, "rb") as handle:
            return handle.read()
    except (EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"IDX file {path} is corrupt or truncated ({error}). "
            "Download or reinstall it (Debian: apt-get install --reinstall dataset-fashion-mnist)."
        ) from error


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file.

    Args:
        path: Path of a ``.gz`` or uncompressed IDX file.

    Returns:
        A uint8 array with the shape the file declares.

    Raises:
        ValueError: If the file is empty, truncated, has a bad magic number, a data type
            other than unsigned bytes, or a size that does not match its header.
    """
    raw = _read_bytes(path)
    if len(raw) == 0:
        raise ValueError(f"IDX file {path} is empty. Download or reinstall it.")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(
            f"{path} is not an IDX file (bad magic number {raw[:4].hex()}); expected the (Fashion-)MNIST IDX format."
        )
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code != UBYTE:
        raise ValueError(
            f"IDX file {path} holds data type 0x{dtype_code:02x}; only unsigned bytes (0x08) are supported."
        )
    if ndim == 0:
        raise ValueError(f"IDX file {path} declares zero dimensions.")
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise ValueError(f"IDX file {path} is truncated inside its header. Download it again.")
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header_size
    if actual != expected:
        raise ValueError(
            f"IDX file {path} is truncated or padded: its header declares shape {shape} "
            f"({expected} bytes of data) but it holds {actual}. Download it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(shape)


def find_idx_files(directory: str) -> Dict[str, str]:
    """Maps each standard IDX role to its path in ``directory`` (``.gz`` preferred).

    Returns:
        A dict with the roles present; missing roles are absent.
    """
    found = {}
    for role, stem in STANDARD_FILES.items():
        for candidate in (stem + ".gz", stem):
            path = os.path.join(directory, candidate)
            if os.path.isfile(path):
                found[role] = path
                break
    return found


def load_idx_folder(directory: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loads the four standard IDX files of a folder.

    Returns:
        ``(x_train, y_train, x_test, y_test)``; images as (N, H, W) uint8, labels as (N,).

    Raises:
        ValueError: If a file is missing or defective, or images and labels disagree.
    """
    found = find_idx_files(directory)
    missing = [STANDARD_FILES[role] + ".gz" for role in STANDARD_FILES if role not in found]
    if missing:
        raise ValueError(f"IDX folder {directory} lacks {', '.join(missing)}.")
    arrays = {role: read_idx(path) for role, path in found.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3:
            raise ValueError(f"{found[part + '_images']} must hold images of shape (N, H, W), not {images.shape}.")
        if labels.ndim != 1:
            raise ValueError(f"{found[part + '_labels']} must hold labels of shape (N,), not {labels.shape}.")
        if len(images) != len(labels):
            raise ValueError(
                f"{part} images and labels disagree in {directory}: {len(images)} images, "
                f"{len(labels)} labels. One of the files is from another dataset or damaged."
            )
    return arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"]
