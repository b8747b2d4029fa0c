"""Custom layers, and the learning-rate schedule and loss a compiled model carries, registered serializable
so saved ``.keras`` models (optimizer and loss included) load without extra code."""

from __future__ import annotations

import keras
import tensorflow as tf

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


@keras.saving.register_keras_serializable(package="tfcourse")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` computed by TensorFlow's fused kernel on image feature maps.

    Keras 3 normalises with separate ops (``moments``, then an affine map, with casts to float32
    around them under a mixed policy): about ten passes over every activation, forward and backward.
    ``FusedBatchNormV3`` does it in one (oneDNN's kernel on a CPU, float32 or bfloat16 inputs with
    float32 statistics). Measured on a 2-core AMD EPYC with avx512_bf16, the vgg model trained 1.7x as
    fast in float32 and 2.5x in mixed bfloat16 (``benchmarks/peer_throughput.py``).

    Same weights, same settings, same meaning as the Keras layer (a drop-in: a model saved with
    either loads the other's weights); the one difference is the moving variance, which is updated
    with the batch's unbiased variance (n / (n - 1) times the biased one, as PyTorch and TensorFlow's
    fused kernel do). Inputs that are not 4-D channels-last maps, masks and batch renormalisation
    take the Keras path.
    """

    def _fused(self, inputs, mask) -> bool:
        axis = self.axis if isinstance(self.axis, int) else (self.axis[0] if len(self.axis) == 1 else None)
        return mask is None and not self.renorm and len(inputs.shape) == 4 and axis in (-1, 3)

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = inputs if inputs.dtype in (tf.float32, tf.bfloat16, tf.float16) else tf.cast(inputs, tf.float32)
        gamma = self.gamma if self.scale else tf.ones_like(self.moving_mean)
        beta = self.beta if self.center else tf.zeros_like(self.moving_mean)
        updating = bool(training and self.trainable)  # a frozen layer normalises with its moving statistics
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            gamma,
            beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=updating,
            exponential_avg_factor=1.0 - self.momentum if updating else 1.0,
        )
        if updating:  # the kernel returned the moving statistics after this batch's update
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return tf.cast(outputs, self.compute_dtype)


@keras.saving.register_keras_serializable(package="tfcourse")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle learning rate, per step: linear from 0 to ``peak`` over the first ``warmup_fraction``
    of ``total_steps``, then linear down to 0 at the last step (the shape of airbench and of "How to
    train your ResNet"; PyTorch's ``OneCycleLR`` with ``anneal_strategy="linear"``).

    Args:
        peak: The highest learning rate.
        total_steps: Training steps of the whole run (epochs x steps per epoch).
        warmup_fraction: Share of the steps spent rising.
    """

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float = 0.25):
        if not (peak > 0 and total_steps >= 1 and 0 <= warmup_fraction < 1):
            raise ValueError(
                f"OneCycle needs peak > 0, total_steps >= 1 and 0 <= warmup_fraction < 1; got {peak}, "
                f"{total_steps}, {warmup_fraction}."
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)

    def __call__(self, step):
        # step + 1: the first step trains at a small positive rate, the last at ~0
        progress = (keras.ops.cast(step, "float32") + 1.0) / self.total_steps
        rising = progress / max(self.warmup_fraction, 1e-12)
        falling = (1.0 - progress) / (1.0 - self.warmup_fraction)
        shape = keras.ops.where(progress < self.warmup_fraction, rising, falling)
        return self.peak * keras.ops.clip(shape, 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_fraction": self.warmup_fraction}


@keras.saving.register_keras_serializable(package="tfcourse")
class SmoothedSparseCategoricalCrossentropy(keras.losses.Loss):
    """Cross-entropy from logits and integer labels with label smoothing (Keras' sparse loss has none):
    ``(1 - s) * -log p[label] + s * mean over classes of -log p``, i.e. the target puts ``1 - s + s/K`` on
    the true class and ``s/K`` on each other one."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        log_probabilities = keras.ops.log_softmax(keras.ops.cast(y_pred, "float32"), axis=-1)
        labels = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1, 1))
        true_class = -keras.ops.take_along_axis(log_probabilities, labels, axis=-1)[:, 0]
        if not self.label_smoothing:
            return true_class
        spread = -keras.ops.mean(log_probabilities, axis=-1)
        return (1.0 - self.label_smoothing) * true_class + self.label_smoothing * spread

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
