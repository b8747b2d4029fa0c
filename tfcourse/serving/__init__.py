"""A trained model served: SavedModel versions in TensorFlow Serving's layout and the other runtimes.

- ``savedmodel``: ``saved_models/<name>/<version>/`` of an image model, checked in a fresh process before it
  gets its version number; ``table_export``: the same for a table model, raw rows in;
- ``tf_serving``: TensorFlow Serving warm-up requests, the REST example and the export's README;
- ``runtimes``: ONNX and LiteRT files (float32 / float16 / int8) through Keras' ``Model.export``;
- ``runtime_runner``: runs those files with ONNX Runtime / the LiteRT interpreter alone (NumPy, no TensorFlow);
- ``fresh``: check scripts in a new Python process.
"""
