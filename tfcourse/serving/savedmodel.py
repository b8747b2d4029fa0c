"""SavedModel export in the TensorFlow Serving layout, ``<root>/<model>/<version>/``.

The export wraps the trained Keras model with its input preprocessing, so a client sends raw
pixels and gets class probabilities back:

- ``serving_default``: ``images`` float32 (None, H, W, C), raw pixel values 0..255
  (JSON clients of TF Serving send numbers; ints and floats both convert).
- ``serving_uint8``: the same for uint8 images.

Both return ``probabilities`` (None, num_classes), ``class_ids`` (None,) and ``classes``
(None,) class-name strings. Class names are also an asset (``assets/class_names.txt``) and,
with the preprocessing and input shape, in ``assets.extra/tfcourse.json``. TF Serving's warm-up
requests, a REST example and the lines that serve and ask it are in ``assets.extra/`` too
(``serving``); ONNX and LiteRT files of the same model, on request, beside the SavedModel (``runtimes``).
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

import numpy as np

from tfcourse import rundir
from tfcourse.config import parse_export_formats
from tfcourse.evaluation import evaluate
from tfcourse.models import computes_in_float32
from tfcourse.rundir import METADATA_FILE, SIGNATURE_FLOAT, SIGNATURE_UINT8, next_version
from tfcourse.serving import fresh, runtimes, tf_serving

STAGING_PATTERN = re.compile(r"^\.tmp-(?P<pid>\d+)-.*$")  # mkdtemp's names for an export being written


def _serving_module(model, normalization, class_names: Sequence[str], tta: str = "none"):
    import tensorflow as tf

    class_table = tf.constant(list(class_names))

    def serve(images):
        probs = evaluate.probabilities(model, normalization.apply(images), tta)
        class_ids = tf.argmax(probs, axis=-1, output_type=tf.int32)
        return {
            "probabilities": probs,
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
    tta: str = "none",
    examples=None,
    formats: Sequence[str] = ("savedmodel",),
    calibration=None,
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
        tta: ``flip``: the signatures average the probabilities on each image and its mirror image.
        examples: Raw test images (N, H, W, C), uint8: the first few become TF Serving's warm-up requests
            and the REST example (blank images without them); the ONNX/LiteRT files are checked on all.
        formats: ``config.EXPORT_FORMATS`` to write: the SavedModel always, ``onnx`` and ``litert`` (float32,
            float16 and int8 files) beside it, each checked in a fresh process before the version is published.
        calibration: Raw training images for the int8 LiteRT file's calibration.

    Raises:
        ValueError: If the model's input shape is not fully known, class names do not match
            the number of outputs, the version already exists, or ONNX/LiteRT files are asked for
            without ``examples`` to check them on.
        RuntimeError: If an ONNX/LiteRT file disagrees with the model (nothing is published).
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

    formats = parse_export_formats(",".join(formats))
    if examples is None:
        if len(formats) > 1:
            raise ValueError("ONNX/LiteRT files are checked on test images before they are published; pass examples.")
        examples = np.zeros((tf_serving.REST_EXAMPLES,) + input_shape, np.uint8)
    examples = np.asarray(examples)
    expected = evaluate.probabilities(model, normalization.apply(examples), tta).numpy()
    example_classes = [class_names[i] for i in expected[: tf_serving.REST_EXAMPLES].argmax(axis=1)]

    def write(staging: str) -> None:
        serve = _serving_module(model, normalization, class_names, tta)
        archive = ExportArchive()
        archive.track(model)
        archive.add_endpoint(
            SIGNATURE_FLOAT, serve, input_signature=[tf.TensorSpec((None,) + input_shape, tf.float32, name="images")]
        )
        archive.add_endpoint(
            SIGNATURE_UINT8, serve, input_signature=[tf.TensorSpec((None,) + input_shape, tf.uint8, name="images")]
        )
        archive.write_out(staging, verbose=False)
        pixels = {"images": examples.astype(np.float32)}
        info["warmup_requests"] = tf_serving.write_warmup(
            staging, model_name, SIGNATURE_FLOAT, pixels, {"images": tf.float32}
        )
        tf_serving.write_rest_example(staging, SIGNATURE_FLOAT, pixels)
        written = runtimes.write_formats(staging, model, normalization, tta, formats, calibration)
        if written:
            tolerance = TOLERANCE["float32" if computes_in_float32(model) else "mixed"]
            info["formats"] = runtimes.check_formats(staging, written, examples, expected, tolerance)

    info = {
        "class_names": list(class_names),
        "input_shape": list(input_shape),
        "normalization": {"mode": normalization.mode, "mean": list(normalization.mean), "std": list(normalization.std)},
        "signatures": {SIGNATURE_FLOAT: "images float32 0..255", SIGNATURE_UINT8: "images uint8"},
        "tta": tta,
        **(metadata or {}),
    }
    return write_version(export_root, model_name, class_names, write, info, version, check, example_classes)


def write_version(
    export_root: str,
    model_name: str,
    class_names: Sequence[str],
    write: Callable[[str], None],
    info: Dict[str, Any],
    version: Optional[int],
    check: Optional[Callable[[str], Any]],
    example_classes: Sequence[str],
) -> str:
    """The steps every export shares: a hidden staging folder under ``<export_root>/<model_name>`` (stale
    ones of dead processes swept), ``write(staging)`` puts the SavedModel (and its warm-up requests and REST
    example) there, the class names go to ``assets/class_names.txt``, ``check(staging)`` runs, ``info`` goes
    to ``assets.extra/tfcourse.json`` with the version number, ``assets.extra/README`` gets the serving lines
    of that version (and the ``example_classes`` its REST example must get), and the folder is renamed to
    its integer version."""
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
        write(staging)
        # assets/ is part of the SavedModel folder and travels with it; the serving
        # functions carry the names too (the ``classes`` output), so nothing reads this file at serve time.
        os.makedirs(os.path.join(staging, "assets"), exist_ok=True)
        with open(os.path.join(staging, "assets", "class_names.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(class_names) + "\n")
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        if check is not None:
            check(staging)

        def write_metadata(number: int) -> None:
            with open(os.path.join(staging, METADATA_FILE), "w", encoding="utf-8") as handle:
                json.dump({"model": model_name, "version": number, **info}, handle, indent=2)
            with open(os.path.join(staging, tf_serving.README_FILE), "w", encoding="utf-8") as handle:
                handle.write(
                    tf_serving.readme_text(
                        model_dir,
                        model_name,
                        number,
                        info.get("warmup_requests", 0),
                        example_classes,
                        renamed=info.get("input_keys"),
                    )
                )

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
    tta: str = "none",
    formats: Sequence[str] = ("savedmodel",),
    calibration=None,
):
    """``export_saved_model`` with ``verify_export`` run on the finished export before it gets its version.

    Args:
        images: uint8 images (N, H, W, C), raw pixels, for the fresh-process check (and the warm-up requests,
            the REST example and the ONNX/LiteRT check).
        verify: Run the check (a few seconds: a new Python process loads TensorFlow).
        formats, calibration: As ``export_saved_model``.

    Returns:
        ``(version folder, largest probability difference or None without verify)``.
    """
    found = {}

    def check(staging: str) -> None:
        found["difference"] = verify_export(model, staging, images, normalization, tta=tta)

    final_dir = export_saved_model(
        model,
        export_root,
        model_name,
        class_names,
        normalization,
        metadata=metadata,
        check=check if verify else None,
        tta=tta,
        examples=images,
        formats=formats,
        calibration=calibration,
    )
    return final_dir, found.get("difference")


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

    with tempfile.TemporaryDirectory() as scratch:
        inputs_path = os.path.join(scratch, "images.npy")
        np.save(inputs_path, np.asarray(images, dtype=np.uint8))
        return fresh.run(
            _FRESH_PROCESS_SCRIPT,
            export_dir,
            inputs_path,
            os.path.join(scratch, "outputs.npz"),
            f"Loading {export_dir}",
        )


# How far a served probability may be from the in-process one. A mixed_bfloat16 model's graph is fused
# differently in the SavedModel than when called eagerly, so bfloat16 roundings fall elsewhere: measured
# up to ~1.5e-3 here; float32 agrees to ~1e-7.
TOLERANCE = {"float32": 1e-4, "mixed": 2e-2}


def verify_export(
    model, export_dir: str, images, normalization, tolerance: Optional[float] = None, tta: str = "none"
) -> float:
    """Checks that a fresh process serving ``export_dir`` predicts what ``model`` predicts.

    Args:
        model: The Keras model that was exported.
        export_dir: Its export (a version folder).
        images: uint8 images (N, H, W, C), raw pixels.
        normalization: The preprocessing the model was trained with.
        tolerance: Largest allowed difference of any class probability (``None``: ``TOLERANCE`` of the
            model's compute dtype).
        tta: The test-time augmentation the export was written with.

    Returns:
        The largest absolute difference of a class probability over both signatures.

    Raises:
        RuntimeError: If the fresh process fails or the predictions differ by more than ``tolerance``.
    """

    if tolerance is None:
        tolerance = TOLERANCE["float32" if computes_in_float32(model) else "mixed"]
    served = serve_in_fresh_process(export_dir, images)
    expected = evaluate.probabilities(model, normalization.apply(images), tta).numpy()
    difference = max(
        float(np.abs(served[f"{name}/probabilities"] - expected).max()) for name in (SIGNATURE_FLOAT, SIGNATURE_UINT8)
    )
    if not difference <= tolerance:  # NaN-safe: a NaN difference fails too
        raise RuntimeError(
            f"The export at {export_dir} disagrees with the trained model (max |dp| = {difference:.2e})."
        )
    return difference
