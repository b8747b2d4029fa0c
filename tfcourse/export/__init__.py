"""SavedModel export in the TensorFlow Serving layout, ``<root>/<model>/<version>/``.

The export wraps the trained Keras model with its input preprocessing, so a client sends raw
pixels and gets class probabilities back:

- ``serving_default``: ``images`` float32 (None, H, W, C), raw pixel values 0..255
  (JSON clients of TF Serving send numbers; ints and floats both convert).
- ``serving_uint8``: the same for uint8 images.

Both return ``probabilities`` (None, num_classes), ``class_ids`` (None,) and ``classes``
(None,) class-name strings. Class names are also an asset (``assets/class_names.txt``) and,
with the preprocessing and input shape, in ``assets.extra/tfcourse.json``.
The version folder is written under a hidden temporary name (TF Serving ignores names that
are not integers) and renamed when complete, so a server never sees half an export.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from typing import Any, Callable, Dict, Optional, Sequence

from tfcourse import rundir

SIGNATURE_FLOAT = "serving_default"
SIGNATURE_UINT8 = "serving_uint8"
METADATA_FILE = os.path.join("assets.extra", "tfcourse.json")
STAGING_PATTERN = re.compile(r"^\.tmp-(?P<pid>\d+)-.*$")  # mkdtemp's names for an export being written


def next_version(model_dir: str) -> int:
    """The next free integer version under ``model_dir`` (1 for an empty or new folder)."""
    if not os.path.isdir(model_dir):
        return 1
    versions = [int(name) for name in os.listdir(model_dir) if re.fullmatch(r"\d+", name)]
    return max(versions, default=0) + 1


def _serving_module(model, normalization, class_names: Sequence[str]):
    import tensorflow as tf

    class_table = tf.constant(list(class_names))

    def serve(images):
        logits = model(normalization.apply(images), training=False)
        class_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "class_ids": class_ids,
            "classes": tf.gather(class_table, class_ids),
        }

    return serve


def _publish(staging: str, model_dir: str, version: Optional[int], write_metadata) -> str:
    """Renames a complete staging folder to the next free integer version (or ``version``).

    Two exports racing for one version: ``rename`` onto a folder that another process has
    just filled fails, and the loser takes the next free number instead of failing.
    """
    for _ in range(100):
        number = next_version(model_dir) if version is None else int(version)
        final_dir = os.path.join(model_dir, str(number))
        if os.path.exists(final_dir):
            if version is not None:
                raise ValueError(f"Export version {final_dir} exists already; choose another version or leave it out.")
            continue
        write_metadata(number)
        try:
            os.rename(staging, final_dir)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or version is not None:
                raise
            continue  # another export took this number between the check and the rename
        return final_dir
    raise RuntimeError(f"Could not find a free version under {model_dir} after 100 tries.")


def export_saved_model(
    model,
    export_root: str,
    model_name: str,
    class_names: Sequence[str],
    normalization,
    metadata: Optional[Dict[str, Any]] = None,
    version: Optional[int] = None,
    check: Optional[Callable[[str], Any]] = None,
) -> str:
    """Writes a TF Serving SavedModel and returns its version folder.

    Args:
        model: A trained Keras model with logits output and a fixed input shape.
        export_root: Root folder (e.g. ``saved_models``).
        model_name: Sub-folder name (the model's name in TF Serving).
        class_names: One name per output logit.
        normalization: The ``tfcourse.data.Normalization`` the model was trained with.
        metadata: Extra JSON-ready facts stored in ``assets.extra/tfcourse.json``.
        version: Explicit version; by default the next free one.
        check: Called with the complete export while it still has its hidden staging name
            (e.g. ``verify_export``); if it raises, the export is removed and never gets
            an integer version a model server would load.

    Raises:
        ValueError: If the model's input shape is not fully known, class names do not match
            the number of outputs, or the version already exists.
    """
    import tensorflow as tf
    from keras.export import ExportArchive

    input_shape = tuple(model.inputs[0].shape[1:])
    if any(dim is None for dim in input_shape):
        raise ValueError(f"Export needs a fixed input shape; the model takes {input_shape}.")
    if model.outputs[0].shape[-1] != len(class_names):
        raise ValueError(
            f"The model has {model.outputs[0].shape[-1]} outputs but {len(class_names)} class names were given."
        )

    model_dir = os.path.join(export_root, model_name)
    os.makedirs(model_dir, exist_ok=True)
    # never a servable version (TF Serving skips names that are not integers), only disk space
    for leftover in rundir.sweep_stale_partials(model_dir, STAGING_PATTERN):
        print(f"tfcourse: removed {leftover}, an unfinished export of a process that is gone", flush=True)
    if version is not None and os.path.exists(os.path.join(model_dir, str(int(version)))):
        raise ValueError(
            f"Export version {os.path.join(model_dir, str(int(version)))} exists already; choose "
            "another version or leave it out."
        )
    staging = tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=model_dir)
    try:
        serve = _serving_module(model, normalization, class_names)
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE_FLOAT, serve, input_signature=[tf.TensorSpec((None,) + input_shape, tf.float32, name="images")]
        )
        archive.add_endpoint(
            SIGNATURE_UINT8, serve, input_signature=[tf.TensorSpec((None,) + input_shape, tf.uint8, name="images")]
        )
        archive.write_out(staging, verbose=False)
        # assets/ is part of the SavedModel folder and travels with it; the serving
        # functions carry the names too (the ``classes`` output), so nothing reads this file at serve time.
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        with open(os.path.join(staging, "assets", "class_names.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(class_names) + "\n")
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        if check is not None:
            check(staging)

        def write_metadata(number: int) -> None:
            info = {
                "model": model_name,
                "version": number,
                "class_names": list(class_names),
                "input_shape": list(input_shape),
                "normalization": {
                    "mode": normalization.mode,
                    "mean": list(normalization.mean),
                    "std": list(normalization.std),
                },
                "signatures": {SIGNATURE_FLOAT: "images float32 0..255", SIGNATURE_UINT8: "images uint8"},
                **(metadata or {}),
            }
            with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as handle:
                json.dump(info, handle, indent=2)

        os.chmod(staging, 0o755)  # mkdtemp makes it private; a model server may run as another user
        final_dir = _publish(staging, model_dir, version, write_metadata)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final_dir


def export_checked(
    model,
    export_root: str,
    model_name: str,
    class_names: Sequence[str],
    normalization,
    images,
    metadata: Optional[Dict[str, Any]] = None,
    verify: bool = True,
):
    """``export_saved_model`` with ``verify_export`` run on the finished export before it gets its version.

    Args:
        images: uint8 images (N, H, W, C), raw pixels, for the fresh-process check.
        verify: Run the check (a few seconds: a new Python process loads TensorFlow).

    Returns:
        ``(version folder, largest probability difference or None without verify)``.
    """
    found = {}

    def check(staging: str) -> None:
        found["difference"] = verify_export(model, staging, images, normalization)

    final_dir = export_saved_model(
        model, export_root, model_name, class_names, normalization, metadata=metadata, check=check if verify else None
    )
    return final_dir, found.get("difference")


def load_class_names(export_dir: str):
    """Class names of an export, read from its ``assets/class_names.txt``."""
    with open(os.path.join(export_dir, "assets", "class_names.txt"), encoding="utf-8") as handle:
        return [line.rstrip("\n") for line in handle if line.strip()]


# Run in a separate interpreter that imports nothing but TensorFlow, as a model server would.
_FRESH_PROCESS_SCRIPT = """
import sys, numpy as np, tensorflow as tf
export_dir, inputs_path, outputs_path = sys.argv[1:4]
loaded = tf.saved_model.load(export_dir)
images = np.load(inputs_path)
result = {}
for name, dtype in (("serving_default", tf.float32), ("serving_uint8", tf.uint8)):
    outputs = loaded.signatures[name](images=tf.constant(images.astype(dtype.as_numpy_dtype)))
    result[name + "/probabilities"] = outputs["probabilities"].numpy()
    result[name + "/classes"] = outputs["classes"].numpy().astype(str)
np.savez(outputs_path, **result)
"""


def serve_in_fresh_process(export_dir: str, images) -> Dict[str, Any]:
    """Loads an export with only ``tf.saved_model.load`` in a new Python process and runs both signatures.

    Args:
        export_dir: A version folder written by ``export_saved_model``.
        images: uint8 images (N, H, W, C), raw pixels.

    Returns:
        ``{"serving_default/probabilities": ..., "serving_default/classes": ..., "serving_uint8/...": ...}``.

    Raises:
        RuntimeError: If the fresh process fails, with its error output.
    """
    import subprocess
    import sys

    import numpy as np

    with tempfile.TemporaryDirectory() as scratch:
        inputs_path = os.path.join(scratch, "images.npy")
        outputs_path = os.path.join(scratch, "outputs.npz")
        np.save(inputs_path, np.asarray(images, dtype=np.uint8))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        done = subprocess.run(
            [sys.executable, "-c", _FRESH_PROCESS_SCRIPT, export_dir, inputs_path, outputs_path],
            capture_output=True,
            text=True,
            env=env,
        )
        if done.returncode != 0:
            raise RuntimeError(f"Loading {export_dir} in a fresh process failed:\n{done.stderr[-3000:]}")
        with np.load(outputs_path) as outputs:
            return {key: outputs[key] for key in outputs.files}


def verify_export(model, export_dir: str, images, normalization, tolerance: float = 1e-4) -> float:
    """Checks that a fresh process serving ``export_dir`` predicts what ``model`` predicts.

    Args:
        model: The Keras model that was exported.
        export_dir: Its export (a version folder).
        images: uint8 images (N, H, W, C), raw pixels.
        normalization: The preprocessing the model was trained with.
        tolerance: Largest allowed difference of any class probability.

    Returns:
        The largest absolute difference of a class probability over both signatures.

    Raises:
        RuntimeError: If the fresh process fails or the predictions differ by more than ``tolerance``.
    """
    import keras
    import numpy as np

    served = serve_in_fresh_process(export_dir, images)
    expected = keras.ops.convert_to_numpy(keras.ops.softmax(model(normalization.apply(images), training=False)))
    difference = max(
        float(np.abs(served[f"{name}/probabilities"] - expected).max()) for name in (SIGNATURE_FLOAT, SIGNATURE_UINT8)
    )
    if not difference <= tolerance:  # NaN-safe: a NaN difference fails too
        raise RuntimeError(
            f"The export at {export_dir} disagrees with the trained model (max |dp| = {difference:.2e})."
        )
    return difference
