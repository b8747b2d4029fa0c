"""Run an exported ONNX or LiteRT file with its own runtime alone: ONNX Runtime, the LiteRT interpreter.

No TensorFlow here (a fresh process that imports this module checks an export the way a server or a phone
would run it): NumPy at import, the runtime when a file is loaded. Every file takes raw pixels, float32
0..255, (N, H, W, C), and returns class probabilities (N, classes) (``tfcourse.serving.runtimes``).
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np

# The second-runtime files of an export's version folder, by the key its metadata records them under.
FILES = {
    "onnx": "model.onnx",
    "litert_float32": "model_float32.tflite",
    "litert_float16": "model_float16.tflite",
    "litert_int8": "model_int8.tflite",
}


def load(path: str, threads: Optional[int] = None) -> Callable[[np.ndarray], np.ndarray]:
    """Loads ``path`` (``.onnx`` or ``.tflite``) once; returns ``predict(images) -> probabilities``.

    Args:
        threads: Intra-op threads of the runtime (``None``: the runtime's default).

    Raises:
        ValueError: For a file that is neither.
    """
    if path.endswith(".onnx"):
        return _load_onnx(path, threads)
    if path.endswith(".tflite"):
        return _load_litert(path, threads)
    raise ValueError(f"{path} is neither an .onnx nor a .tflite file.")


def _load_onnx(path: str, threads: Optional[int]):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(images: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.asarray(images, np.float32)})[0]

    return predict


def _load_litert(path: str, threads: Optional[int]):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path, num_threads=threads)
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    shape = [None]

    def predict(images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        if shape[0] != images.shape:  # the batch size is dynamic: resize only when it changes
            interpreter.resize_tensor_input(source["index"], images.shape)
            interpreter.allocate_tensors()
            shape[0] = images.shape
        if source["dtype"] != np.float32:  # an integer-only interface takes quantised pixels
            scale, zero = source["quantization"]
            images = np.round(images / scale + zero).astype(source["dtype"])
        interpreter.set_tensor(source["index"], images)
        interpreter.invoke()
        output = interpreter.get_tensor(target["index"])
        if target["dtype"] != np.float32:
            scale, zero = target["quantization"]
            output = (output.astype(np.float32) - zero) * scale
        return np.array(output)

    return predict


def in_batches(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """``predict`` over ``images`` a batch at a time, the outputs concatenated in order."""
    return np.concatenate([predict(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])


def run_folder(folder: str, images: np.ndarray, batch_size: int = 256) -> dict:
    """Probabilities of every ``FILES`` entry present in ``folder`` on ``images``: ``{key: array}``."""
    return {
        key: in_batches(load(os.path.join(folder, name)), images, batch_size)
        for key, name in FILES.items()
        if os.path.isfile(os.path.join(folder, name))
    }
