"""The same export in runtimes nobody here wrote: ONNX (ONNX Runtime) and LiteRT (float32, float16, int8).

Every file takes what the SavedModel's ``serving_default`` takes, raw pixels as float32 0..255
(N, H, W, C), and returns class probabilities (N, classes): the preprocessing, the softmax and a flip
test-time augmentation are inside, so all formats take the same raw images. They are converted from one
Keras model, ``probability_model`` (the trained model's float32 copy between a normalising layer and a
softmax), by Keras 3's own ``Model.export``: ``format="onnx"`` (tf2onnx underneath) and ``format="litert"``
(``tf.lite.TFLiteConverter`` underneath; its settings passed through: builtin ops only, so the standalone
LiteRT interpreter runs the file without TensorFlow's flex ops; float16 weights; full-integer int8 with a
representative dataset from the training split, the interface kept float32 so that it takes the same
raw pixels). Each file is checked in a fresh process that imports only its runtime (``tfcourse.serving.runtime_runner``).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from typing import Any, Dict, Optional, Sequence

import numpy as np

from tfcourse.models import float32_copy
from tfcourse.serving import fresh
from tfcourse.serving.runtime_runner import FILES

# The Python modules each format needs (the [runtimes] extra); the SavedModel needs TensorFlow alone.
NEEDS = {"onnx": ("tf2onnx", "onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}
CALIBRATION_IMAGES = 500  # int8 calibration: enough for stable activation ranges, a few seconds
# How far a file's probabilities may be from the SavedModel's on the check images: float32 formats as the
# SavedModel check (``export.TOLERANCE``); float16 weights move probabilities by ~1e-3; int8 is held to the
# same top-1 class on most images instead (its probabilities move by up to ~0.1).
FLOAT16_TOLERANCE = 2e-2
INT8_SAME_TOP1 = 0.9


def require(formats: Sequence[str]) -> None:
    """Raises ``ValueError`` naming the install command when a format's runtime or converter is missing."""
    missing = [module for name in formats for module in NEEDS.get(name, ()) if importlib.util.find_spec(module) is None]
    if missing:
        raise ValueError(
            f"--export-format {','.join(formats)} needs {', '.join(missing)}, which is not installed: "
            "pip install -e '.[runtimes]' (ONNX Runtime, tf2onnx, the LiteRT interpreter)."
        )


def files_of(formats: Sequence[str]) -> Dict[str, str]:
    """The ``runtime_runner.FILES`` entries ``formats`` write."""
    return {key: name for key, name in FILES.items() if key.split("_")[0] in formats}


def probability_model(model, normalization, tta: str = "none"):
    """A float32 Keras model from raw pixels (float32 0..255) to class probabilities: ``normalization``, the
    trained model (its float32 copy when it computes in bfloat16: neither format has bfloat16 kernels on a
    CPU), a softmax, and with ``tta="flip"`` the mean with the mirror image's (as ``evaluate.probabilities``)."""
    import keras

    core = float32_copy(model)
    shape = tuple(model.inputs[0].shape[1:])
    images = keras.Input(shape=shape, dtype="float32", name="images")
    inputs = keras.layers.Lambda(normalization.apply, name="normalize")(images)
    probabilities = keras.layers.Softmax(name="softmax")(core(inputs))
    if tta == "flip":
        mirrored = keras.layers.Lambda(lambda x: keras.ops.flip(x, axis=2), name="mirror")(inputs)
        probabilities = keras.layers.Average(name="flip_tta")(
            [probabilities, keras.layers.Softmax(name="softmax_mirrored")(core(mirrored))]
        )
    elif tta != "none":
        raise ValueError(f"Unknown test-time augmentation {tta!r}; use none or flip.")
    wrapper = keras.Model(images, probabilities, name="probabilities")
    wrapper(np.zeros((1,) + shape, np.float32))  # Model.export needs a model that has been called
    return wrapper


def _litert_settings(variant: str, calibration: Optional[np.ndarray]) -> Dict[str, Any]:
    """``Model.export(format="litert")`` keyword arguments (TFLiteConverter attributes) of a variant."""
    import tensorflow as tf

    if variant == "float32":
        return {"target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}}
    if variant == "float16":
        return {
            "optimizations": [tf.lite.Optimize.DEFAULT],
            "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS], "supported_types": [tf.float16]},
        }
    if calibration is None or len(calibration) == 0:
        raise ValueError("The int8 LiteRT file needs training images to calibrate its activation ranges.")

    def representative_dataset():
        for image in calibration:
            yield [np.asarray(image, np.float32)[None]]

    return {
        "optimizations": [tf.lite.Optimize.DEFAULT],
        "representative_dataset": representative_dataset,
        "target_spec": {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]},
    }


