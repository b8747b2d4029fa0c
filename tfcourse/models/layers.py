"""Custom layers, registered serializable so saved ``.keras`` models load without extra code."""

from __future__ import annotations

import keras

# Caffe-style ImageNet preprocessing, as keras.applications' ResNet50 and VGG16 expect it:
# pixels in 0..255, channels in BGR order, the ImageNet per-channel mean subtracted.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="tfcourse")
class ImageNetPreprocessing(keras.layers.Layer):
    """Maps RGB images scaled to [0, 1] to the input ImageNet-trained ResNet50/VGG16 weights expect.

    Args:
        input_scale: What the incoming pixels are multiplied by to reach 0..255 (255 for
            tfcourse's default ``unit`` normalisation).
    """

    def __init__(self, input_scale: float = 255.0, **kwargs):
        super().__init__(**kwargs)
        self.input_scale = float(input_scale)

    def call(self, inputs):
        bgr = keras.ops.flip(inputs * self.input_scale, axis=-1)
        return bgr - keras.ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "input_scale": self.input_scale}


def adapt_to_rgb(x, image_size: int, imagenet: bool):
    """Resizes images to ``image_size`` squared and gives them 3 channels (grayscale is repeated).

    With ``imagenet`` the result is also preprocessed as ImageNet weights expect (see
    ``ImageNetPreprocessing``; inputs must be scaled to [0, 1], the ``unit`` normalisation).
    """
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if channels not in (1, 3):
        raise ValueError(f"Images need 1 or 3 channels to become RGB, got {channels}.")
    if (height, width) != (image_size, image_size):
        x = keras.layers.Resizing(image_size, image_size, interpolation="bilinear", name="resize")(x)
    if channels == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if imagenet:
        x = ImageNetPreprocessing(name="imagenet_preprocessing")(x)
    return x


@keras.saving.register_keras_serializable(package="tfcourse")
class ClassToken(keras.layers.Layer):
    """Prepends one learned token to a sequence: ``(batch, tokens, dim)`` -> ``(batch, tokens + 1, dim)``.

    The transformer's output at this position is the image summary the classifier reads (ViT's
    ``[class]`` token).

    Args:
        stddev: Standard deviation of the token's truncated-normal initialisation.
    """

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token",
            shape=(1, 1, input_shape[-1]),
            initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
        )

    def call(self, inputs):
        batch = keras.ops.shape(inputs)[0]
        token = keras.ops.broadcast_to(keras.ops.cast(self.token, inputs.dtype), (batch, 1, inputs.shape[-1]))
        return keras.ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="tfcourse")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned vector per position to a sequence of fixed length ``(batch, tokens, dim)``.

    Args:
        stddev: Standard deviation of the embeddings' truncated-normal initialisation.
    """

    def __init__(self, stddev: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.stddev = float(stddev)

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError("PositionEmbedding needs a fixed number of tokens, got None.")
        self.embedding = self.add_weight(
            name="embedding",
            shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.TruncatedNormal(stddev=self.stddev),
        )

    def call(self, inputs):
        return inputs + keras.ops.cast(self.embedding, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="tfcourse")
class ImputedNormalization(keras.layers.Layer):
    """One numeric column with missing values (NaN) as two model inputs: the value standardised with
    the mean and variance of the present training values (a missing value becomes the mean, so 0), and
    an indicator that it was missing. ``(batch, 1)`` in, ``(batch, 2)`` out.

    ``adapt`` (as ``keras.utils.FeatureSpace`` calls it on the training split) sets ``mean`` and
    ``variance``; they live in the config, so a saved model imputes exactly as it was trained.

    Args:
        mean, variance: Of the present values (``None`` until adapted).
    """

    def __init__(self, mean=None, variance=None, **kwargs):
        super().__init__(**kwargs)
        self.mean = None if mean is None else float(mean)
        self.variance = None if variance is None else float(variance)

    def adapt(self, data):
        """``data``: an array, or a dataset of batches, of the column's training values (NaN: missing)."""
        import numpy as np

        batches = [data] if hasattr(data, "shape") or isinstance(data, (list, tuple)) else data
        values = np.concatenate([np.asarray(batch, dtype=np.float64).reshape(-1) for batch in batches])
        present = values[~np.isnan(values)]
        self.mean = float(present.mean()) if len(present) else 0.0
        self.variance = float(present.var()) if len(present) else 1.0

    def call(self, inputs):
        if self.mean is None:
            raise ValueError(f"{self.name}: adapt() it on the training values before use.")
        values = keras.ops.cast(inputs, "float32")
        missing = keras.ops.isnan(values)
        filled = keras.ops.where(missing, self.mean, values)
        scaled = (filled - self.mean) / max(self.variance, 1e-12) ** 0.5
        return keras.ops.concatenate([scaled, keras.ops.cast(missing, "float32")], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2,)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "variance": self.variance}
