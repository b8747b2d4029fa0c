"""Checkpoints in the course's naming: ``<epoch>_<activation>_weights.npz`` (``W1 .. WL``),
``<epoch>_<activation>_biases.npz`` (``b1 .. bL``) and, for a network with batch norm,
``<epoch>_<activation>_batchnorm.npz`` (``gamma1, beta1, moving_mean1, moving_var1, ...``).

Reading uses ``np.load(allow_pickle=False)``: a checkpoint is plain numbers and cannot run code
when opened. Every file is written atomically and the weights file last, so a weights file on disk
means its set is complete. ``load`` refuses a missing, truncated or pickle-holding file and arrays
whose shapes do not chain into one network, naming the file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import os
import re
import zipfile
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfcourse.numpy_nn.layers import ACTIVATIONS
from tfcourse.rundir import write_npz

NAME = re.compile(r"^(?P<epoch>\d+)_(?P<activation>[a-z]+)_weights\.npz$")
BN_KEYS = ("gamma", "beta", "moving_mean", "moving_var")


def paths(directory: str, epoch: int, activation: str) -> Dict[str, str]:
    """The checkpoint files of one epoch and activation."""
    stem = os.path.join(directory, f"{epoch}_{activation}")
    return {kind: f"{stem}_{kind}.npz" for kind in ("weights", "biases", "batchnorm")}


def save(directory: str, epoch: int, activation: str, coefs, intercepts, batch_norms=()) -> Tuple[str, str]:
    """Writes one checkpoint (weights last); returns ``(weights_path, biases_path)``."""
    files = paths(directory, epoch, activation)
    os.makedirs(directory, exist_ok=True)
    if batch_norms:
        write_npz(
            files["batchnorm"],
            **{f"{key}{i + 1}": bn.state[key] for i, bn in enumerate(batch_norms) for key in BN_KEYS},
        )
    write_npz(files["biases"], **{f"b{i + 1}": b for i, b in enumerate(intercepts)})
    write_npz(files["weights"], **{f"W{i + 1}": w for i, w in enumerate(coefs)})
    return files["weights"], files["biases"]


@dataclasses.dataclass
class State:
    activation: str
    coefs: List[np.ndarray]
    intercepts: List[np.ndarray]
    batch_norms: List[Dict[str, np.ndarray]]


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as handle:
        sample = handle.read(4096)
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in sample


def _read(path: str, what: str) -> Dict[str, np.ndarray]:
    """Every array of an ``.npz``, read without unpickling anything."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: {what} file not found; pass the checkpoint's files (see NumpyMLP.save).")
    with open(path, "rb") as handle:
        head = handle.read(6)
    # np.load takes whatever is neither a zip nor a .npy for a pickle, so say what the file is first
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY", b"\x80")):
        kind = "an empty file" if not head else "text" if _looks_like_text(path) else "not a zip archive"
        raise ValueError(
            f"{path}: the {what} file is {kind}, not a NumPy .npz archive; pass the files NumpyMLP.save wrote."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise ValueError(
                    f"{path}: not an .npz archive of named arrays (a bare .npy?); save with NumpyMLP.save."
                )
            arrays = {name: archive[name] for name in archive.files}
    except ValueError as error:
        if "allow_pickle" in str(error) or "pickle" in str(error).lower():
            raise ValueError(
                f"{path}: the {what} file holds pickled Python objects, which could run code when loaded; "
                "refused. A checkpoint holds plain numeric arrays only: write it with NumpyMLP.save."
            ) from None
        if str(error).startswith(path):
            raise
        raise ValueError(f"{path}: cannot read the {what} file ({error}); it is not a NumPy .npz archive.") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as error:
        raise ValueError(
            f"{path}: the {what} file is truncated or corrupt ({type(error).__name__}: {error}); "
            "use another checkpoint or train again."
        ) from None
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise ValueError(
                f"{path}: array {name!r} has dtype {array.dtype}; a checkpoint holds floating-point arrays."
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{path}: array {name!r} holds NaN or infinite values; this checkpoint is unusable.")
    return arrays


def _numbered(arrays: Dict[str, np.ndarray], prefix: str, path: str) -> List[np.ndarray]:
    """``prefix1 .. prefixN`` in order; refuses gaps and stray names."""
    count = len(arrays)
    expected = [f"{prefix}{i + 1}" for i in range(count)]
    if sorted(arrays) != sorted(expected):
        raise ValueError(
            f"{path}: expected arrays {', '.join(expected) or prefix + '1'}; found {', '.join(sorted(arrays)) or 'none'}."
        )
    return [arrays[name] for name in expected]


def load(weights_path: str, biases_path: Optional[str] = None, activation: Optional[str] = None) -> State:
    """Reads and checks one checkpoint (see the module's docstring).

    Raises:
        ValueError: Naming the file and what is wrong.
    """
    match = NAME.match(os.path.basename(weights_path))
    if activation is None:
        if not match:
            raise ValueError(
                f"{weights_path}: cannot tell the activation from the name (expected <epoch>_<activation>_weights.npz); "
                "pass activation=."
            )
        activation = match["activation"]
    if activation not in ACTIVATIONS:
        raise ValueError(f"{weights_path}: unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}.")
    stem = weights_path[: -len("_weights.npz")] if weights_path.endswith("_weights.npz") else None
    if biases_path is None:
        if stem is None:
            raise ValueError(f"{weights_path}: pass biases_path= (the name does not end in _weights.npz).")
        biases_path = f"{stem}_biases.npz"
    coefs = _numbered(_read(weights_path, "weights"), "W", weights_path)
    intercepts = _numbered(_read(biases_path, "biases"), "b", biases_path)
    _check_chain(coefs, intercepts, weights_path, biases_path)
    batch_norms = []
    bn_path = f"{stem}_batchnorm.npz" if stem else None
    if bn_path and os.path.exists(bn_path):
        arrays = _read(bn_path, "batch-norm")
        widths = [w.shape[1] for w in coefs[:-1]]
        for i, width in enumerate(widths):
            layer = {}
            for key in BN_KEYS:
                value = arrays.get(f"{key}{i + 1}")
                if value is None or value.shape != (width,):
                    raise ValueError(
                        f"{bn_path}: expected {key}{i + 1} of shape ({width},) for hidden layer {i + 1}; "
                        f"found {None if value is None else value.shape}."
                    )
                layer[key] = value
            batch_norms.append(layer)
        if len(arrays) != len(widths) * len(BN_KEYS):
            raise ValueError(
                f"{bn_path}: holds {len(arrays)} arrays, expected {len(widths) * len(BN_KEYS)} ({len(widths)} hidden layers)."
            )
    return State(activation, coefs, intercepts, batch_norms)


def _check_chain(coefs: Sequence[np.ndarray], intercepts: Sequence[np.ndarray], weights_path: str, biases_path: str):
    if not coefs:
        raise ValueError(f"{weights_path}: holds no weight matrices.")
    if len(intercepts) != len(coefs):
        raise ValueError(
            f"{biases_path}: holds {len(intercepts)} bias vectors for {len(coefs)} weight matrices in {weights_path}."
        )
    for i, w in enumerate(coefs):
        if w.ndim != 2:
            raise ValueError(
                f"{weights_path}: W{i + 1} has shape {w.shape}; each weight matrix is 2-D (fan_in, fan_out)."
            )
        if i and w.shape[0] != coefs[i - 1].shape[1]:
            raise ValueError(
                f"{weights_path}: W{i + 1} has shape {w.shape} but W{i} gives {coefs[i - 1].shape[1]} units; "
                "the layers do not chain."
            )
        if intercepts[i].shape != (w.shape[1],):
            raise ValueError(
                f"{biases_path}: b{i + 1} has shape {intercepts[i].shape}, expected ({w.shape[1]},) to match W{i + 1} {w.shape}."
            )
    if coefs[-1].shape[1] < 2:
        raise ValueError(
            f"{weights_path}: the output layer has {coefs[-1].shape[1]} unit; a classifier needs at least 2."
        )