def write_formats(
    folder: str, model, normalization, tta: str, formats: Sequence[str], calibration: Optional[np.ndarray] = None
) -> Dict[str, str]:
    """Writes the ONNX and LiteRT files ``formats`` ask for into ``folder``; returns ``{key: file name}``.

    Args:
        calibration: Raw training images (N, H, W, C) for the int8 file's representative dataset (the first
            ``CALIBRATION_IMAGES``).
    """
    import contextlib
    import io

    wanted = files_of(formats)
    if not wanted:
        return {}
    require(formats)
    wrapper = probability_model(model, normalization, tta)
    if calibration is not None:
        calibration = np.asarray(calibration)[:CALIBRATION_IMAGES]
    for key, name in wanted.items():
        path = os.path.join(folder, name)
        # the converters print pages of graph-rewriting notes; an error still raises with its message
        with contextlib.redirect_stdout(io.StringIO()):
            if key == "onnx":
                wrapper.export(path, format="onnx", verbose=False)
            else:
                wrapper.export(path, format="litert", verbose=False, **_litert_settings(key.split("_")[1], calibration))
    return wanted


# Run in a separate interpreter that imports the runtimes alone (no TensorFlow), as a server or phone would.
_FRESH_RUNTIMES_SCRIPT = """
import sys, numpy as np
from tfcourse.serving import runtime_runner
folder, inputs_path, outputs_path = sys.argv[1:4]
result = runtime_runner.run_folder(folder, np.load(inputs_path).astype(np.float32))
result["tensorflow_loaded"] = np.array("tensorflow" in sys.modules)
np.savez(outputs_path, **result)
"""


def run_in_fresh_process(folder: str, images) -> Dict[str, np.ndarray]:
    """Runs every second-runtime file of ``folder`` on raw ``images`` in a new Python process that imports
    ONNX Runtime / the LiteRT interpreter and NumPy only; ``{key: probabilities, "tensorflow_loaded": bool}``.

    Raises:
        RuntimeError: If the fresh process fails, with its error output.
    """
    with tempfile.TemporaryDirectory() as scratch:
        inputs_path, outputs_path = os.path.join(scratch, "images.npy"), os.path.join(scratch, "outputs.npz")
        np.save(inputs_path, np.asarray(images, np.float32))
        return fresh.run(
            _FRESH_RUNTIMES_SCRIPT, folder, inputs_path, outputs_path, f"Running the ONNX/LiteRT files of {folder}"
        )


def agreement(probabilities: np.ndarray, reference: np.ndarray) -> Dict[str, float]:
    """``max_abs_dp`` (largest class-probability difference) and ``same_top1`` (share of the same top class)."""
    probabilities, reference = np.asarray(probabilities, np.float64), np.asarray(reference, np.float64)
    return {
        "max_abs_dp": float(np.abs(probabilities - reference).max()),
        "same_top1": float(np.mean(probabilities.argmax(axis=1) == reference.argmax(axis=1))),
    }


def check_formats(
    folder: str, written: Dict[str, str], images, expected: np.ndarray, tolerance: float
) -> Dict[str, Any]:
    """Checks each written file in a fresh process against the trained model's probabilities ``expected`` on
    raw ``images``; returns ``{key: {"file", "bytes", "max_abs_dp", "same_top1"}}`` for the export's metadata.

    Raises:
        RuntimeError: When a float32 file differs by more than ``tolerance``, the float16 one by more than
            ``FLOAT16_TOLERANCE``, or the int8 one picks another top class on more than 10% of ``images``
            (NaN fails every check).
    """
    served = run_in_fresh_process(folder, images)
    found = {}
    for key, name in written.items():
        measured = agreement(served[key], expected)
        variant = key.split("_")[-1]
        limit = FLOAT16_TOLERANCE if variant == "float16" else tolerance
        if variant == "int8":
            failed = not measured["same_top1"] >= INT8_SAME_TOP1
        else:
            failed = not measured["max_abs_dp"] <= limit
        if failed:
            raise RuntimeError(
                f"The {name} file disagrees with the trained model (max |dp| = {measured['max_abs_dp']:.2e}, "
                f"same top-1 class on {measured['same_top1']:.0%} of {len(images)} images)."
            )
        found[key] = {"file": name, "bytes": os.path.getsize(os.path.join(folder, name)), **measured}
    return found


def describe(formats_info: Dict[str, Any]) -> str:
    """One line per file for the console: size and agreement with the trained model."""
    return "\n".join(
        f"  {info['file']}: {info['bytes'] / 1e6:.2f} MB, max |dp| {info['max_abs_dp']:.1e}, "
        f"same top-1 {info['same_top1']:.1%}"
        for info in formats_info.values()
    )
