"""What TensorFlow Serving reads beside a SavedModel: warm-up requests, a REST example and how to run it.

Every export writes, in its ``assets.extra/`` folder:

- ``tf_serving_warmup_requests``: a TFRecord of ``PredictionLog`` protos (built with the
  ``tensorflow-serving-api`` protos, one ``PredictRequest`` of one real test example each). TF Serving
  replays them when it loads a version, before it reports the version as available, so the first
  client does not wait for the graph to be set up.
- ``request.json``: a REST request body (``{"signature_name": ..., "instances": [...]}``, row format) of
  two test examples.
- ``README``: the exact ``docker run tensorflow/serving`` and ``curl`` lines for this export, and the
  classes the exported model gives the example (what the ``curl`` must print).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
REQUEST_FILE = os.path.join("assets.extra", "request.json")
README_FILE = os.path.join("assets.extra", "README")
WARMUP_REQUESTS = 4  # TF Serving runs each at load time; a few are enough to build every kernel
REST_EXAMPLES = 2


def examples_of(inputs: Dict[str, np.ndarray], count: int) -> Dict[str, np.ndarray]:
    """The first ``count`` examples of named input arrays (one row per example)."""
    return {name: np.asarray(values)[:count] for name, values in inputs.items()}


def write_warmup(staging: str, model_name: str, signature: str, inputs: Dict[str, np.ndarray], dtypes) -> int:
    """Writes ``assets.extra/tf_serving_warmup_requests``: one ``PredictRequest`` per example (at most
    ``WARMUP_REQUESTS``). ``dtypes`` maps each input name to the signature's ``tf.DType``. Returns the count."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    rows = min(WARMUP_REQUESTS, min(len(values) for values in inputs.values()))
    os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(staging, WARMUP_FILE)) as writer:
        for row in range(rows):
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for name, values in inputs.items():
                one = np.asarray(values)[row : row + 1]
                request.inputs[name].CopyFrom(tf.make_tensor_proto(one, dtype=dtypes[name]))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return rows


def read_warmup(path: str) -> List[Tuple[str, str, Dict[str, np.ndarray]]]:
    """Parses a warm-up file with the TF Serving protos: ``(model name, signature, {input: array})`` per record.

    Raises:
        ValueError: If a record is not a ``PredictionLog`` holding a ``PredictRequest``.
    """
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(f"{path}: a warm-up record holds {log.WhichOneof('log_type')}, not a predict request.")
        request = log.predict_log.request
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        requests.append((request.model_spec.name, request.model_spec.signature_name, inputs))
    return requests


def _json_value(value):
    """A NumPy scalar as JSON takes it: a string category as text, a whole number as an integer (pixels), NaN
    as JSON's ``NaN`` extension (which TF Serving's REST parser reads as a missing table value)."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    if isinstance(value, (str, np.str_)):
        return str(value)
    number = float(value)
    return int(number) if math.isfinite(number) and number.is_integer() else number


def rest_body(signature: str, inputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """A TF Serving REST ``predict`` body in row format: one instance per example; a single input's
    instance is its value, several inputs' instances are ``{name: value}``."""
    names = sorted(inputs)
    rows = min(len(values) for values in inputs.values())

    def value(name, row):
        return np.vectorize(_json_value, otypes=[object])(np.asarray(inputs[name])[row]).tolist()

    if len(names) == 1:
        instances = [value(names[0], row) for row in range(rows)]
    else:
        instances = [{name: value(name, row) for name in names} for row in range(rows)]
    return {"signature_name": signature, "instances": instances}


def body_inputs(body: Dict[str, Any], input_names: Sequence[str]) -> Dict[str, np.ndarray]:
    """The arrays a REST body's instances stand for, as TF Serving reads row format (the inverse of ``rest_body``)."""
    instances = body["instances"]
    if len(input_names) == 1:
        return {input_names[0]: np.asarray(instances)}
    return {name: np.asarray([instance[name] for instance in instances]) for name in input_names}


def write_rest_example(staging: str, signature: str, inputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
    """Writes ``assets.extra/request.json`` (``REST_EXAMPLES`` examples) and returns the body."""
    body = rest_body(signature, examples_of(inputs, REST_EXAMPLES))
    os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
    with open(os.path.join(staging, REQUEST_FILE), "w", encoding="utf-8") as handle:
        json.dump(body, handle)
    return body


def readme_text(
    model_dir: str,
    model_name: str,
    version: int,
    warmups: int,
    classes: Sequence[str],
    renamed: Optional[Dict[str, str]] = None,
) -> str:
    """``assets.extra/README``: how to serve this export with TF Serving and ask it the REST example;
    ``renamed`` (input key -> column name) lists the inputs whose key is not their column's name."""
    model_dir = os.path.abspath(model_dir)
    version_dir = os.path.join(model_dir, str(version))
    text = f"""TensorFlow Serving: model {model_name!r}, version {version}

Serve the model folder (TF Serving loads the highest version; this is version {version}):

docker run --rm -p 8501:8501 -v "{model_dir}:/models/{model_name}" -e MODEL_NAME={model_name} tensorflow/serving

(a tensorflow/serving image at least as new as the TensorFlow that wrote this export; without Docker, the
server binary takes: tensorflow_model_server --rest_api_port=8501 --model_name={model_name} \\
--model_base_path={model_dir})
"""
    if renamed:
        text += (
            "\nInput names: TensorFlow allows letters, digits, _, . and - in an input's name, so these columns "
            "go by a key\n(in request.json, gRPC requests and model.keras alike):\n\n"
            + "".join(f"  {key:24s} column {name!r}\n" for key, name in sorted(renamed.items()))
        )
    if warmups:
        text += f"""
When it loads a version, TF Serving replays assets.extra/tf_serving_warmup_requests ({warmups} requests of one
test example each) before it serves the version.
"""
    if not classes:
        return text
    return (
        text
        + f"""
Ask it for the {len(classes)} test examples in assets.extra/request.json:

curl -s -X POST -H "Content-Type: application/json" -d @"{os.path.join(version_dir, REQUEST_FILE)}" \\
  http://localhost:8501/v1/models/{model_name}/versions/{version}:predict

It answers {{"predictions": [{{"probabilities": [...], "class_ids": ..., "classes": ...}}, ...]}}; for these examples the
classes are {json.dumps(list(classes))}.
"""
    )
